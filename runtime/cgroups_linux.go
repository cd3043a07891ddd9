//go:build linux

package runtime

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Cgroups reads and writes the cgroups of pods and containers, on cgroup
// v2 (one unified hierarchy) or v1 (one hierarchy per controller), with
// runc's cgroupfs layout: a path like /nanokube-p/node/kubepods/pod<uid>
// is the same directory under every hierarchy's mount point.
type Cgroups struct {
	v2     bool
	root   string            // v2: the unified mount
	mounts map[string]string // v1: controller → mount point
	all    []string          // v1: every cgroup mount (named ones and a hybrid cgroup2 too)
}

// DetectCgroups finds the cgroup mounts of this host. Hybrid hosts (v1
// controllers plus an empty cgroup2 mount) count as v1, like runc does.
func DetectCgroups() (*Cgroups, error) {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		return nil, fmt.Errorf("statfs /sys/fs/cgroup: %w", err)
	}
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		return &Cgroups{v2: true, root: "/sys/fs/cgroup"}, nil
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c := &Cgroups{mounts: map[string]string{}}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		mp, fstype, opts, ok := parseMountinfo(sc.Text())
		if ok && (fstype == "cgroup" || fstype == "cgroup2") {
			// runc makes the container's path in every hierarchy.
			c.all = append(c.all, mp)
		}
		if !ok || fstype != "cgroup" {
			continue
		}
		for _, o := range strings.Split(opts, ",") {
			switch o {
			case "cpu", "cpuacct", "memory", "pids", "cpuset", "blkio", "devices", "freezer", "hugetlb", "net_cls", "net_prio", "perf_event", "rdma", "misc":
				c.mounts[o] = mp
			}
		}
	}
	if c.mounts["memory"] == "" || c.mounts["cpu"] == "" {
		return nil, errors.New("no cgroup v2 mount and no cgroup v1 cpu and memory hierarchies")
	}
	return c, nil
}

// parseMountinfo returns the mount point, filesystem type and super options
// of one /proc/self/mountinfo line.
func parseMountinfo(line string) (mountPoint, fstype, superOpts string, ok bool) {
	f := strings.Fields(line)
	for i, x := range f {
		if x == "-" && i+3 < len(f) && len(f) > 4 {
			return f[4], f[i+1], f[i+3], true
		}
	}
	return "", "", "", false
}

// V2 reports whether the host uses the unified hierarchy.
func (c *Cgroups) V2() bool { return c.v2 }

// CgroupResources are the limits of one cgroup; zero values leave the
// kernel's default (no limit, default weight).
type CgroupResources struct {
	CPUShares   uint64 // cgroup v1 shares (2..262144); v2 weight is derived
	CPUQuota    int64  // microseconds per period; 0: no quota
	CPUPeriod   uint64 // microseconds; 0: 100000
	MemoryLimit int64  // bytes; 0: none
}

// CPUSharesToWeight converts v1 shares to a v2 cpu.weight like runc.
func CPUSharesToWeight(shares uint64) uint64 {
	if shares == 0 {
		return 0
	}
	return 1 + ((shares-2)*9999)/262142
}

// dirs is where path lives in each hierarchy that holds the controllers we
// manage (v1: cpu, cpuacct, memory, pids; cpuset is left to runc, which
// fills in cpus and mems of the directories it creates).
func (c *Cgroups) dirs(path string) []string {
	if c.v2 {
		return []string{filepath.Join(c.root, path)}
	}
	seen := map[string]bool{}
	var out []string
	for _, ctl := range []string{"cpu", "cpuacct", "memory", "pids"} {
		if mp := c.mounts[ctl]; mp != "" && !seen[mp] {
			seen[mp] = true
			out = append(out, filepath.Join(mp, path))
		}
	}
	return out
}

// Ensure creates the cgroup at path (and its parents) and applies res.
// It is idempotent: an existing cgroup gets the same settings again.
func (c *Cgroups) Ensure(path string, res CgroupResources) error {
	if c.v2 {
		if err := c.ensureV2(path); err != nil {
			return err
		}
	} else {
		for _, d := range c.dirs(path) {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return fmt.Errorf("create cgroup %s: %w", d, err)
			}
		}
	}
	return c.apply(path, res)
}

// ensureV2 creates path under the unified hierarchy, enabling the cpu,
// memory and pids controllers for the children of every ancestor.
func (c *Cgroups) ensureV2(path string) error {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	cur := c.root
	for i, p := range parts {
		next := filepath.Join(cur, p)
		if err := enableControllers(cur); err != nil {
			return fmt.Errorf("enable controllers in %s: %w", cur, err)
		}
		if err := os.Mkdir(next, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create cgroup %s: %w", next, err)
		}
		cur = next
		if i == len(parts)-1 {
			// Children (the containers) get the controllers too.
			if err := enableControllers(cur); err != nil {
				return fmt.Errorf("enable controllers in %s: %w", cur, err)
			}
		}
	}
	return nil
}

