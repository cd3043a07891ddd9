//go:build linux

// Package fake is an in-memory runtime.Runtime: containers "run" at once
// and until they are stopped or told to exit, with no process, image or
// namespace behind them. It is what `nanokube start --runtime=fake` runs
// pods with (to measure the control plane and the agent without
// containerd, like kwok), and what unit tests drive.
package fake

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nanokube/nanokube/runtime"
)

// ErrExec: the fake runtime runs no processes, so exec fails unless an
// ExecFunc says otherwise.
var ErrExec = errors.New("the fake runtime runs no processes: exec is not supported")

// ExitTerm is the exit code of a container that Stop ended (SIGTERM).
const ExitTerm = 143

// Runtime is the fake runtime. The zero value is not usable: use New.
type Runtime struct {
	// ExecFunc answers Exec in running containers; nil: ErrExec.
	ExecFunc func(id string, cmd []string) (int, error)

	mu         sync.Mutex
	containers map[string]*container
	missing    map[string]bool // images that are not present and cannot be pulled
	pid        uint32
}

type container struct {
	st     runtime.Status
	spec   runtime.ContainerSpec
	exited chan struct{} // closed when the container ends
}

// New returns an empty fake runtime where every image is present.
func New() *Runtime {
	return &Runtime{containers: map[string]*container{}, missing: map[string]bool{}, pid: 1000}
}

var _ runtime.Runtime = (*Runtime)(nil)

// SetImageMissing makes ref absent and its pulls fail (or present again).
func (r *Runtime) SetImageMissing(ref string, missing bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.missing[runtime.NormalizeRef(ref)] = missing
}

func (r *Runtime) image(ref string) (runtime.Image, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := runtime.NormalizeRef(ref)
	if r.missing[n] {
		return runtime.Image{}, runtime.ErrImageNotFound
	}
	return runtime.Image{Ref: n, Digest: "sha256:" + fmt.Sprintf("%064x", len(n)), Size: 1 << 20}, nil
}

// GetImage returns the image unless it was made missing.
func (r *Runtime) GetImage(_ context.Context, ref string) (runtime.Image, error) { return r.image(ref) }

// PullImage succeeds unless the image was made missing.
func (r *Runtime) PullImage(_ context.Context, ref string) (runtime.Image, error) {
	img, err := r.image(ref)
	if err != nil {
		return img, fmt.Errorf("pull %s: %w", ref, err)
	}
	return img, nil
}

// ImageUser is always "" (root).
func (r *Runtime) ImageUser(_ context.Context, ref string) (string, error) {
	if _, err := r.image(ref); err != nil {
		return "", fmt.Errorf("image %s: %w", ref, err)
	}
	return "", nil
}

// Run "starts" the container at once: it is running until Stop or Exit.
// Its log file is created, empty.
func (r *Runtime) Run(_ context.Context, s runtime.ContainerSpec) error {
	if _, err := r.image(s.Image); err != nil {
		return fmt.Errorf("image %s: %w", s.Image, err)
	}
	if s.LogPath != "" {
		if err := os.MkdirAll(filepath.Dir(s.LogPath), 0o755); err != nil {
			return fmt.Errorf("create log dir of %s: %w", s.ID, err)
		}
		f, err := os.OpenFile(s.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("create log of %s: %w", s.ID, err)
		}
		f.Close()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if old := r.containers[s.ID]; old != nil {
		r.end(old, ExitTerm)
	}
	r.pid++
	r.containers[s.ID] = &container{
		spec:   s,
		exited: make(chan struct{}),
		st: runtime.Status{ID: s.ID, Labels: maps.Clone(s.Labels), Running: true, Pid: r.pid, StartedAt: time.Now(),
			ImageRef: runtime.NormalizeRef(s.Image)},
	}
	return nil
}

// end marks c exited with code; r.mu is held.
func (r *Runtime) end(c *container, code uint32) {
	if !c.st.Running {
		return
	}
	c.st.Running, c.st.ExitCode, c.st.FinishedAt = false, code, time.Now()
	close(c.exited)
}

// Exit ends a running container with code, as if its process exited.
func (r *Runtime) Exit(id string, code uint32) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.containers[id]
	if c == nil || !c.st.Running {
		return runtime.ErrNotRunning
	}
	r.end(c, code)
	return nil
}

// Log appends text to a container's log file.
func (r *Runtime) Log(id, text string) error {
	r.mu.Lock()
	c := r.containers[id]
	r.mu.Unlock()
	if c == nil {
		return fmt.Errorf("container %s: not found", id)
	}
	f, err := os.OpenFile(c.spec.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open log of %s: %w", id, err)
	}
	defer f.Close()
	_, err = f.WriteString(text)
	return err
}

// Spec is the spec a container was run with.
func (r *Runtime) Spec(id string) (runtime.ContainerSpec, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.containers[id]
	if c == nil {
		return runtime.ContainerSpec{}, false
	}
	return c.spec, true
}

// errNotFound is what Inspect returns for an unknown container.
var errNotFound = errors.New("container not found")

