//go:build linux

package runtime

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/pkg/cio"

	"github.com/nanokube/nanokube/internal/crilog"
)

// logMessages reads a CRI log file back to the container's output, and
// fails on a line not in the format.
func logMessages(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, l := range strings.SplitAfter(string(data), "\n") {
		if l == "" {
			continue
		}
		e := crilog.Parse([]byte(strings.TrimSuffix(l, "\n")))
		if e.Time.IsZero() {
			t.Fatalf("log line not in the CRI format: %q", l)
		}
		b.Write(e.Message)
	}
	return b.String()
}

// TestStdioOfAPlainContainer: a container without stdin or terminal has
// its output logged in the CRI format with its stream, an unfinished last
// line included, and cannot be attached to.
func TestStdioOfAPlainContainer(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "c.log")
	s, opts, err := newStdio("c", logPath, dir, false, false, false)
	if err != nil {
		t.Fatal(err)
	}
	var streams cio.Streams
	for _, o := range opts {
		o(&streams)
	}
	r := &ContainerdRuntime{}
	r.setStdio("c", s)
	io.WriteString(streams.Stdout, "out\nunfin")
	io.WriteString(streams.Stderr, "err\n")
	if err := r.Attach(t.Context(), "c", AttachIO{Stdout: newNotifyBuffer()}); err != ErrNoStdio {
		t.Errorf("attach: %v, want ErrNoStdio", err)
	}
	if len(s.replay) != 0 {
		t.Errorf("a plain container keeps a replay: %q", s.replay)
	}
	s.start(fakeIO{})
	<-s.done
	r.dropStdio("c")
	data, _ := os.ReadFile(logPath)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 3 || !strings.HasSuffix(lines[0], " stdout F out") || !strings.HasSuffix(lines[1], " stderr F err") || !strings.HasSuffix(lines[2], " stdout F unfin") {
		t.Errorf("log = %q", data)
	}
}

// fakeIO is a task's io that has already ended.
type fakeIO struct{}

func (fakeIO) Config() cio.Config { return cio.Config{} }
func (fakeIO) Cancel()            {}
func (fakeIO) Wait()              {}
func (fakeIO) Close() error       { return nil }

// notifyBuffer is a session's output that signals every write.
type notifyBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	written chan struct{}
}

func newNotifyBuffer() *notifyBuffer { return &notifyBuffer{written: make(chan struct{}, 1)} }

