package agent

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/nanokube/nanokube/runtime"
)

// effectiveSecurity is kubelet's DetermineEffectiveSecurityContext: the
// container's securityContext over the pod's.
func effectiveSecurity(pod *corev1.Pod, c *corev1.Container) *corev1.SecurityContext {
	eff := &corev1.SecurityContext{}
	if psc := pod.Spec.SecurityContext; psc != nil {
		eff.RunAsUser, eff.RunAsGroup, eff.RunAsNonRoot = psc.RunAsUser, psc.RunAsGroup, psc.RunAsNonRoot
		eff.SeccompProfile, eff.SELinuxOptions, eff.AppArmorProfile = psc.SeccompProfile, psc.SELinuxOptions, psc.AppArmorProfile
	}
	csc := c.SecurityContext
	if csc == nil {
		return eff
	}
	if csc.RunAsUser != nil {
		eff.RunAsUser = csc.RunAsUser
	}
	if csc.RunAsGroup != nil {
		eff.RunAsGroup = csc.RunAsGroup
	}
	if csc.RunAsNonRoot != nil {
		eff.RunAsNonRoot = csc.RunAsNonRoot
	}
	if csc.SeccompProfile != nil {
		eff.SeccompProfile = csc.SeccompProfile
	}
	if csc.SELinuxOptions != nil {
		eff.SELinuxOptions = csc.SELinuxOptions
	}
	if csc.AppArmorProfile != nil {
		eff.AppArmorProfile = csc.AppArmorProfile
	}
	eff.Capabilities, eff.Privileged, eff.ReadOnlyRootFilesystem = csc.Capabilities, csc.Privileged, csc.ReadOnlyRootFilesystem
	eff.AllowPrivilegeEscalation, eff.ProcMount = csc.AllowPrivilegeEscalation, csc.ProcMount
	return eff
}

// imageUser is kubelet's getImageUser: a numeric uid, or a user name; an
// image without USER runs as root.
func imageUser(user string) (uid *int64, name string) {
	if user == "" {
		zero := int64(0)
		return &zero, ""
	}
	u, _, _ := strings.Cut(user, ":")
	if n, err := strconv.ParseInt(u, 10, 64); err == nil {
		return &n, ""
	}
	return nil, u
}

// podDescription is kubelet's format.Pod: name_namespace(uid).
func podDescription(pod *corev1.Pod) string {
	return fmt.Sprintf("%s_%s(%s)", pod.Name, pod.Namespace, pod.UID)
}

// verifyRunAsNonRoot is kubelet's check, with its messages.
func verifyRunAsNonRoot(pod *corev1.Pod, c *corev1.Container, sc *corev1.SecurityContext, uid *int64, name string) error {
	if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		return nil
	}
	if sc.RunAsUser != nil {
		if *sc.RunAsUser == 0 {
			return fmt.Errorf("container's runAsUser breaks non-root policy (pod: %q, container: %s)", podDescription(pod), c.Name)
		}
		return nil
	}
	switch {
	case uid != nil && *uid == 0:
		return fmt.Errorf("container has runAsNonRoot and image will run as root (pod: %q, container: %s)", podDescription(pod), c.Name)
	case uid == nil && name != "":
		return fmt.Errorf("container has runAsNonRoot and image has non-numeric user (%s), cannot verify user is non-root (pod: %q, container: %s)", name, podDescription(pod), c.Name)
	}
	return nil
}

// securitySpec turns the container's securityContext into runtime
// settings, refusing what kubelet refuses (CreateContainerConfigError).
func (a *Agent) securitySpec(ctx context.Context, pod *corev1.Pod, c *corev1.Container) (runtime.Security, error) {
	sc := effectiveSecurity(pod, c)
	img, err := a.cfg.Runtime.ImageUser(ctx, c.Image)
	if err != nil {
		return runtime.Security{}, err
	}
	uid, name := imageUser(img)
	if err := verifyRunAsNonRoot(pod, c, sc, uid, name); err != nil {
		return runtime.Security{}, err
	}
	var s runtime.Security
	switch {
	case sc.RunAsUser != nil:
		s.User = strconv.FormatInt(*sc.RunAsUser, 10)
	case sc.RunAsGroup != nil && uid != nil:
		s.User = strconv.FormatInt(*uid, 10)
	case sc.RunAsGroup != nil:
		s.User = name
	}
	if sc.RunAsGroup != nil {
		s.User += ":" + strconv.FormatInt(*sc.RunAsGroup, 10)
	}
	if psc := pod.Spec.SecurityContext; psc != nil {
		for _, g := range psc.SupplementalGroups {
			s.SupplementalGIDs = append(s.SupplementalGIDs, uint32(g))
		}
		if psc.FSGroup != nil {
			s.SupplementalGIDs = append(s.SupplementalGIDs, uint32(*psc.FSGroup))
		}
	}
	s.ReadonlyRootfs = sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem
	s.NoNewPrivileges = sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation
	s.Privileged = sc.Privileged != nil && *sc.Privileged
	if caps := sc.Capabilities; caps != nil {
		for _, c := range caps.Add {
			s.CapAdd = append(s.CapAdd, string(c))
		}
		for _, c := range caps.Drop {
			s.CapDrop = append(s.CapDrop, string(c))
		}
	}
	s.UnmaskedProc = sc.ProcMount != nil && *sc.ProcMount == corev1.UnmaskedProcMount
	if p := sc.SeccompProfile; p != nil {
		switch p.Type {
		case corev1.SeccompProfileTypeRuntimeDefault:
			s.Seccomp = runtime.SeccompRuntimeDefault
		case corev1.SeccompProfileTypeLocalhost:
			if p.LocalhostProfile == nil {
				return s, fmt.Errorf("localhost seccomp profile of container %s names no file", c.Name)
			}
			s.Seccomp = filepath.Join(a.cfg.RootDir, "seccomp", filepath.Clean("/"+*p.LocalhostProfile))
		}
	}
	return s, nil
}

// fsUser is kubelet's FsUserFrom: the runAsUser every container shares,
// which then owns the projected token file.
func fsUser(pod *corev1.Pod) *int64 {
	var user *int64
	all := append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...)
	for i := range all {
		u := effectiveSecurity(pod, &all[i]).RunAsUser
		if u == nil || (user != nil && *user != *u) {
			return nil
		}
		user = u
	}
	return user
}
