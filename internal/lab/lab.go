//go:build linux

// Package lab makes the isolated network namespace that the end-to-end tests
// and the benchmarks run the cluster in: only loopback, no default route, so
// nothing they do can reach beyond this machine.
package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Lab is one network namespace plus a nanokube home and kubeconfig.
type Lab struct {
	Name       string // netns name
	Netns      string // /run/netns/<name>
	Dir        string // temp dir holding home and kubeconfig
	Home       string // NANOKUBE_HOME
	Kubeconfig string
}

// New creates the namespace (loopback up) and a fresh temp directory.
func New(name string) (*Lab, error) {
	dir, err := os.MkdirTemp("", name+"-")
	if err != nil {
		return nil, fmt.Errorf("create lab dir: %w", err)
	}
	l := &Lab{
		Name:       name,
		Netns:      "/run/netns/" + name,
		Dir:        dir,
		Home:       filepath.Join(dir, "home"),
		Kubeconfig: filepath.Join(dir, "kube", "config"),
	}
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip netns add %s: %w: %s", name, err, out)
	}
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("set lo up in %s: %w: %s", name, err, out)
	}
	return l, nil
}

// Command returns a command that runs inside the lab's network namespace
// with the lab's NANOKUBE_HOME and KUBECONFIG. nsenter enters only the
// network namespace, so mounts made by the daemon stay visible to later
// commands (`ip netns exec` would make a private mount namespace).
func (l *Lab) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + l.Netns, "--", name}, args...)...)
	cmd.Env = append(os.Environ(), "NANOKUBE_HOME="+l.Home, "KUBECONFIG="+l.Kubeconfig, "HOME="+l.Dir)
	return cmd
}

// Close removes the namespace and the temp directory.
func (l *Lab) Close() error {
	if out, err := exec.Command("ip", "netns", "del", l.Name).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns del %s: %w: %s", l.Name, err, out)
	}
	return os.RemoveAll(l.Dir)
}