// Inspect returns a container's state.
func (r *Runtime) Inspect(_ context.Context, id string) (runtime.Status, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.containers[id]
	if c == nil {
		return runtime.Status{}, fmt.Errorf("container %s: %w", id, errNotFound)
	}
	st := c.st
	st.Labels = maps.Clone(c.st.Labels)
	return st, nil
}

// List returns the containers carrying all the given labels.
func (r *Runtime) List(_ context.Context, labels map[string]string) ([]runtime.Status, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []runtime.Status
	for _, c := range r.containers {
		match := true
		for k, v := range labels {
			match = match && c.st.Labels[k] == v
		}
		if match {
			st := c.st
			st.Labels = maps.Clone(c.st.Labels)
			out = append(out, st)
		}
	}
	return out, nil
}

// Wait returns a channel that gets the container's exit code.
func (r *Runtime) Wait(ctx context.Context, id string) (<-chan uint32, error) {
	r.mu.Lock()
	c := r.containers[id]
	r.mu.Unlock()
	if c == nil {
		return nil, fmt.Errorf("container %s: %w", id, errNotFound)
	}
	out := make(chan uint32, 1)
	go func() {
		defer close(out)
		select {
		case <-c.exited:
			r.mu.Lock()
			code := c.st.ExitCode
			r.mu.Unlock()
			out <- code
		case <-ctx.Done():
		}
	}()
	return out, nil
}

// Stop ends a running container at once with ExitTerm.
func (r *Runtime) Stop(_ context.Context, id string, _ time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.containers[id]; c != nil {
		r.end(c, ExitTerm)
	}
	return nil
}

// Remove deletes a container, ending it if it runs.
func (r *Runtime) Remove(_ context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.containers[id]; c != nil {
		r.end(c, ExitTerm)
		delete(r.containers, id)
	}
	return nil
}

// Exec runs ExecFunc in a running container.
func (r *Runtime) Exec(_ context.Context, id string, s runtime.ExecSpec) (int, error) {
	if len(s.Cmd) == 0 {
		return 0, errors.New("exec: no command")
	}
	r.mu.Lock()
	c, fn := r.containers[id], r.ExecFunc
	r.mu.Unlock()
	if c == nil || !c.st.Running {
		return 0, runtime.ErrNotRunning
	}
	if fn == nil {
		return 0, fmt.Errorf("exec in %s: %w", id, ErrExec)
	}
	return fn(id, s.Cmd)
}

// Attach: fake containers have no stdio.
func (r *Runtime) Attach(_ context.Context, id string, _ runtime.AttachIO) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.containers[id]; c == nil || !c.st.Running {
		return runtime.ErrNotRunning
	}
	return runtime.ErrNoStdio
}

// Reattach has nothing to reconnect.
func (r *Runtime) Reattach(context.Context, string, string) error { return nil }

// Cgroups is nil: fake containers have no cgroups.
func (r *Runtime) Cgroups() *runtime.Cgroups { return nil }

// Sandboxes give pods an address of a range without any namespace (the
// agent's Sandboxes with the fake runtime); the same uid keeps its address.
type Sandboxes struct {
	dir  string
	cidr *net.IPNet

	mu    sync.Mutex
	byUID map[string]net.IP
	used  map[string]bool
	next  uint32
}

// NewSandboxes hands out addresses of cidr (its network, .0 and .255 of
// every /24, and .1 of the first are skipped); dir names the pretend netns
// paths.
func NewSandboxes(dir string, cidr *net.IPNet) *Sandboxes {
	return &Sandboxes{dir: dir, cidr: cidr, byUID: map[string]net.IP{}, used: map[string]bool{}}
}

func ipAdd(base net.IP, n uint32) net.IP {
	b := base.To4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += n
	return net.IPv4(byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// Setup returns uid's address and a netns path that does not exist.
func (s *Sandboxes) Setup(uid string) (string, net.IP, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ip := s.byUID[uid]; ip != nil {
		return s.PodNetnsPath(uid), ip, nil
	}
	ones, bits := s.cidr.Mask.Size()
	size := uint32(1) << (bits - ones)
	for range size {
		s.next = (s.next + 1) % size
		ip := ipAdd(s.cidr.IP, s.next)
		last := ip.To4()[3]
		if last == 0 || last == 255 || s.next == 1 || s.used[ip.String()] {
			continue
		}
		s.used[ip.String()] = true
		s.byUID[uid] = ip
		return s.PodNetnsPath(uid), ip, nil
	}
	return "", nil, fmt.Errorf("pod %s: no free address in %s", uid, s.cidr)
}

// Teardown frees uid's address.
func (s *Sandboxes) Teardown(uid string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ip := s.byUID[uid]; ip != nil {
		delete(s.used, ip.String())
		delete(s.byUID, uid)
	}
	return nil
}

// RemoveNetns keeps the address: there is no netns.
func (s *Sandboxes) RemoveNetns(string) error { return nil }

// PodNetnsPath is a path under dir that is never made.
func (s *Sandboxes) PodNetnsPath(uid string) string { return filepath.Join(s.dir, uid) }
