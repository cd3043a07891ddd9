//go:build linux

package runtime

import (
	"context"
	"time"
)

// Runtime is what the node agent needs of a container runtime: images,
// containers joined to a pod's netns, their exit, exec and attach. The
// containerd implementation is ContainerdRuntime; package runtime/fake has
// an in-memory one for tests and benchmarks.
type Runtime interface {
	GetImage(ctx context.Context, ref string) (Image, error)
	PullImage(ctx context.Context, ref string) (Image, error)
	// Pull pulls an image with credentials and insecure registries
	// (imagePullSecrets, --insecure-registry).
	Pull(ctx context.Context, ref string, o PullOptions) (Image, error)
	ListImages(ctx context.Context) ([]Image, error)
	RemoveImage(ctx context.Context, ref string) error
	// WatchImages calls changed once subscribed, then after every image
	// change, until ctx ends or the stream fails.
	WatchImages(ctx context.Context, changed func()) error
	// ImageUser is the USER of an image's config ("" for none).
	ImageUser(ctx context.Context, ref string) (string, error)

	// Run creates and starts a container, replacing one with the same id.
	Run(ctx context.Context, s ContainerSpec) error
	Inspect(ctx context.Context, id string) (Status, error)
	// List returns the containers carrying all the given labels.
	List(ctx context.Context, labels map[string]string) ([]Status, error)
	// Wait returns a channel that gets the running container's exit code.
	Wait(ctx context.Context, id string) (<-chan uint32, error)
	// Stop sends SIGTERM, then SIGKILL after grace, and waits for the exit.
	Stop(ctx context.Context, id string, grace time.Duration) error
	// Remove deletes a container; a missing one is not an error.
	Remove(ctx context.Context, id string) error

	// Exec runs a command in a running container (ErrNotRunning if it is not).
	Exec(ctx context.Context, id string, s ExecSpec) (int, error)
	// Attach connects a session to a container's stdio (ErrNoStdio, ErrNotRunning).
	Attach(ctx context.Context, id string, a AttachIO) error
	// Reattach reconnects the stdio of a running container after a restart.
	Reattach(ctx context.Context, id, logPath string) error

	// Cgroups is the host's cgroup hierarchy, nil when the runtime does
	// not use cgroups.
	Cgroups() *Cgroups
}

var _ Runtime = (*ContainerdRuntime)(nil)
