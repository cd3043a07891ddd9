package volume

import (
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
)

// Permission bits kubelet adds for fsGroup.
const (
	rwMask   = os.FileMode(0o660)
	roMask   = os.FileMode(0o440)
	execMask = os.FileMode(0o110)
)

// SetOwnership is kubelet's SetVolumeOwnership: everything under dir gets
// group fsGroup, files g+rw (g+r for a read-only volume), directories
// setgid and g+x. With policy OnRootMismatch nothing happens when the
// root already has the group and bits.
func SetOwnership(dir string, fsGroup *int64, readOnly bool, policy *corev1.PodFSGroupChangePolicy) error {
	if fsGroup == nil {
		return nil
	}
	gid := int(*fsGroup)
	if policy != nil && *policy == corev1.FSGroupChangeOnRootMismatch && !needsChange(dir, gid, readOnly) {
		return nil
	}
	return filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return changePermission(p, gid, readOnly, info)
	})
}

func changePermission(p string, gid int, readOnly bool, info os.FileInfo) error {
	if err := os.Lchown(p, -1, gid); err != nil {
		return err
	}
	if info.Mode()&os.ModeSymlink != 0 {
		return nil
	}
	mask := rwMask
	if readOnly {
		mask = roMask
	}
	if info.IsDir() {
		mask |= os.ModeSetgid | execMask
	}
	return os.Chmod(p, info.Mode()|mask)
}

// needsChange is kubelet's requiresPermissionChange for the volume root.
func needsChange(dir string, gid int, readOnly bool) bool {
	fi, err := os.Stat(dir)
	if err != nil {
		return true
	}
	if st := statGID(fi); st != gid {
		return true
	}
	mask := rwMask
	if readOnly {
		mask = roMask
	}
	mask |= os.ModeSetgid | execMask
	return fi.Mode()&mask != mask
}
