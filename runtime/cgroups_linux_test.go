//go:build linux

package runtime

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCgroupsV2 runs against a directory laid out like a unified
// hierarchy (the kernel would create the interface files).
func TestCgroupsV2(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"", "nk", "nk/pod1"} {
		write(t, filepath.Join(root, d, "cgroup.controllers"), "cpuset cpu io memory pids\n")
	}
	c := &Cgroups{v2: true, root: root}
	res := CgroupResources{CPUShares: 1024, CPUQuota: 50000, CPUPeriod: 100000, MemoryLimit: 64 << 20}
	if err := c.Ensure("/nk/pod1", res); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"", "nk", "nk/pod1"} {
		if got := read(t, filepath.Join(root, d, "cgroup.subtree_control")); got != "+cpu +memory +pids" {
			t.Errorf("%s/cgroup.subtree_control = %q", d, got)
		}
	}
	pod := filepath.Join(root, "nk/pod1")
	for file, want := range map[string]string{"cpu.weight": "39", "cpu.max": "50000 100000", "memory.max": "67108864"} {
		if got := read(t, filepath.Join(pod, file)); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	if err := c.Ensure("/nk/pod1", CgroupResources{}); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(pod, "cpu.max")) + " " + read(t, filepath.Join(pod, "memory.max")); got != "max 100000 max" {
		t.Errorf("unlimited = %q", got)
	}
	ctr := filepath.Join(pod, "ctr")
	write(t, filepath.Join(ctr, "cpu.stat"), "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n")
	write(t, filepath.Join(ctr, "memory.current"), "10485760\n")
	write(t, filepath.Join(ctr, "memory.stat"), "anon 8388608\ninactive_file 2097152\n")
	write(t, filepath.Join(ctr, "memory.events"), "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n")
	st, err := c.Stats("/nk/pod1/ctr")
	if err != nil {
		t.Fatal(err)
	}
	if st.CPUUsageNanos != 2_500_000_000 || st.MemoryUsage != 10<<20 || st.WorkingSet != 8<<20 || st.OOMKills != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestCgroupsV1(t *testing.T) {
	root := t.TempDir()
	mounts := map[string]string{}
	for _, ctl := range []string{"cpu", "cpuacct", "memory", "pids"} {
		mounts[ctl] = filepath.Join(root, ctl)
	}
	c := &Cgroups{mounts: mounts, all: []string{mounts["cpu"], mounts["cpuacct"], mounts["memory"], mounts["pids"], filepath.Join(root, "systemd")}}
	if err := c.Ensure("/nk/pod1", CgroupResources{CPUShares: 512, MemoryLimit: 32 << 20}); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{"cpu/nk/pod1/cpu.shares": "512", "cpu/nk/pod1/cpu.cfs_quota_us": "-1", "cpu/nk/pod1/cpu.cfs_period_us": "100000",
		"memory/nk/pod1/memory.limit_in_bytes": "33554432"} {
		if got := read(t, filepath.Join(root, file)); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	ctr := "/nk/pod1/ctr"
	write(t, filepath.Join(mounts["cpuacct"], ctr, "cpuacct.usage"), "123456789\n")
	write(t, filepath.Join(mounts["memory"], ctr, "memory.usage_in_bytes"), "4194304\n")
	write(t, filepath.Join(mounts["memory"], ctr, "memory.stat"), "cache 1048576\ntotal_inactive_file 1048576\n")
	write(t, filepath.Join(mounts["memory"], ctr, "memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
	st, err := c.Stats(ctr)
	if err != nil {
		t.Fatal(err)
	}
	if st.CPUUsageNanos != 123456789 || st.WorkingSet != 3<<20 || st.OOMKills != 2 {
		t.Errorf("stats = %+v", st)
	}
	// Remove takes the tree in every hierarchy (the test files stand in for
	// the kernel's, so only directories without them can go here).
	if err := os.MkdirAll(filepath.Join(root, "systemd", "nk", "pod2"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := c.Remove("/nk"); err == nil {
		t.Error("removed a cgroup tree with files in it (the kernel would refuse a busy one)")
	}
	if _, err := os.Stat(filepath.Join(root, "systemd", "nk")); !os.IsNotExist(err) {
		t.Errorf("empty hierarchy tree still there: %v", err)
	}
	if err := c.Remove("/"); err == nil {
		t.Error("Remove(/) did not refuse")
	}
}

func TestParseMountinfo(t *testing.T) {
	line := "35 25 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,cpu,cpuacct"
	mp, fstype, opts, ok := parseMountinfo(line)
	if !ok || mp != "/sys/fs/cgroup/cpu,cpuacct" || fstype != "cgroup" || !strings.Contains(opts, "cpuacct") {
		t.Errorf("parse = %q %q %q %v", mp, fstype, opts, ok)
	}
	if got := CPUSharesToWeight(2); got != 1 {
		t.Errorf("weight of 2 shares = %d", got)
	}
	if got := CPUSharesToWeight(262144); got != 10000 {
		t.Errorf("weight of max shares = %d", got)
	}
}
