package cluster

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nanokube/nanokube/internal/lines"
)

func TestValidateProfileName(t *testing.T) {
	for _, ok := range []string{"nanokube", "dev", "ci-42", "a"} {
		if err := ValidateProfileName(ok); err != nil {
			t.Errorf("ValidateProfileName(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", "Dev", "a_b", "-a", "a-", strings.Repeat("x", 41), "a/b"} {
		if err := ValidateProfileName(bad); err == nil {
			t.Errorf("ValidateProfileName(%q) = nil, want an error", bad)
		}
	}
}

func TestConfigRoundTripAndList(t *testing.T) {
	home := t.TempDir()
	names, err := ListProfiles(home)
	if err != nil || len(names) != 0 {
		t.Fatalf("ListProfiles on an empty home = %v, %v", names, err)
	}
	want := Config{Name: "b", Driver: "netns", Nodes: 3, APIServerPort: 8443, HostAccess: true, CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	for _, n := range []string{"b", "a"} {
		c := want
		c.Name = n
		if err := NewProfile(home, n).SaveConfig(c); err != nil {
			t.Fatal(err)
		}
	}
	// A directory without config.json is not a profile.
	if err := os.MkdirAll(filepath.Join(home, "profiles", "junk"), 0o700); err != nil {
		t.Fatal(err)
	}
	got, err := NewProfile(home, "b").LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("LoadConfig = %+v, want %+v", got, want)
	}
	fi, err := os.Stat(NewProfile(home, "b").ConfigFile())
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("config.json mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	names, err = ListProfiles(home)
	if err != nil || strings.Join(names, ",") != "a,b" {
		t.Errorf("ListProfiles = %v, %v; want [a b]", names, err)
	}
}

func TestReadProgress(t *testing.T) {
	pr, pw := io.Pipe()
	w := NewProgressWriter(pw)
	go func() {
		w.Step("Opened the store (revision %d)", 7)
		w.Send(Progress{Ready: true})
		w.Step("after ready: dropped")
	}()
	var out bytes.Buffer
	if err := readProgress(pr, &out, time.Now()); err != nil {
		t.Fatalf("readProgress = %v", err)
	}
	if !strings.Contains(out.String(), "✓ Opened the store (revision 7)") {
		t.Errorf("progress output = %q", out.String())
	}

	pr, pw = io.Pipe()
	w = NewProgressWriter(pw)
	go w.Send(Progress{Error: "listen on 192.168.49.2:8443: address in use"})
	err := readProgress(pr, io.Discard, time.Now())
	if err == nil || !strings.Contains(err.Error(), "address in use") {
		t.Errorf("readProgress of an error = %v", err)
	}

	pr, pw = io.Pipe()
	go pw.Close()
	if err := readProgress(pr, io.Discard, time.Now()); err != errDaemonExited {
		t.Errorf("readProgress of a closed pipe = %v, want errDaemonExited", err)
	}
}

func TestLastLines(t *testing.T) {
	cases := []struct {
		in   string
		n    int
		want string
	}{
		{"a\nb\nc\n", 2, "b\nc\n"},
		{"a\nb\nc", 5, "a\nb\nc\n"},
		{"a\nb\nc\n", 1, "c\n"},
	}
	for _, c := range cases {
		if got := string(lines.Last([]byte(c.in), c.n)); got != c.want {
			t.Errorf("lines.Last(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}

func TestLockExcludes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "daemon.lock")
	l, ok, err := TryLock(path)
	if err != nil || !ok {
		t.Fatalf("first TryLock = %v, %v", ok, err)
	}
	if _, ok, err := TryLock(path); err != nil || ok {
		t.Fatalf("second TryLock while held = %v, %v; want not ok", ok, err)
	}
	done := make(chan error, 1)
	go func() { done <- WaitLock(path) }()
	select {
	case err := <-done:
		t.Fatalf("WaitLock returned %v while the lock is held", err)
	default:
	}
	l.Release()
	if err := <-done; err != nil {
		t.Fatalf("WaitLock after release = %v", err)
	}
}

func TestParseExtraConfigImageGC(t *testing.T) {
	got, err := ParseExtraConfig([]string{"kubelet.image-gc-high-threshold=1", "kubelet.image-gc-low-threshold=0", "kubelet.image-minimum-gc-age=0s"})
	if err != nil {
		t.Fatal(err)
	}
	c := Config{ExtraConfig: got}
	if n, ok := c.ExtraInt(ImageGCLowThreshold); !ok || n != 0 {
		t.Errorf("ExtraInt(low) = %d, %v", n, ok)
	}
	if _, ok := c.ExtraInt(ImageGCPeriod); ok {
		t.Errorf("ExtraInt of an unset key reports a value")
	}
}

func TestParseExtraConfig(t *testing.T) {
	got, err := ParseExtraConfig([]string{"controller-manager.node-monitor-grace-period=5s"})
	if err != nil || got[NodeMonitorGracePeriod] != "5s" {
		t.Fatalf("ParseExtraConfig = %v, %v", got, err)
	}
	if d := (Config{ExtraConfig: got}).ExtraDuration(NodeMonitorGracePeriod); d != 5*time.Second {
		t.Errorf("ExtraDuration = %v", d)
	}
	for bad, want := range map[string]string{
		"nokey":               "use component.key=value",
		"kubelet.max-pods=10": `unknown --extra-config key "kubelet.max-pods"`,
		"controller-manager.node-monitor-grace-period=soon": "takes a positive duration",
		"kubelet.image-gc-high-threshold=101":               "takes a percentage from 0 to 100",
		"kubelet.image-gc-low-threshold=90":                 "kubelet.image-gc-low-threshold (90) must be less than kubelet.image-gc-high-threshold (85)",
		"kubelet.image-minimum-gc-age=-1s":                  "takes a duration like 2m",
	} {
		if _, err := ParseExtraConfig([]string{bad}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseExtraConfig(%q) = %v, want %q", bad, err, want)
		}
	}
}
