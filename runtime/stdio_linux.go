//go:build linux

package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"

	"github.com/nanokube/nanokube/internal/crilog"
)

// ErrNoStdio: the container was not created with attachable stdio
// (neither stdin nor a terminal); its output is only in its log.
var ErrNoStdio = errors.New("container has no attachable stdio")

// labelStdio marks a container whose stdio is held by the runtime (all
// containers since the CRI log format; older ones had the shim write the
// log raw); its value lists "stdin", "tty" and "once" (stdinOnce), "none"
// for a container that is not attachable.
const labelStdio = "io.nanokube.stdio"

// replayLimit bounds the output kept for the first attach.
const replayLimit = 64 << 10

// stdio is the standard I/O of a container, held by the runtime like
// containerd's CRI plugin holds it: output is written to the log file in
// the CRI format (a time, the stream and a tag per line) and copied to
// every attached session, and attached input goes to the container's
// stdin. For a container with stdin or a terminal, output written before
// the first session attached is replayed to it (what `kubectl run -it`
// would otherwise lose to the race between start and attach).
type stdio struct {
	id        string
	tty, once bool
	io        cio.IO
	log       *os.File
	streams   [2]*crilog.Stream // stdout, stderr
	stdin     *io.PipeWriter    // nil without stdin
	done      chan struct{}     // closed when the output has ended

	mu          sync.Mutex
	sessions    map[*attachment]struct{}
	replay      []byte
	attached    bool
	stdinClosed bool
}

type attachment struct {
	stdout, stderr io.Writer
}

// stdioOptions reads the label of a stdio container.
func stdioOptions(v string) (stdin, tty, once bool) {
	for _, f := range strings.Split(v, ",") {
		switch f {
		case "stdin":
			stdin = true
		case "tty":
			tty = true
		case "once":
			once = true
		}
	}
	return
}

func stdioLabel(stdin, tty, once bool) string {
	var f []string
	if stdin {
		f = append(f, "stdin")
	}
	if tty {
		f = append(f, "tty")
	}
	if once {
		f = append(f, "once")
	}
	if len(f) == 0 {
		return "none" // containerd drops labels with empty values
	}
	return strings.Join(f, ",")
}

// newStdio opens the log and returns the stdio with the cio options that
// connect it to a task's fifos.
func newStdio(id, logPath, ioDir string, stdin, tty, once bool) (*stdio, []cio.Opt, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, nil, fmt.Errorf("open log of %s: %w", id, err)
	}
	s := &stdio{id: id, tty: tty, once: once, log: f, done: make(chan struct{}), sessions: map[*attachment]struct{}{}}
	cf := crilog.NewFile(f, nil)
	s.streams = [2]*crilog.Stream{cf.Stream(crilog.Stdout), cf.Stream(crilog.Stderr)}
	// Only attachable containers keep output for their first session.
	s.attached = !stdin && !tty
	var in io.Reader
	if stdin {
		var pr *io.PipeReader
		pr, s.stdin = io.Pipe()
		in = pr
	}
	var errw io.Writer
	if !tty {
		errw = output{s, true}
	}
	opts := []cio.Opt{cio.WithStreams(in, output{s, false}, errw), cio.WithFIFODir(ioDir)}
	if tty {
		opts = append(opts, cio.WithTerminal)
	}
	return s, opts, nil
}

// start watches for the end of the output once the task's io exists.
func (s *stdio) start(i cio.IO) {
	s.io = i
	go func() {
		i.Wait()
		s.mu.Lock()
		for _, st := range s.streams {
			st.Close() // an unfinished last line
		}
		s.mu.Unlock()
		close(s.done)
	}()
}

// output writes one of the container's streams to the log and to the
// attached sessions.
type output struct {
	s      *stdio
	stderr bool
}

func (o output) Write(p []byte) (int, error) {
	s := o.s
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[0]
	if o.stderr {
		st = s.streams[1]
	}
	if _, err := st.Write(p); err != nil {
		return 0, err
	}
	if !s.attached && len(s.replay) < replayLimit {
		s.replay = append(s.replay, p[:min(len(p), replayLimit-len(s.replay))]...)
	}
	for a := range s.sessions {
		w := a.stdout
		if o.stderr {
			w = a.stderr
		}
		if w == nil {
			continue
		}
		if _, err := w.Write(p); err != nil {
			delete(s.sessions, a) // the client went away
		}
	}
	return len(p), nil
}

// closeStdin closes the container's stdin: our end of the fifo, then the
// shim's.
func (r *ContainerdRuntime) closeStdin(ctx context.Context, s *stdio) {
	s.mu.Lock()
	already := s.stdinClosed || s.stdin == nil
	s.stdinClosed = true
	s.mu.Unlock()
	if already {
		return
	}
	s.stdin.Close()
	if task, err := r.task(ctx, s.id); err == nil {
		task.CloseIO(ctx, client.WithStdinCloser)
	}
}

