//go:build linux

package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ErrImageNotFound: the image is not in the store.
var ErrImageNotFound = errors.New("image not found")

// ContainerdRuntime runs containers in one containerd namespace.
type ContainerdRuntime struct {
	c           *client.Client
	ns          string
	snapshotter string
	cg          *Cgroups // nil: the host's cgroups were not found

	mu    sync.Mutex
	stdio map[string]*stdio // containers with attachable stdio, by id
}

// New returns the runtime for namespace ns.
func New(c *client.Client, ns string) *ContainerdRuntime {
	r := &ContainerdRuntime{c: c, ns: ns, snapshotter: "overlayfs"}
	r.cg, _ = DetectCgroups()
	return r
}

// Cgroups is the host's cgroup hierarchy, or nil when it was not found.
func (r *ContainerdRuntime) Cgroups() *Cgroups { return r.cg }

func (r *ContainerdRuntime) ctx(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, r.ns)
}

// Image describes a stored image.
type Image struct {
	Ref    string
	Digest string // the image ID (config digest), like kubelet's imageID
	Size   int64
	// Target is the manifest (or index) digest: repo@Target names it too.
	Target    string
	CreatedAt time.Time // when it entered the store
}

// ImportImage loads a docker-save or OCI archive and unpacks it.
func (r *ContainerdRuntime) ImportImage(ctx context.Context, rd io.Reader) ([]Image, error) {
	ctx = r.ctx(ctx)
	imgs, err := r.c.Import(ctx, rd, client.WithAllPlatforms(false))
	if err != nil {
		return nil, fmt.Errorf("import image: %w", err)
	}
	var out []Image
	for _, img := range imgs {
		i := client.NewImage(r.c, img)
		if err := i.Unpack(ctx, r.snapshotter); err != nil {
			return nil, fmt.Errorf("unpack %s: %w", img.Name, err)
		}
		out = append(out, r.describe(ctx, i))
	}
	return out, nil
}

func (r *ContainerdRuntime) describe(ctx context.Context, i client.Image) Image {
	im := Image{Ref: i.Name(), Target: i.Target().Digest.String(), CreatedAt: i.Metadata().CreatedAt}
	if cfg, err := i.Config(ctx); err == nil {
		im.Digest = cfg.Digest.String()
	}
	im.Size, _ = i.Size(ctx)
	return im
}

// GetImage finds a stored image by reference.
func (r *ContainerdRuntime) GetImage(ctx context.Context, ref string) (Image, error) {
	ctx = r.ctx(ctx)
	i, err := r.c.GetImage(ctx, NormalizeRef(ref))
	if errdefs.IsNotFound(err) {
		return Image{}, ErrImageNotFound
	}
	if err != nil {
		return Image{}, err
	}
	return r.describe(ctx, i), nil
}

// PullImage pulls and unpacks ref anonymously (see Pull).
func (r *ContainerdRuntime) PullImage(ctx context.Context, ref string) (Image, error) {
	return r.Pull(ctx, ref, PullOptions{})
}

// ListImages lists stored images.
func (r *ContainerdRuntime) ListImages(ctx context.Context) ([]Image, error) {
	ctx = r.ctx(ctx)
	imgs, err := r.c.ListImages(ctx)
	if err != nil {
		return nil, err
	}
	var out []Image
	for _, i := range imgs {
		out = append(out, r.describe(ctx, i))
	}
	return out, nil
}

// RemoveImage deletes an image.
func (r *ContainerdRuntime) RemoveImage(ctx context.Context, ref string) error {
	return r.c.ImageService().Delete(r.ctx(ctx), NormalizeRef(ref), images.SynchronousDelete())
}

