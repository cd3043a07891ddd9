package agent

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// runInit runs the init containers one after another; it reports whether
// all have succeeded (then the app containers may start) and whether the
// pod failed for good (an init container failed under restartPolicy Never).
func (a *Agent) runInit(ctx context.Context, pod *corev1.Pod, st *podState) (done, failed bool, err error) {
	for _, c := range pod.Spec.InitContainers {
		if st.initDone[c.Name] {
			continue
		}
		id := containerID(st.uid, c.Name)
		cur, ierr := a.cfg.Runtime.Inspect(ctx, id)
		switch {
		case ierr == nil && cur.Running:
			if err := a.cfg.Runtime.Reattach(ctx, id, a.LogPath(st.uid, c.Name)); err != nil {
				a.log.Info("reattach container stdio", "pod", st.key, "container", c.Name, "err", err)
			}
			a.watch(pod, st, c.Name)
			return false, false, nil
		case ierr == nil && !cur.Created:
			code := int32(cur.ExitCode)
			reason := "Completed"
			if code != 0 {
				reason = "Error"
				if code == 137 && cur.OOMKilled {
					reason = "OOMKilled"
				}
			}
			st.last[c.Name] = &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason, StartedAt: metav1.NewTime(st.startedAt[c.Name]),
				FinishedAt: metav1.NewTime(cur.FinishedAt), ContainerID: "containerd://" + id}
			if code == 0 {
				st.initDone[c.Name] = true
				continue
			}
			if pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
				return false, true, nil
			}
			delay := backoffDelay(st.restarts[c.Name])
			if until := cur.FinishedAt.Add(delay); time.Now().Before(until) {
				st.waiting[c.Name] = &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff",
					Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s", delay, c.Name, podRef(pod))}
				a.recorder.Eventf(containerRef(pod, c.Name), corev1.EventTypeWarning, "BackOff", "Back-off restarting failed container %s in pod %s", c.Name, podRef(pod))
				a.queue.AddAfter(st.key, time.Until(until))
				return false, false, nil
			}
			st.restarts[c.Name]++
		}
		if err := a.startContainer(ctx, pod, st, c); err != nil {
			return false, false, err
		}
		return false, false, nil
	}
	return true, false, nil
}

// initStatuses reports the init containers like kubelet.
func (a *Agent) initStatuses(ctx context.Context, pod *corev1.Pod, st *podState) []corev1.ContainerStatus {
	var out []corev1.ContainerStatus
	for _, c := range pod.Spec.InitContainers {
		cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image, RestartCount: st.restarts[c.Name]}
		f := false
		cs.Started = &f
		id := containerID(st.uid, c.Name)
		rt, err := a.cfg.Runtime.Inspect(ctx, id)
		switch {
		case st.initDone[c.Name] && st.last[c.Name] != nil:
			term := *st.last[c.Name]
			cs.State.Terminated, cs.Ready, cs.ContainerID = &term, true, "containerd://"+id
		case err == nil && rt.Running:
			t := true
			cs.State.Running, cs.Started, cs.ContainerID = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(st.startedAt[c.Name].Truncate(1e9))}, &t, "containerd://"+id
		case st.waiting[c.Name] != nil:
			cs.State.Waiting = st.waiting[c.Name]
		case st.last[c.Name] != nil:
			term := *st.last[c.Name]
			cs.State.Terminated = &term
		default:
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "PodInitializing"}
		}
		out = append(out, cs)
	}
	return out
}
