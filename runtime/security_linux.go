//go:build linux

package runtime

import (
	"context"
	"fmt"
	"strings"

	"github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
)

// SeccompRuntimeDefault selects containerd's default seccomp profile.
const SeccompRuntimeDefault = "runtime/default"

// Security is what a container's securityContext asks of the runtime, in
// the terms of containerd's CRI.
type Security struct {
	// User is "uid", "uid:gid", a user name or "name:group"; "" keeps the
	// image's USER.
	User string
	// SupplementalGIDs are added to the groups from the image's /etc/group.
	SupplementalGIDs []uint32
	ReadonlyRootfs   bool
	NoNewPrivileges  bool
	Privileged       bool
	// CapAdd and CapDrop are Kubernetes capability names ("NET_ADMIN"),
	// or "ALL".
	CapAdd, CapDrop []string
	// Seccomp is "" (unconfined), SeccompRuntimeDefault or the path of a
	// profile file.
	Seccomp string
	// UnmaskedProc leaves /proc unmasked (procMount: Unmasked).
	UnmaskedProc bool
}

// securityOpts are the spec options for s; they come after the image
// config, which set the image's user.
func securityOpts(s Security) []oci.SpecOpts {
	var opts []oci.SpecOpts
	if s.User != "" {
		opts = append(opts, oci.WithUser(s.User))
		uid, _, _ := strings.Cut(s.User, ":")
		opts = append(opts, oci.WithAdditionalGIDs(uid))
	}
	if len(s.SupplementalGIDs) > 0 {
		opts = append(opts, withSupplementalGroups(s.SupplementalGIDs))
	}
	if s.ReadonlyRootfs {
		opts = append(opts, oci.WithRootFSReadonly())
	}
	if s.NoNewPrivileges {
		opts = append(opts, oci.WithNoNewPrivileges)
	}
	if s.Privileged {
		opts = append(opts, oci.WithPrivileged, oci.WithHostDevices, oci.WithAllDevicesAllowed)
	} else {
		opts = append(opts, capabilityOpts(s.CapAdd, s.CapDrop)...)
	}
	if s.UnmaskedProc {
		opts = append(opts, oci.WithMaskedPaths(nil), oci.WithReadonlyPaths(nil))
	}
	switch {
	case s.Privileged || s.Seccomp == "":
	case s.Seccomp == SeccompRuntimeDefault:
		opts = append(opts, seccomp.WithDefaultProfile()) // after the capabilities it depends on
	default:
		opts = append(opts, seccomp.WithProfile(s.Seccomp))
	}
	return opts
}

// capabilityOpts is containerd CRI's WithCapabilities: "ALL" first, then
// single names with the CAP_ prefix.
func capabilityOpts(add, drop []string) []oci.SpecOpts {
	var opts []oci.SpecOpts
	has := func(list []string) bool {
		for _, c := range list {
			if strings.EqualFold(c, "ALL") {
				return true
			}
		}
		return false
	}
	if has(add) {
		opts = append(opts, oci.WithAllKnownCapabilities)
	}
	if has(drop) {
		opts = append(opts, oci.WithCapabilities(nil))
	}
	named := func(list []string) []string {
		var out []string
		for _, c := range list {
			if !strings.EqualFold(c, "ALL") {
				out = append(out, "CAP_"+strings.ToUpper(c))
			}
		}
		return out
	}
	if caps := named(add); len(caps) > 0 {
		opts = append(opts, oci.WithAddedCapabilities(caps))
	}
	if caps := named(drop); len(caps) > 0 {
		opts = append(opts, oci.WithDroppedCapabilities(caps))
	}
	return opts
}

// withSupplementalGroups appends gids to the process's groups.
func withSupplementalGroups(gids []uint32) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Process == nil {
			return fmt.Errorf("spec has no process")
		}
		for _, g := range gids {
			dup := false
			for _, have := range s.Process.User.AdditionalGids {
				dup = dup || have == g
			}
			if !dup {
				s.Process.User.AdditionalGids = append(s.Process.User.AdditionalGids, g)
			}
		}
		return nil
	}
}

// ImageUser is the USER of an image's config ("" for none).
func (r *ContainerdRuntime) ImageUser(ctx context.Context, ref string) (string, error) {
	ctx = r.ctx(ctx)
	img, err := r.c.GetImage(ctx, NormalizeRef(ref))
	if err != nil {
		return "", fmt.Errorf("image %s: %w", ref, err)
	}
	spec, err := img.Spec(ctx)
	if err != nil {
		return "", fmt.Errorf("image %s config: %w", ref, err)
	}
	return spec.Config.User, nil
}