// ContainerSpec is what the agent asks to run.
type ContainerSpec struct {
	ID          string
	Image       string
	Command     []string // replaces the image entrypoint
	Args        []string // replaces the image cmd
	Env         []string
	WorkingDir  string
	NetNS       string // the pod's netns path
	Hostname    string
	Mounts      []specs.Mount
	Labels      map[string]string
	LogPath     string
	MemoryLimit int64 // bytes; 0 = none
	CPUShares   uint64
	CPUQuota    int64
	CPUPeriod   uint64

	// Stdin and TTY make the container's stdio attachable (fifos held by
	// the runtime, which then writes the log); StdinOnce closes stdin
	// after the first attach session. IODir holds the fifos.
	Stdin, StdinOnce, TTY bool
	IODir                 string
	// PIDNamespaceOf is the id of a running container whose process
	// namespace this one joins (an ephemeral container's target).
	PIDNamespaceOf string
	// CgroupParent is the pod's cgroup; the container's is CgroupParent/ID.
	// Empty: containerd's default (/<namespace>/<id>).
	CgroupParent string
	// OOMScoreAdj is the kernel's OOM preference (kubelet's per QoS
	// class); never negative, 0 keeps the inherited value.
	OOMScoreAdj int
	Security    Security
	// ShimGroup puts every container with the same group (the pod uid)
	// under one runc v2 shim process.
	ShimGroup string
}

// Run creates and starts a container; its output goes to LogPath in the
// CRI log format, written by the runtime from the task's fifos.
func (r *ContainerdRuntime) Run(ctx context.Context, s ContainerSpec) error {
	ctx = r.ctx(ctx)
	img, err := r.c.GetImage(ctx, NormalizeRef(s.Image))
	if err != nil {
		return fmt.Errorf("image %s: %w", s.Image, err)
	}
	opts := []oci.SpecOpts{
		oci.WithImageConfigArgs(img, append(append([]string{}, s.Command...), s.Args...)),
		oci.WithHostname(s.Hostname),
		oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: s.NetNS}),
		oci.WithMounts(s.Mounts),
		oci.WithEnv(s.Env),
	}
	if len(s.Command) == 0 && len(s.Args) > 0 {
		opts[0] = withArgsOnly(img, s.Args)
	} else if len(s.Command) == 0 {
		opts[0] = oci.WithImageConfig(img)
	}
	if s.WorkingDir != "" {
		opts = append(opts, oci.WithProcessCwd(s.WorkingDir))
	}
	if s.TTY {
		opts = append(opts, oci.WithTTY)
	}
	if s.PIDNamespaceOf != "" {
		target, err := r.task(ctx, s.PIDNamespaceOf)
		if err != nil {
			return fmt.Errorf("target container %s: %w", s.PIDNamespaceOf, err)
		}
		opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.PIDNamespace, Path: fmt.Sprintf("/proc/%d/ns/pid", target.Pid())}))
	}
	if s.MemoryLimit > 0 {
		opts = append(opts, oci.WithMemoryLimit(uint64(s.MemoryLimit)))
	}
	if s.CPUShares > 0 {
		opts = append(opts, oci.WithCPUShares(s.CPUShares))
	}
	if s.CPUQuota > 0 {
		opts = append(opts, oci.WithCPUCFS(s.CPUQuota, s.CPUPeriod))
	}
	if s.CgroupParent != "" {
		opts = append(opts, oci.WithCgroup(s.CgroupParent+"/"+s.ID))
	}
	if s.OOMScoreAdj > 0 {
		opts = append(opts, withOOMScoreAdj(s.OOMScoreAdj))
	}
	opts = append(opts, securityOpts(s.Security)...)
	if s.ShimGroup != "" {
		opts = append(opts, oci.WithAnnotations(map[string]string{shimGroupAnnotation: s.ShimGroup}))
	}
	// Remove what an earlier attempt (or a crash) left with the same id.
	r.Remove(context.WithoutCancel(ctx), s.ID)
	if err := r.c.SnapshotService(r.snapshotter).Remove(ctx, s.ID); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("remove stale snapshot %s: %w", s.ID, err)
	}
	labels := map[string]string{labelStdio: stdioLabel(s.Stdin, s.TTY, s.StdinOnce)}
	for k, v := range s.Labels {
		labels[k] = v
	}
	ctr, err := r.c.NewContainer(ctx, s.ID,
		client.WithImage(img),
		client.WithNewSnapshot(s.ID, img),
		client.WithNewSpec(opts...),
		client.WithContainerLabels(labels),
	)
	if err != nil {
		return fmt.Errorf("create container %s: %w", s.ID, err)
	}
	if err := os.MkdirAll(filepath.Dir(s.LogPath), 0o755); err != nil {
		return err
	}
	// The runtime holds the fifos and writes the log in the CRI format;
	// after a restart of the daemon Reattach connects them again.
	sio, cioOpts, err := newStdio(s.ID, s.LogPath, s.IODir, s.Stdin, s.TTY, s.StdinOnce)
	if err != nil {
		return err
	}
	creator := cio.NewCreator(cioOpts...)
	task, err := ctr.NewTask(ctx, creator)
	if err != nil {
		sio.close()
		return fmt.Errorf("create task %s: %w", s.ID, err)
	}
	sio.start(task.IO())
	r.setStdio(s.ID, sio)
	if err := task.Start(ctx); err != nil {
		task.Delete(ctx)
		r.dropStdio(s.ID)
		return fmt.Errorf("start %s: %w", s.ID, err)
	}
	return nil
}

