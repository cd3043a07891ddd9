//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/nanokube/nanokube/internal/lab"
)

// StartReport is what -start-only measures: the start times and the idle
// memory of a fresh cluster, nothing else.
type StartReport struct {
	ColdStartS float64 `json:"cold_start_seconds"`
	// ColdDroppedS is the cold start after the page cache was dropped
	// (-drop-caches): every page of the binary comes from disk.
	ColdDroppedS float64            `json:"cold_start_dropped_cache_seconds,omitempty"`
	WarmStartS   float64            `json:"warm_restart_seconds"`
	IdleRSSBy    map[string]float64 `json:"idle_rss_mb_by_process"`
	IdleAnonBy   map[string]float64 `json:"idle_rss_anon_mb_by_process"`
	IdleFileBy   map[string]float64 `json:"idle_rss_file_mb_by_process"`
	// DaemonMapping is the daemon's resident memory per mapping of its
	// executable (from /proc/PID/smaps), in MB, by the mapping's
	// permissions (r-xp is .text, r--p .rodata and .gopclntab, rw-p .data).
	DaemonMapping map[string]float64 `json:"daemon_binary_rss_mb_by_mapping"`
	// BinaryCachedMB is how much of the binary was in the page cache
	// before the start that the idle numbers belong to (the warm
	// restart), of BinaryMB: the kernel maps file pages around each
	// fault only from what is cached, so RssFile depends on it.
	BinaryCachedMB float64 `json:"binary_page_cache_mb_before_start"`
	BinaryMB       float64 `json:"binary_mb"`
}

// runStartOnly measures the start times and the idle RSS alone, like the
// first part of run: cold start, stop, warm start, then the idle memory.
// With dropCaches, a second cold start of a fresh profile follows a
// dropped page cache.
func runStartOnly(ctx context.Context, binary string, dropCaches bool) (*StartReport, error) {
	rep := &StartReport{}
	err := inLab(func(l *lab.Lab) error {
		nk := func(args ...string) (time.Duration, error) {
			begin := time.Now()
			out, err := l.Command(ctx, binary, args...).CombinedOutput()
			if err != nil {
				return 0, fmt.Errorf("nanokube %v: %w: %s", args, err, out)
			}
			return time.Since(begin), nil
		}
		defer nk("delete", "-p", profile)
		cold, err := nk("start", "-p", profile)
		if err != nil {
			return err
		}
		rep.ColdStartS = cold.Seconds()
		if _, err := nk("stop", "-p", profile); err != nil {
			return err
		}
		if dropCaches {
			if _, err := nk("delete", "-p", profile); err != nil {
				return err
			}
			if err := dropPageCache(); err != nil {
				return err
			}
			d, err := nk("start", "-p", profile)
			if err != nil {
				return err
			}
			rep.ColdDroppedS = d.Seconds()
			if _, err := nk("stop", "-p", profile); err != nil {
				return err
			}
		}
		if rep.BinaryCachedMB, rep.BinaryMB, err = pageCacheOf(binary); err != nil {
			return err
		}
		warm, err := nk("start", "-p", profile)
		if err != nil {
			return err
		}
		rep.WarmStartS = warm.Seconds()
		pid, err := daemonPid(l.Home)
		if err != nil {
			return err
		}
		// Let start-up work settle, then measure the idle cluster, as run does.
		time.Sleep(5 * time.Second)
		if _, rep.IdleRSSBy, err = rssOf(pid, l.Home); err != nil {
			return err
		}
		if _, rep.IdleAnonBy, err = anonRSSOf(pid, l.Home); err != nil {
			return err
		}
		if _, rep.IdleFileBy, err = statusSum(pid, l.Home, "RssFile:"); err != nil {
			return err
		}
		rep.DaemonMapping, err = binaryMappings(pid, binary)
		return err
	})
	return rep, err
}

// dropPageCache writes back dirty pages and drops the clean page cache, so
// the next start reads the binary (and containerd, runc) from disk.
func dropPageCache() error {
	f, err := os.OpenFile("/proc/sys/vm/drop_caches", os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("drop page cache: %w", err)
	}
	defer f.Close()
	syscall.Sync()
	if _, err := f.WriteString("3\n"); err != nil {
		return fmt.Errorf("drop page cache: %w", err)
	}
	return nil
}

// pageCacheOf reports how many MB of file are in the page cache (mincore on
// a mapping that is never touched) and the file's size.
func pageCacheOf(file string) (cached, size float64, err error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return 0, 0, fmt.Errorf("map %s: %w", file, err)
	}
	defer unix.Munmap(m)
	pages := make([]byte, (len(m)+os.Getpagesize()-1)/os.Getpagesize())
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&pages[0]))); errno != 0 {
		return 0, 0, fmt.Errorf("mincore %s: %w", file, errno)
	}
	n := 0
	for _, p := range pages {
		n += int(p & 1)
	}
	return float64(n*os.Getpagesize()) / (1 << 20), float64(st.Size()) / (1 << 20), nil
}

// binaryMappings sums the Rss of the daemon's mappings of binary by their
// permissions.
func binaryMappings(pid int, binary string) (map[string]float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return nil, fmt.Errorf("read smaps: %w", err)
	}
	by := map[string]float64{}
	cur := ""
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if !strings.HasSuffix(f[0], ":") { // a mapping's header line
			cur = ""
			if len(f) >= 6 && f[5] == binary {
				cur = f[1]
			}
			continue
		}
		if cur != "" && f[0] == "Rss:" && len(f) > 1 {
			kb, _ := strconv.ParseFloat(f[1], 64)
			by[cur] += kb / 1024
		}
	}
	return by, nil
}

// printStartReport writes rep to out (a file) and stdout.
func printStartReport(rep *StartReport, out string) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	fmt.Printf("%s\n", b)
	return os.WriteFile(out, append(b, '\n'), 0o644)
}
