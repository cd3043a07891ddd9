package volume

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"
)

// Mounted is a volume that is set up on the node.
type Mounted struct {
	Path string // the host path containers bind-mount
	// ReadOnly: containers always get it read-only (configMap, secret,
	// downwardAPI and projected volumes, read-only claims), like kubelet's
	// "mustMountRO".
	ReadOnly bool
}

// ContainerMounts is kubelet's makeMounts for one container: each volume
// mount becomes a bind mount of the volume (or of its subPath, resolved
// inside the volume, made when missing) with the mount's read-only flag and
// propagation. env holds the container's variables for subPathExpr.
func ContainerMounts(c *corev1.Container, vols map[string]Mounted, env map[string]string) ([]specs.Mount, error) {
	var out []specs.Mount
	for _, m := range c.VolumeMounts {
		vol, ok := vols[m.Name]
		if !ok {
			return nil, fmt.Errorf("cannot find volume %q to mount into container %q", m.Name, c.Name)
		}
		sub := m.SubPath
		if m.SubPathExpr != "" {
			expanded, err := ExpandSubPath(m.SubPathExpr, env)
			if err != nil {
				return nil, err
			}
			sub = expanded
		}
		src := vol.Path
		if sub != "" {
			resolved, err := subPath(vol.Path, sub, m.Name, c.Name)
			if err != nil {
				return nil, err
			}
			src = resolved
		}
		opts := []string{"rbind", "rw"}
		if m.ReadOnly || vol.ReadOnly {
			opts[1] = "ro"
		}
		opts = append(opts, propagation(m.MountPropagation))
		out = append(out, specs.Mount{Destination: m.MountPath, Type: "bind", Source: src, Options: opts})
	}
	return out, nil
}

// propagation maps a mountPropagation to its bind mount option; None (the
// default) is rprivate like containerd's CRI.
func propagation(p *corev1.MountPropagationMode) string {
	if p != nil {
		switch *p {
		case corev1.MountPropagationHostToContainer:
			return "rslave"
		case corev1.MountPropagationBidirectional:
			return "rshared"
		}
	}
	return "rprivate"
}

// subPath resolves sub inside the volume at root: symlinks are followed
// but cannot lead out of it. A missing subPath is made as a directory with
// the volume root's mode, like kubelet.
func subPath(root, sub, volume, container string) (string, error) {
	if filepath.IsAbs(sub) {
		return "", fmt.Errorf("error SubPath `%s` must not be an absolute path", sub)
	}
	for _, seg := range strings.Split(sub, "/") {
		if seg == ".." {
			return "", fmt.Errorf("unable to provision SubPath `%s`: must not contain '..'", sub)
		}
	}
	resolved, err := securejoin.SecureJoin(root, sub)
	if err != nil {
		return "", fmt.Errorf("resolve subPath %q of volume %q: %w", sub, volume, err)
	}
	if _, err := os.Lstat(resolved); errors.Is(err, os.ErrNotExist) {
		fi, err := os.Stat(root)
		if err != nil {
			return "", err
		}
		if err := os.MkdirAll(resolved, fi.Mode().Perm()); err != nil {
			return "", fmt.Errorf("failed to create subPath directory for volumeMount %q of container %q", volume, container)
		}
		// MkdirAll is subject to the umask; the volume's mode is wanted.
		os.Chmod(resolved, fi.Mode().Perm())
	}
	return resolved, nil
}

// ExpandSubPath is kubelet's subPathExpr expansion: $(VAR) from the
// container's environment; a variable that is missing or empty fails.
func ExpandSubPath(expr string, env map[string]string) (string, error) {
	var missing []string
	var b strings.Builder
	for i := 0; i < len(expr); i++ {
		if expr[i] == '$' && i+1 < len(expr) && expr[i+1] == '$' {
			b.WriteByte('$')
			i++
			continue
		}
		if expr[i] == '$' && i+1 < len(expr) && expr[i+1] == '(' {
			if j := strings.IndexByte(expr[i:], ')'); j > 0 {
				name := expr[i+2 : i+j]
				v := env[name]
				if v == "" {
					missing = append(missing, name)
				}
				b.WriteString(v)
				i += j
				continue
			}
		}
		b.WriteByte(expr[i])
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return "", fmt.Errorf("missing value for %s", strings.Join(missing, ", "))
	}
	return b.String(), nil
}
