package volume

import (
	"fmt"
	"os"
	"sort"
	"strconv"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// MountTmpfs makes dir a tmpfs of at most size bytes (0: the kernel's
// default), unless something is mounted there already (an adopted pod).
// A fresh tmpfs root is 1777, like kubelet's memory-backed volumes.
func MountTmpfs(dir string, size int64) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if mounted, err := mountinfo.Mounted(dir); err != nil {
		return fmt.Errorf("check mounts at %s: %w", dir, err)
	} else if mounted {
		return nil
	}
	opts := ""
	if size > 0 {
		opts = "size=" + strconv.FormatInt(size, 10)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, opts); err != nil {
		return fmt.Errorf("mount tmpfs at %s: %w", dir, err)
	}
	return nil
}

// UnmountUnder unmounts every mount at or below root, deepest first, so
// the directory can be removed.
func UnmountUnder(root string) error {
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(root))
	if err != nil {
		return fmt.Errorf("list mounts under %s: %w", root, err)
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i].Mountpoint) > len(mounts[j].Mountpoint) })
	for _, m := range mounts {
		if err := unix.Unmount(m.Mountpoint, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
			return fmt.Errorf("unmount %s: %w", m.Mountpoint, err)
		}
	}
	return nil
}