func enableControllers(dir string) error {
	avail, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return err
	}
	have, _ := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
	enabled := strings.Fields(string(have))
	var want []string
	for _, ctl := range strings.Fields(string(avail)) {
		if (ctl == "cpu" || ctl == "memory" || ctl == "pids") && !containsString(enabled, ctl) {
			want = append(want, "+"+ctl)
		}
	}
	if len(want) == 0 {
		return nil
	}
	file := filepath.Join(dir, "cgroup.subtree_control")
	if err := os.WriteFile(file, []byte(strings.Join(want, " ")), 0o644); err == nil {
		return nil
	}
	// One at a time, like runc, when the kernel refuses the set.
	for _, w := range want {
		if err := os.WriteFile(file, []byte(w), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (c *Cgroups) apply(path string, res CgroupResources) error {
	period := res.CPUPeriod
	if period == 0 {
		period = 100000
	}
	type setting struct{ ctl, file, value string }
	var set []setting
	if c.v2 {
		if w := CPUSharesToWeight(res.CPUShares); w > 0 {
			set = append(set, setting{"cpu", "cpu.weight", strconv.FormatUint(w, 10)})
		}
		quota := "max"
		if res.CPUQuota > 0 {
			quota = strconv.FormatInt(res.CPUQuota, 10)
		}
		set = append(set, setting{"cpu", "cpu.max", quota + " " + strconv.FormatUint(period, 10)})
		mem := "max"
		if res.MemoryLimit > 0 {
			mem = strconv.FormatInt(res.MemoryLimit, 10)
		}
		set = append(set, setting{"memory", "memory.max", mem})
	} else {
		if res.CPUShares > 0 {
			set = append(set, setting{"cpu", "cpu.shares", strconv.FormatUint(res.CPUShares, 10)})
		}
		quota := int64(-1)
		if res.CPUQuota > 0 {
			quota = res.CPUQuota
		}
		set = append(set, setting{"cpu", "cpu.cfs_period_us", strconv.FormatUint(period, 10)}, setting{"cpu", "cpu.cfs_quota_us", strconv.FormatInt(quota, 10)})
		mem := int64(-1)
		if res.MemoryLimit > 0 {
			mem = res.MemoryLimit
		}
		set = append(set, setting{"memory", "memory.limit_in_bytes", strconv.FormatInt(mem, 10)})
	}
	for _, s := range set {
		file := filepath.Join(c.dir(s.ctl, path), s.file)
		if err := os.WriteFile(file, []byte(s.value), 0o644); err != nil {
			return fmt.Errorf("write %s = %s: %w", file, s.value, err)
		}
	}
	return nil
}

// dir is path in the hierarchy of controller ctl.
func (c *Cgroups) dir(ctl, path string) string {
	if c.v2 {
		return filepath.Join(c.root, path)
	}
	return filepath.Join(c.mounts[ctl], path)
}

// Remove deletes the cgroup at path and every cgroup below it, in every
// hierarchy (runc removes the containers' own; this takes the pods' and
// the profile's). A cgroup that still holds processes makes it fail.
func (c *Cgroups) Remove(path string) error {
	if strings.Trim(path, "/") == "" {
		return errors.New("refusing to remove the root cgroup")
	}
	var dirs []string
	if c.v2 {
		dirs = []string{filepath.Join(c.root, path)}
	} else {
		for _, mp := range c.all {
			dirs = append(dirs, filepath.Join(mp, path))
		}
	}
	var errs []error
	for _, d := range dirs {
		var all []string
		filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				all = append(all, p)
			}
			return nil
		})
		// Deepest first.
		sort.Slice(all, func(i, j int) bool { return len(all[i]) > len(all[j]) })
		for _, p := range all {
			if err := unix.Rmdir(p); err != nil && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("remove cgroup %s: %w", p, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Exists reports whether the cgroup at path exists.
func (c *Cgroups) Exists(path string) bool {
	_, err := os.Stat(c.dir("memory", path))
	return err == nil
}

// CgroupStats is what a cgroup has used.
type CgroupStats struct {
	CPUUsageNanos uint64 // cumulative CPU time
	MemoryUsage   uint64 // bytes charged, page cache included
	WorkingSet    uint64 // usage minus inactive file pages, like cAdvisor
	OOMKills      uint64 // processes the OOM killer ended in this cgroup
}

// Stats reads the usage of the cgroup at path.
func (c *Cgroups) Stats(path string) (CgroupStats, error) {
	var st CgroupStats
	if c.v2 {
		dir := filepath.Join(c.root, path)
		cpu, err := readKeyed(filepath.Join(dir, "cpu.stat"))
		if err != nil {
			return st, err
		}
		st.CPUUsageNanos = cpu["usage_usec"] * 1000
		if st.MemoryUsage, err = readUint(filepath.Join(dir, "memory.current")); err != nil {
			return st, err
		}
		mem, _ := readKeyed(filepath.Join(dir, "memory.stat"))
		st.WorkingSet = workingSet(st.MemoryUsage, mem["inactive_file"])
		ev, _ := readKeyed(filepath.Join(dir, "memory.events"))
		st.OOMKills = ev["oom_kill"]
		return st, nil
	}
	acct := c.mounts["cpuacct"]
	if acct == "" {
		acct = c.mounts["cpu"]
	}
	var err error
	if st.CPUUsageNanos, err = readUint(filepath.Join(acct, path, "cpuacct.usage")); err != nil {
		return st, err
	}
	memDir := filepath.Join(c.mounts["memory"], path)
	if st.MemoryUsage, err = readUint(filepath.Join(memDir, "memory.usage_in_bytes")); err != nil {
		return st, err
	}
	mem, _ := readKeyed(filepath.Join(memDir, "memory.stat"))
	st.WorkingSet = workingSet(st.MemoryUsage, mem["total_inactive_file"])
	oom, _ := readKeyed(filepath.Join(memDir, "memory.oom_control"))
	st.OOMKills = oom["oom_kill"]
	return st, nil
}

func workingSet(usage, inactiveFile uint64) uint64 {
	if inactiveFile > usage {
		return 0
	}
	return usage - inactiveFile
}

func readUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}

// readKeyed reads a "key value" per line file (cpu.stat, memory.stat, …).
func readKeyed(path string) (map[string]uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 {
			if n, err := strconv.ParseUint(f[1], 10, 64); err == nil {
				out[f[0]] = n
			}
		}
	}
	return out, nil
}
