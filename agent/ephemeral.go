package agent

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ensureEphemeral starts an ephemeral container (`kubectl debug`) once:
// it is never restarted, has no probes or hooks, and joins the process
// namespace of its target container when it names one.
func (a *Agent) ensureEphemeral(ctx context.Context, pod *corev1.Pod, st *podState, ec corev1.EphemeralContainer) error {
	id := containerID(st.uid, ec.Name)
	if cur, err := a.cfg.Runtime.Inspect(ctx, id); err == nil {
		if cur.Running {
			if err := a.cfg.Runtime.Reattach(ctx, id, a.LogPath(st.uid, ec.Name)); err != nil {
				a.log.Info("reattach container stdio", "pod", st.key, "container", ec.Name, "err", err)
			}
			a.watch(pod, st, ec.Name)
		}
		return nil
	}
	for _, s := range pod.Status.EphemeralContainerStatuses {
		if s.Name == ec.Name && s.State.Terminated != nil {
			return nil // it ran and ended
		}
	}
	c := corev1.Container(ec.EphemeralContainerCommon)
	if err := a.ensureImage(ctx, pod, st, c); err != nil {
		return nil // reported as a waiting reason; retried by the queue
	}
	spec, err := a.containerSpec(ctx, pod, st, c)
	if err != nil {
		st.waiting[c.Name] = &corev1.ContainerStateWaiting{Reason: "CreateContainerConfigError", Message: err.Error()}
		return nil
	}
	if ec.TargetContainerName != "" {
		spec.PIDNamespaceOf = containerID(st.uid, ec.TargetContainerName)
	}
	if err := a.cfg.Runtime.Run(ctx, spec); err != nil {
		st.waiting[c.Name] = &corev1.ContainerStateWaiting{Reason: "RunContainerError", Message: err.Error()}
		a.recorder.Eventf(containerRef(pod, c.Name), corev1.EventTypeWarning, "Failed", "Error: %v", err)
		return fmt.Errorf("run %s/%s: %w", st.key, c.Name, err)
	}
	delete(st.waiting, c.Name)
	st.startedAt[c.Name] = time.Now()
	a.recorder.Eventf(containerRef(pod, c.Name), corev1.EventTypeNormal, "Created", "Created container: %s", c.Name)
	a.recorder.Eventf(containerRef(pod, c.Name), corev1.EventTypeNormal, "Started", "Started container %s", c.Name)
	st.watching[c.Name] = false
	a.watch(pod, st, c.Name)
	return nil
}

// ephemeralStatuses reports the ephemeral containers like kubelet; they
// take no part in the pod's phase or readiness.
func (a *Agent) ephemeralStatuses(ctx context.Context, pod *corev1.Pod, st *podState) []corev1.ContainerStatus {
	var out []corev1.ContainerStatus
	prev := map[string]corev1.ContainerStatus{}
	for _, s := range pod.Status.EphemeralContainerStatuses {
		prev[s.Name] = s
	}
	for _, ec := range pod.Spec.EphemeralContainers {
		id := containerID(st.uid, ec.Name)
		cs := corev1.ContainerStatus{Name: ec.Name, Image: ec.Image}
		if img, err := a.cfg.Runtime.GetImage(ctx, ec.Image); err == nil {
			cs.ImageID = statusImageID(img)
		}
		rt, err := a.cfg.Runtime.Inspect(ctx, id)
		started := metav1.NewTime(st.startedAt[ec.Name].Truncate(time.Second))
		switch {
		case err == nil && rt.Running:
			cs.ContainerID = "containerd://" + id
			cs.State.Running = &corev1.ContainerStateRunning{StartedAt: started}
		case err == nil && !rt.Created:
			reason := "Completed"
			if rt.ExitCode != 0 {
				reason = "Error"
			}
			cs.ContainerID = "containerd://" + id
			cs.State.Terminated = &corev1.ContainerStateTerminated{ExitCode: int32(rt.ExitCode), Reason: reason, StartedAt: started,
				FinishedAt: metav1.NewTime(rt.FinishedAt.Truncate(time.Second)), ContainerID: cs.ContainerID}
		case st.waiting[ec.Name] != nil:
			cs.State.Waiting = st.waiting[ec.Name]
		case prev[ec.Name].State.Terminated != nil:
			cs = prev[ec.Name]
		default:
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
		}
		out = append(out, cs)
	}
	return out
}
