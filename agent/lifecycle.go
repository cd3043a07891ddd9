package agent

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/nanokube/nanokube/runtime"
)

// maxExecOutput is how much of an exec probe's or hook's output is kept
// (kubelet's limit).
const maxExecOutput = 10 << 10

// runInContainer runs cmd in a running container of the pod and returns
// its combined output (bounded) and exit code.
func (a *Agent) runInContainer(ctx context.Context, uid, container string, cmd []string) ([]byte, int, error) {
	out := &boundedBuffer{max: maxExecOutput}
	code, err := a.cfg.Runtime.Exec(ctx, containerID(uid, container), runtime.ExecSpec{Cmd: cmd, Stdout: out, Stderr: out, IODir: a.ioDir(uid)})
	return out.Bytes(), code, err
}

// boundedBuffer keeps the first max bytes written to it.
type boundedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *boundedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte{}, b.buf.Bytes()...)
}

// podRef names a pod in kubelet's messages: name_namespace(uid).
func podRef(pod *corev1.Pod) string {
	return fmt.Sprintf("%s_%s(%s)", pod.Name, pod.Namespace, pod.UID)
}

// runHandler runs a postStart or preStop handler of container c like
// kubelet: a command in the container, an HTTP GET against the pod, or a
// sleep. On failure it returns kubelet's message.
func (a *Agent) runHandler(ctx context.Context, pod *corev1.Pod, st *podState, c *corev1.Container, h *corev1.LifecycleHandler) (string, error) {
	switch {
	case h.Exec != nil:
		out, code, err := a.runInContainer(ctx, st.uid, c.Name, h.Exec.Command)
		if err == nil && code != 0 {
			err = fmt.Errorf("command '%s' exited with %d: %s", strings.Join(h.Exec.Command, " "), code, out)
		}
		if err != nil {
			return fmt.Sprintf("Exec lifecycle hook (%v) for Container %q in Pod %q failed - error: %v, message: %q", h.Exec.Command, c.Name, podRef(pod), err, out), err
		}
	case h.HTTPGet != nil:
		if err := a.httpGet(ctx, st, c, h.HTTPGet, "kube-lifecycle/1.37"); err != nil {
			return fmt.Sprintf("HTTP lifecycle hook (%s) for Container %q in Pod %q failed - error: %v", h.HTTPGet.Path, c.Name, podRef(pod), err), err
		}
	case h.Sleep != nil:
		t := time.NewTimer(time.Duration(h.Sleep.Seconds) * time.Second)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	}
	return "", nil
}

// postStart runs the container's postStart hook right after it started;
// when the hook fails the container is killed (and restarted as its
// policy says), like kubelet.
func (a *Agent) postStart(ctx context.Context, pod *corev1.Pod, st *podState, c *corev1.Container) bool {
	if c.Lifecycle == nil || c.Lifecycle.PostStart == nil {
		return true
	}
	msg, err := a.runHandler(ctx, pod, st, c, c.Lifecycle.PostStart)
	if err == nil {
		return true
	}
	// Like kubelet, the hook's message goes to the waiting state only,
	// not into an event where a secret could leak.
	a.recorder.Event(containerRef(pod, c.Name), corev1.EventTypeWarning, "FailedPostStartHook", "PostStartHook failed")
	a.recorder.Event(containerRef(pod, c.Name), corev1.EventTypeNormal, "Killing", "FailedPostStartHook")
	if err := a.stopContainer(ctx, pod, st, c, containerID(st.uid, c.Name), time.Duration(st.grace)*time.Second); err != nil {
		a.log.Info("stop container after its postStart hook failed", "pod", st.key, "container", c.Name, "err", err)
	}
	st.waiting[c.Name] = &corev1.ContainerStateWaiting{Reason: "PostStartHookError", Message: msg}
	return false
}

// minStopGrace is what kubelet leaves a container after its preStop hook
// used up the grace period.
const minStopGrace = 2 * time.Second

// stopContainer runs the container's preStop hook within the grace
// period, then stops it with what is left (at least 2s), like kubelet. c
// is nil when the pod's spec no longer names the container.
func (a *Agent) stopContainer(ctx context.Context, pod *corev1.Pod, st *podState, c *corev1.Container, id string, grace time.Duration) error {
	if pod != nil && c != nil && c.Lifecycle != nil && c.Lifecycle.PreStop != nil && grace > 0 {
		if cur, err := a.cfg.Runtime.Inspect(ctx, id); err == nil && cur.Running {
			start := time.Now()
			hctx, cancel := context.WithTimeout(ctx, grace)
			if msg, err := a.runHandler(hctx, pod, st, c, c.Lifecycle.PreStop); err != nil {
				a.recorder.Event(containerRef(pod, c.Name), corev1.EventTypeWarning, "FailedPreStopHook", msg)
			}
			cancel()
			grace = max(grace-time.Since(start), minStopGrace)
		}
	}
	return a.cfg.Runtime.Stop(ctx, id, grace)
}

// specContainer finds a container (app, init or ephemeral) in a pod's spec.
func specContainer(pod *corev1.Pod, name string) *corev1.Container {
	if pod == nil {
		return nil
	}
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i]
		}
	}
	return nil
}