// close ends the copying and releases the fifos and the log.
func (s *stdio) close() {
	if s.stdin != nil {
		s.stdin.Close()
	}
	if s.io != nil {
		s.io.Cancel()
		<-s.done
		s.io.Close()
	}
	s.log.Close()
}

func (r *ContainerdRuntime) stdioOf(id string) *stdio {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stdio[id]
}

func (r *ContainerdRuntime) setStdio(id string, s *stdio) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stdio == nil {
		r.stdio = map[string]*stdio{}
	}
	r.stdio[id] = s
}

func (r *ContainerdRuntime) dropStdio(id string) {
	r.mu.Lock()
	s := r.stdio[id]
	delete(r.stdio, id)
	r.mu.Unlock()
	if s != nil {
		s.close()
	}
}

func (r *ContainerdRuntime) task(ctx context.Context, id string) (client.Task, error) {
	ctr, err := r.c.LoadContainer(ctx, id)
	if err != nil {
		return nil, err
	}
	return ctr.Task(ctx, nil)
}

// Reattach connects the runtime again to the stdio of a running container
// after a restart of the daemon; what the container wrote meanwhile waited
// in the fifos (the container blocks on a full pipe, nothing is lost) and
// is logged with the time of reading. A no-op for containers already
// connected and for those whose shim writes the log itself (created by an
// older nanokube).
func (r *ContainerdRuntime) Reattach(ctx context.Context, id, logPath string) error {
	if r.stdioOf(id) != nil {
		return nil
	}
	ctx = r.ctx(ctx)
	ctr, err := r.c.LoadContainer(ctx, id)
	if err != nil {
		return err
	}
	labels, err := ctr.Labels(ctx)
	if err != nil {
		return err
	}
	v, ok := labels[labelStdio]
	if !ok {
		return nil
	}
	stdin, tty, once := stdioOptions(v)
	s, opts, err := newStdio(id, logPath, "", stdin, tty, once)
	if err != nil {
		return err
	}
	s.attached = true // what it printed meanwhile is in the log, not replayed
	task, err := ctr.Task(ctx, cio.NewAttach(opts...))
	if err != nil {
		s.log.Close()
		return fmt.Errorf("reattach to %s: %w", id, err)
	}
	s.start(task.IO())
	r.setStdio(id, s)
	return nil
}

// AttachIO are the streams of an attach session (nil: not connected).
type AttachIO struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Resize <-chan TerminalSize
}

// Attach connects a session to a running container's stdio until the
// container's output ends, ctx ends, or the session's stdin ends. Like
// containerd's CRI: when the session's stdin ends, a stdinOnce container
// without a terminal gets its stdin closed and the session goes on until
// the container exits; otherwise the session detaches. A stdinOnce
// container's stdin is closed after its first session.
func (r *ContainerdRuntime) Attach(ctx context.Context, id string, a AttachIO) error {
	s := r.stdioOf(id)
	if s == nil || (s.stdin == nil && !s.tty) {
		return ErrNoStdio
	}
	ctx = r.ctx(ctx)
	sess := &attachment{stdout: a.Stdout, stderr: a.Stderr}
	if s.tty {
		sess.stderr = nil
	}
	s.mu.Lock()
	select {
	case <-s.done:
		if s.attached { // exited, and what it printed was already seen
			s.mu.Unlock()
			return ErrNotRunning
		}
	default:
	}
	if !s.attached {
		s.attached = true
		if len(s.replay) > 0 && sess.stdout != nil {
			sess.stdout.Write(s.replay)
		}
		s.replay = nil
	}
	s.sessions[sess] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.sessions, sess)
		s.mu.Unlock()
	}()

	stdinEnded := make(chan struct{})
	usesStdin := a.Stdin != nil && s.stdin != nil
	if usesStdin {
		// Ends when the client's stream does, after the session at the
		// latest (the connection is closed then).
		go func() {
			io.Copy(s.stdin, a.Stdin)
			close(stdinEnded)
		}()
	}
	resizeDone := make(chan struct{})
	defer func() { <-resizeDone }()
	sessionEnd := make(chan struct{})
	defer close(sessionEnd)
	go func() {
		defer close(resizeDone)
		for {
			select {
			case size, ok := <-a.Resize:
				if !ok {
					a.Resize = nil
					continue
				}
				if task, err := r.task(ctx, id); err == nil {
					task.Resize(ctx, uint32(size.Width), uint32(size.Height))
				}
			case <-sessionEnd:
				return
			}
		}
	}()
	if s.once && usesStdin {
		defer r.closeStdin(context.WithoutCancel(ctx), s)
	}
	for {
		select {
		case <-s.done:
			return nil
		case <-ctx.Done():
			return nil
		case <-stdinEnded:
			if !(s.once && !s.tty) {
				return nil
			}
			r.closeStdin(context.WithoutCancel(ctx), s)
			stdinEnded = nil
		}
	}
}

// drained waits up to d for a container's output to be copied
// after its exit, so its log is complete when the exit is reported.
func (r *ContainerdRuntime) drained(id string, d time.Duration) {
	s := r.stdioOf(id)
	if s == nil {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.done:
	case <-t.C:
	}
}