func (b *notifyBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	select {
	case b.written <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (b *notifyBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor waits until the buffer holds want.
func (b *notifyBuffer) waitFor(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for !strings.Contains(b.String(), want) {
		select {
		case <-b.written:
		case <-deadline:
			t.Fatalf("session output %q lacks %q", b.String(), want)
		}
	}
}

// TestStdioSessions: a stdio container's output goes to its log and to
// every attached session; what it printed before the first session is
// replayed to that session only; sessions share the container's stdin,
// and a session whose input ends detaches (no stdinOnce).
func TestStdioSessions(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "c.log")
	s, opts, err := newStdio("c", logPath, dir, true, false, false)
	if err != nil {
		t.Fatal(err)
	}
	var streams cio.Streams
	for _, o := range opts {
		o(&streams)
	}
	r := &ContainerdRuntime{}
	r.setStdio("c", s)
	out, errOut := streams.Stdout, streams.Stderr
	io.WriteString(out, "before\n")

	ctx := t.Context()
	attach := func(stdin io.Reader, stdout, stderr io.Writer) chan error {
		done := make(chan error, 1)
		go func() { done <- r.Attach(ctx, "c", AttachIO{Stdin: stdin, Stdout: stdout, Stderr: stderr}) }()
		return done
	}
	inA, typeA := io.Pipe()
	outA, errA := newNotifyBuffer(), newNotifyBuffer()
	doneA := attach(inA, outA, errA)
	outA.waitFor(t, "before\n")
	io.WriteString(out, "live\n")
	outA.waitFor(t, "live\n")
	io.WriteString(errOut, "oops\n")
	errA.waitFor(t, "oops\n")

	go io.WriteString(typeA, "typed\n")
	got := make([]byte, 6)
	if _, err := io.ReadFull(streams.Stdin, got); err != nil || string(got) != "typed\n" {
		t.Fatalf("container stdin read %q, %v", got, err)
	}

	outB := newNotifyBuffer()
	doneB := attach(nil, outB, nil)
	// B is registered once a write reaches it; A gets every write.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(outB.String(), "both\n") {
		if time.Now().After(deadline) {
			t.Fatal("second session got no output")
		}
		n := strings.Count(outA.String(), "both\n")
		io.WriteString(out, "both\n")
		outA.waitFor(t, strings.Repeat("both\n", n+1))
	}
	if strings.Contains(outB.String(), "before") {
		t.Errorf("second session got the replay: %q", outB.String())
	}

	typeA.Close() // A's input ends: A detaches
	select {
	case err := <-doneA:
		if err != nil {
			t.Fatalf("session A: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("session A did not detach when its input ended")
	}
	io.WriteString(out, "only b\n")
	outB.waitFor(t, "only b\n")
	if strings.Contains(outA.String(), "only b") {
		t.Errorf("detached session still gets output: %q", outA.String())
	}

	close(s.done) // the container's output ends
	select {
	case err := <-doneB:
		if err != nil {
			t.Fatalf("session B: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("session B did not end with the container's output")
	}
	if err := r.Attach(t.Context(), "c", AttachIO{Stdout: newNotifyBuffer()}); err != ErrNotRunning {
		t.Errorf("attach after the end: %v, want ErrNotRunning", err)
	}
	r.dropStdio("c")
	log := logMessages(t, logPath)
	if !strings.HasPrefix(string(log), "before\nlive\noops\nboth\n") || !strings.HasSuffix(string(log), "both\nonly b\n") {
		t.Errorf("log = %q", log)
	}
}

// TestStdioReplayAfterExit: a container that printed and exited before
// anyone attached (`kubectl run -it -- echo hi`) still shows its output to
// the first session; later sessions are told it is not running.
func TestStdioReplayAfterExit(t *testing.T) {
	dir := t.TempDir()
	s, opts, err := newStdio("c", filepath.Join(dir, "c.log"), dir, true, true, true)
	if err != nil {
		t.Fatal(err)
	}
	var streams cio.Streams
	for _, o := range opts {
		o(&streams)
	}
	if streams.Stderr != nil {
		t.Error("a terminal container has a separate stderr")
	}
	r := &ContainerdRuntime{}
	r.setStdio("c", s)
	io.WriteString(streams.Stdout, "hi\r\n")
	close(s.done)
	out := newNotifyBuffer()
	if err := r.Attach(t.Context(), "c", AttachIO{Stdout: out}); err != nil {
		t.Fatalf("first attach: %v", err)
	}
	if out.String() != "hi\r\n" {
		t.Errorf("first attach got %q, want the replayed %q", out.String(), "hi\r\n")
	}
	if err := r.Attach(t.Context(), "c", AttachIO{Stdout: newNotifyBuffer()}); err != ErrNotRunning {
		t.Errorf("second attach: %v, want ErrNotRunning", err)
	}
	r.dropStdio("c")
}

// TestStdioLabel: the label round-trips and is never empty (containerd
// drops labels with empty values, and Reattach would skip the container).
func TestStdioLabel(t *testing.T) {
	for _, c := range [][3]bool{{false, false, false}, {true, false, false}, {true, true, true}, {false, true, false}} {
		v := stdioLabel(c[0], c[1], c[2])
		if v == "" {
			t.Errorf("stdioLabel%v is empty", c)
		}
		if stdin, tty, once := stdioOptions(v); [3]bool{stdin, tty, once} != c {
			t.Errorf("stdioOptions(%q) = %v, %v, %v; want %v", v, stdin, tty, once, c)
		}
	}
}
