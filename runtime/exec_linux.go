//go:build linux

package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ErrNotRunning: the container has no running task.
var ErrNotRunning = errors.New("container is not running")

// TerminalSize is a terminal's size in characters.
type TerminalSize struct {
	Width, Height uint16
}

// ExecSpec is a command to run in a running container, with its streams
// (nil: not connected).
type ExecSpec struct {
	Cmd    []string
	TTY    bool // a terminal: its output goes to Stdout only
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Resize <-chan TerminalSize
	IODir  string // where the fifos to the shim are made
}

// outputDrain bounds how long output is still copied after a process
// ended: a background child can keep the pipe open forever.
const outputDrain = 2 * time.Second

// Exec runs a command in the container's namespaces with the container's
// environment, user and working directory, and returns its exit code.
// When stdin ends the command's stdin is closed; when ctx ends the command
// is killed.
func (r *ContainerdRuntime) Exec(ctx context.Context, id string, s ExecSpec) (int, error) {
	if len(s.Cmd) == 0 {
		return 0, errors.New("exec: no command")
	}
	ctx = r.ctx(ctx)
	task, spec, err := r.runningTask(ctx, id)
	if err != nil {
		return 0, err
	}
	pspec := *spec.Process
	pspec.Args = s.Cmd
	pspec.CommandLine = ""
	pspec.Terminal = s.TTY
	pspec.ConsoleSize = nil
	pspec.Env = append([]string{}, pspec.Env...)
	if s.TTY {
		pspec.Env = append(pspec.Env, "TERM=xterm")
		// A client sends its terminal's size right away: start with it, so
		// the command never sees a 0x0 terminal.
		if size, ok := firstSize(ctx, s.Resize); ok {
			pspec.ConsoleSize = &specs.Box{Height: uint(size.Height), Width: uint(size.Width)}
		}
	}
	stdinDone := make(chan struct{})
	var stdin io.Reader
	if s.Stdin != nil {
		stdin = &eofReader{r: s.Stdin, done: stdinDone}
	}
	var stderr io.Writer
	if !s.TTY {
		stderr = s.Stderr
	}
	opts := []cio.Opt{cio.WithStreams(stdin, s.Stdout, stderr), cio.WithFIFODir(s.IODir)}
	if s.TTY {
		opts = append(opts, cio.WithTerminal)
	}
	execID, err := newExecID()
	if err != nil {
		return 0, err
	}
	proc, err := task.Exec(ctx, execID, &pspec, cio.NewCreator(opts...))
	if err != nil {
		return 0, fmt.Errorf("exec in %s: %w", id, err)
	}
	// The process is deleted on a context of its own: the caller's may be
	// over (a client that went away).
	cleanup := context.WithoutCancel(ctx)
	defer proc.Delete(cleanup, client.WithProcessKill)
	exitc, err := proc.Wait(cleanup)
	if err != nil {
		return 0, fmt.Errorf("exec in %s: wait: %w", id, err)
	}
	if err := proc.Start(ctx); err != nil {
		return 0, fmt.Errorf("exec in %s: start: %w", id, err)
	}
	exited := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(exited)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stdinDone:
				proc.CloseIO(cleanup, client.WithStdinCloser)
				stdinDone = nil
			case size, ok := <-s.Resize:
				if !ok {
					s.Resize = nil
					continue
				}
				proc.Resize(cleanup, uint32(size.Width), uint32(size.Height))
			case <-exited:
				return
			}
		}
	}()
	var st client.ExitStatus
	select {
	case st = <-exitc:
	case <-ctx.Done():
		proc.Kill(cleanup, syscall.SIGKILL)
		st = <-exitc
	}
	waitIO(proc.IO(), outputDrain)
	if err := st.Error(); err != nil {
		return 0, fmt.Errorf("exec in %s: %w", id, err)
	}
	return int(st.ExitCode()), nil
}

// runningTask loads a container's task and its spec; ErrNotRunning when
// there is no running task.
func (r *ContainerdRuntime) runningTask(ctx context.Context, id string) (client.Task, *oci.Spec, error) {
	ctr, err := r.c.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		return nil, nil, ErrNotRunning
	}
	if err != nil {
		return nil, nil, err
	}
	task, err := ctr.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil, nil, ErrNotRunning
	}
	if err != nil {
		return nil, nil, err
	}
	ts, err := task.Status(ctx)
	if err != nil {
		return nil, nil, err
	}
	if ts.Status != client.Running {
		return nil, nil, ErrNotRunning
	}
	spec, err := ctr.Spec(ctx)
	if err != nil {
		return nil, nil, err
	}
	if spec.Process == nil {
		return nil, nil, fmt.Errorf("container %s has no process spec", id)
	}
	return task, spec, nil
}

// firstSizeWait bounds the wait for a terminal client's first size.
const firstSizeWait = time.Second

// firstSize waits briefly for the first terminal size of a session.
func firstSize(ctx context.Context, sizes <-chan TerminalSize) (TerminalSize, bool) {
	if sizes == nil {
		return TerminalSize{}, false
	}
	t := time.NewTimer(firstSizeWait)
	defer t.Stop()
	select {
	case size, ok := <-sizes:
		return size, ok && size.Width > 0 && size.Height > 0
	case <-t.C:
	case <-ctx.Done():
	}
	return TerminalSize{}, false
}

// waitIO waits up to d for a process's output to be copied.
func waitIO(i cio.IO, d time.Duration) {
	if i == nil {
		return
	}
	done := make(chan struct{})
	go func() {
		i.Wait()
		close(done)
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		i.Cancel() // ends the copy, and with it the goroutine above
		<-done
	}
}

func newExecID() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "exec-" + hex.EncodeToString(b), nil
}

// eofReader closes done once its reader has ended.
type eofReader struct {
	r    io.Reader
	done chan struct{}
	once sync.Once
}

func (e *eofReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil {
		e.once.Do(func() { close(e.done) })
	}
	return n, err
}
