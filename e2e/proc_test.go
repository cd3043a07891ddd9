//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func daemonPid(t *testing.T, profile string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(theLab.Home, "profiles", profile, "daemon.pid"))
	if err != nil {
		t.Fatalf("read daemon pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("parse daemon pid: %v", err)
	}
	return pid
}

// waitGone blocks until pid has exited, through a pidfd (no polling).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	if err == syscall.ESRCH {
		return
	}
	if err != nil {
		t.Fatalf("pidfd_open %d: %v", pid, err)
	}
	defer unix.Close(fd)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 60_000)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || n == 0 {
			t.Fatalf("wait for pid %d to exit: %v (n=%d)", pid, err, n)
		}
		return
	}
}
