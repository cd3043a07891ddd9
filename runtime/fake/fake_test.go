//go:build linux

package fake

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nanokube/nanokube/runtime"
)

func TestRunExitWaitRemove(t *testing.T) {
	ctx := context.Background()
	r := New()
	logPath := filepath.Join(t.TempDir(), "logs", "c.log")
	spec := runtime.ContainerSpec{ID: "u1-app", Image: "busybox", LogPath: logPath, Labels: map[string]string{"pod": "u1"}}
	if err := r.Run(ctx, spec); err != nil {
		t.Fatalf("Run: %v", err)
	}
	st, err := r.Inspect(ctx, "u1-app")
	if err != nil || !st.Running || st.Pid == 0 || st.ImageRef != "docker.io/library/busybox:latest" {
		t.Fatalf("Inspect after Run = %+v, %v; want running busybox", st, err)
	}
	if _, err := os.Stat(logPath); err != nil {
		t.Fatalf("log file not created: %v", err)
	}
	if err := r.Log("u1-app", "hello\n"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(logPath); string(b) != "hello\n" {
		t.Errorf("log = %q, want hello", b)
	}
	exit, err := r.Wait(ctx, "u1-app")
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if err := r.Exit("u1-app", 3); err != nil {
		t.Fatalf("Exit: %v", err)
	}
	select {
	case code := <-exit:
		if code != 3 {
			t.Errorf("exit code = %d, want 3", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not report the exit")
	}
	st, _ = r.Inspect(ctx, "u1-app")
	if st.Running || st.Created || st.ExitCode != 3 || st.FinishedAt.IsZero() {
		t.Errorf("Inspect after exit = %+v, want exited with 3", st)
	}
	if err := r.Exit("u1-app", 1); !errors.Is(err, runtime.ErrNotRunning) {
		t.Errorf("Exit of an exited container = %v, want ErrNotRunning", err)
	}
	if l, _ := r.List(ctx, map[string]string{"pod": "u1"}); len(l) != 1 {
		t.Errorf("List by label = %d containers, want 1", len(l))
	}
	if l, _ := r.List(ctx, map[string]string{"pod": "other"}); len(l) != 0 {
		t.Errorf("List of another label = %d containers, want 0", len(l))
	}
	if err := r.Remove(ctx, "u1-app"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Inspect(ctx, "u1-app"); err == nil {
		t.Error("Inspect after Remove found the container")
	}
	if err := r.Remove(ctx, "u1-app"); err != nil {
		t.Errorf("Remove of a missing container = %v, want nil", err)
	}
}

func TestStopEndsWithSIGTERMCode(t *testing.T) {
	ctx := context.Background()
	r := New()
	if err := r.Run(ctx, runtime.ContainerSpec{ID: "c", Image: "nginx"}); err != nil {
		t.Fatal(err)
	}
	exit, _ := r.Wait(ctx, "c")
	if err := r.Stop(ctx, "c", time.Minute); err != nil {
		t.Fatal(err)
	}
	if code := <-exit; code != ExitTerm {
		t.Errorf("exit code after Stop = %d, want %d", code, ExitTerm)
	}
}

func TestExecAndAttachErrors(t *testing.T) {
	ctx := context.Background()
	r := New()
	if _, err := r.Exec(ctx, "none", runtime.ExecSpec{Cmd: []string{"true"}}); !errors.Is(err, runtime.ErrNotRunning) {
		t.Errorf("Exec in a missing container = %v, want ErrNotRunning", err)
	}
	if err := r.Run(ctx, runtime.ContainerSpec{ID: "c", Image: "busybox"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Exec(ctx, "c", runtime.ExecSpec{Cmd: []string{"true"}}); !errors.Is(err, ErrExec) {
		t.Errorf("Exec without ExecFunc = %v, want ErrExec", err)
	}
	r.ExecFunc = func(id string, cmd []string) (int, error) { return len(cmd), nil }
	if code, err := r.Exec(ctx, "c", runtime.ExecSpec{Cmd: []string{"a", "b"}}); err != nil || code != 2 {
		t.Errorf("Exec with ExecFunc = %d, %v; want 2, nil", code, err)
	}
	if err := r.Attach(ctx, "c", runtime.AttachIO{}); !errors.Is(err, runtime.ErrNoStdio) {
		t.Errorf("Attach = %v, want ErrNoStdio", err)
	}
}

func TestMissingImage(t *testing.T) {
	ctx := context.Background()
	r := New()
	r.SetImageMissing("example.com/app:v1", true)
	if _, err := r.GetImage(ctx, "example.com/app:v1"); !errors.Is(err, runtime.ErrImageNotFound) {
		t.Errorf("GetImage of a missing image = %v, want ErrImageNotFound", err)
	}
	if _, err := r.PullImage(ctx, "example.com/app:v1"); err == nil {
		t.Error("PullImage of a missing image succeeded")
	}
	if err := r.Run(ctx, runtime.ContainerSpec{ID: "c", Image: "example.com/app:v1"}); err == nil {
		t.Error("Run with a missing image succeeded")
	}
	if _, err := r.GetImage(ctx, "busybox"); err != nil {
		t.Errorf("GetImage of another image = %v", err)
	}
}

func TestSandboxesAddresses(t *testing.T) {
	_, cidr, _ := net.ParseCIDR("10.244.0.0/16")
	s := NewSandboxes("/run/x", cidr)
	seen := map[string]bool{}
	for i := range 600 {
		_, ip, err := s.Setup(string(rune('a'+i%26)) + string(rune(i)))
		if err != nil {
			t.Fatal(err)
		}
		last := ip.To4()[3]
		if seen[ip.String()] || last == 0 || last == 255 || ip.String() == "10.244.0.1" || !cidr.Contains(ip) {
			t.Fatalf("address %s repeated or not usable", ip)
		}
		seen[ip.String()] = true
	}
	p1, ip1, _ := s.Setup("pod-x")
	_, ip2, _ := s.Setup("pod-x")
	if !ip1.Equal(ip2) || p1 != "/run/x/pod-x" {
		t.Errorf("Setup again = %s %s, want the same address and path", ip2, p1)
	}
	s.Teardown("pod-x")
	_, ip3, _ := s.Setup("pod-y")
	if ip3.Equal(ip1) {
		t.Errorf("address %s handed out again right away after teardown", ip3)
	}
}
