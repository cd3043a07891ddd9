//go:build linux

package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ourProcesses returns the daemon and every process that belongs to the
// profile: its descendants and anything whose command line names the
// profile's directories (containerd, shims, log drivers).
func ourProcesses(daemon int, home string) map[int]string {
	procs := map[int]string{}
	parent := map[int]int{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	marks := []string{filepath.Join(home, "profiles", profile), "/run/nanokube/" + profile}
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(bytes.TrimRight(cmdline, "\x00")), "\x00")
		name := filepath.Base(args[0])
		if stat, err := os.ReadFile(filepath.Join(d, "stat")); err == nil {
			if f := statFields(stat); len(f) > 1 {
				parent[pid], _ = strconv.Atoi(f[1])
			}
		}
		joined := strings.Join(args, " ")
		for _, m := range marks {
			if strings.Contains(joined, m) {
				procs[pid] = name
			}
		}
		if pid == daemon {
			procs[pid] = "nanokube-daemon"
		}
		_ = name
	}
	// descendants of anything found
	for changed := true; changed; {
		changed = false
		for pid, pp := range parent {
			if _, ok := procs[pid]; !ok {
				if _, ok := procs[pp]; ok {
					procs[pid] = commName(pid)
					changed = true
				}
			}
		}
	}
	return procs
}

func commName(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}

// statFields splits /proc/pid/stat after the parenthesised command name:
// field 0 is the state, 1 the parent pid, 11/12 utime/stime.
func statFields(stat []byte) []string {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(stat[i+1:]))
}

func rssOf(daemon int, home string) (float64, map[string]float64, error) {
	return statusSum(daemon, home, "VmRSS:")
}

// anonRSSOf is the private (anonymous) part of rssOf: what the processes
// hold beyond the file pages of their executables, which the page cache
// shares and may reclaim.
func anonRSSOf(daemon int, home string) (float64, map[string]float64, error) {
	return statusSum(daemon, home, "RssAnon:")
}

// statusSum adds up one kB field of /proc/PID/status over our processes.
func statusSum(daemon int, home, field string) (float64, map[string]float64, error) {
	by := map[string]float64{}
	total := 0.0
	for pid, name := range ourProcesses(daemon, home) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, field) {
				kb, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
				by[name] += kb / 1024
				total += kb / 1024
			}
		}
	}
	if total == 0 {
		return 0, nil, fmt.Errorf("found no nanokube processes (daemon pid %d)", daemon)
	}
	return total, by, nil
}

func cpuTicks(daemon int, home string) float64 {
	var ticks float64
	for pid := range ourProcesses(daemon, home) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		f := statFields(b)
		if len(f) > 12 {
			u, _ := strconv.ParseFloat(f[11], 64)
			s, _ := strconv.ParseFloat(f[12], 64)
			ticks += u + s
		}
	}
	return ticks
}

// cpuOf measures the CPU used by our processes over window, in percent of one core.
func cpuOf(daemon int, home string, window time.Duration) (float64, error) {
	const hz = 100 // USER_HZ
	before := cpuTicks(daemon, home)
	time.Sleep(window)
	after := cpuTicks(daemon, home)
	return (after - before) / hz / window.Seconds() * 100, nil
}

// parseBench reads `go test -bench` output: every "value unit" pair after the
// iteration count becomes "<Benchmark>/<unit>".
func parseBench(out []byte) map[string]float64 {
	m := map[string]float64{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := strings.TrimPrefix(f[0], "Benchmark")
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			name = name[:i]
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err == nil {
				m[name+"/"+f[i+1]] = v
			}
		}
	}
	return m
}