// withArgsOnly keeps the image entrypoint and replaces its cmd.
func withArgsOnly(img client.Image, args []string) oci.SpecOpts {
	return func(ctx context.Context, c oci.Client, ctr *containers.Container, sp *oci.Spec) error {
		if err := oci.WithImageConfig(img)(ctx, c, ctr, sp); err != nil {
			return err
		}
		cfg, err := img.Spec(ctx)
		if err != nil {
			return err
		}
		sp.Process.Args = append(append([]string{}, cfg.Config.Entrypoint...), args...)
		return nil
	}
}

// withOOMScoreAdj sets the process's oom_score_adj.
func withOOMScoreAdj(adj int) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, sp *oci.Spec) error {
		sp.Process.OOMScoreAdj = &adj
		return nil
	}
}

// Status of a container.
type Status struct {
	ID         string
	Labels     map[string]string
	Running    bool
	Created    bool // container exists but its task never ran or is gone
	Pid        uint32
	ExitCode   uint32
	StartedAt  time.Time
	FinishedAt time.Time
	ImageRef   string
	// OOMKilled: the container ended and the OOM killer killed a process
	// of its cgroup.
	OOMKilled bool
	// Cgroup is the container's cgroup path ("" if unknown).
	Cgroup string
}

// Inspect returns a container's state.
func (r *ContainerdRuntime) Inspect(ctx context.Context, id string) (Status, error) {
	ctx = r.ctx(ctx)
	ctr, err := r.c.LoadContainer(ctx, id)
	if err != nil {
		return Status{}, err
	}
	return r.status(ctx, ctr)
}

func (r *ContainerdRuntime) status(ctx context.Context, ctr client.Container) (Status, error) {
	info, err := ctr.Info(ctx)
	if err != nil {
		return Status{}, err
	}
	st := Status{ID: ctr.ID(), Labels: info.Labels, ImageRef: info.Image}
	var sp specs.Spec
	if info.Spec != nil && json.Unmarshal(info.Spec.GetValue(), &sp) == nil && sp.Linux != nil {
		st.Cgroup = sp.Linux.CgroupsPath
	}
	task, err := ctr.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		st.Created = true
		return st, nil
	}
	if err != nil {
		return st, err
	}
	ts, err := task.Status(ctx)
	if err != nil {
		return st, err
	}
	st.Pid = task.Pid()
	switch ts.Status {
	case client.Running, client.Paused, client.Pausing:
		st.Running = true
	default:
		st.ExitCode, st.FinishedAt = ts.ExitStatus, ts.ExitTime
		// The cgroup stays until the task is deleted: it still counts
		// the OOM kills of the run that just ended.
		if r.cg != nil && st.Cgroup != "" {
			if cs, err := r.cg.Stats(st.Cgroup); err == nil && cs.OOMKills > 0 {
				st.OOMKilled = true
			}
		}
	}
	return st, nil
}

// List returns the containers carrying all the given labels.
func (r *ContainerdRuntime) List(ctx context.Context, labels map[string]string) ([]Status, error) {
	ctx = r.ctx(ctx)
	var filters []string
	for k, v := range labels {
		filters = append(filters, fmt.Sprintf("labels.%q==%q", k, v))
	}
	ctrs, err := r.c.Containers(ctx, joinFilters(filters))
	if err != nil {
		return nil, err
	}
	var out []Status
	for _, c := range ctrs {
		st, err := r.status(ctx, c)
		if err == nil {
			out = append(out, st)
		}
	}
	return out, nil
}

func joinFilters(fs []string) string {
	out := ""
	for i, f := range fs {
		if i > 0 {
			out += ","
		}
		out += f
	}
	return out
}

// Wait returns a channel that gets the container's exit code.
func (r *ContainerdRuntime) Wait(ctx context.Context, id string) (<-chan uint32, error) {
	ctx = r.ctx(ctx)
	ctr, err := r.c.LoadContainer(ctx, id)
	if err != nil {
		return nil, err
	}
	task, err := ctr.Task(ctx, nil)
	if err != nil {
		return nil, err
	}
	ch, err := task.Wait(ctx)
	if err != nil {
		return nil, err
	}
	out := make(chan uint32, 1)
	go func() {
		defer close(out)
		select {
		case st := <-ch:
			r.drained(id, outputDrain) // the log is complete before the exit is reported
			out <- st.ExitCode()
		case <-ctx.Done():
		}
	}()
	return out, nil
}

// Stop sends SIGTERM, then SIGKILL after grace, and waits for the exit.
func (r *ContainerdRuntime) Stop(ctx context.Context, id string, grace time.Duration) error {
	ctx = r.ctx(ctx)
	ctr, err := r.c.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	task, err := ctr.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	exit, err := task.Wait(ctx)
	if err != nil {
		return err
	}
	if err := task.Kill(ctx, syscall.SIGTERM); err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-exit:
		return nil
	case <-t.C:
	}
	if err := task.Kill(ctx, syscall.SIGKILL); err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	select {
	case <-exit:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("container %s did not exit after SIGKILL", id)
	}
	return nil
}

// Remove deletes the container's task, container and snapshot.
func (r *ContainerdRuntime) Remove(ctx context.Context, id string) error {
	ctx = r.ctx(ctx)
	defer r.dropStdio(id)
	ctr, err := r.c.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if task, err := ctr.Task(ctx, nil); err == nil {
		if _, err := task.Delete(ctx, client.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("delete task %s: %w", id, err)
		}
	}
	if err := ctr.Delete(ctx, client.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("delete container %s: %w", id, err)
	}
	return nil
}

// RemoveAll deletes every container and image of the namespace, then the
// namespace itself (used by delete).
func (r *ContainerdRuntime) RemoveAll(ctx context.Context) error {
	all, err := r.List(ctx, nil)
	if err != nil {
		return err
	}
	for _, c := range all {
		if err := r.Remove(ctx, c.ID); err != nil {
			return err
		}
	}
	imgs, err := r.c.ListImages(r.ctx(ctx))
	if err != nil {
		return err
	}
	for _, i := range imgs {
		if err := r.c.ImageService().Delete(r.ctx(ctx), i.Name(), images.SynchronousDelete()); err != nil && !errdefs.IsNotFound(err) {
			return err
		}
	}
	return nil
}
