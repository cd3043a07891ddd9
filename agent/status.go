package agent

import (
	"context"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nanokube/nanokube/runtime"
)

// podStatus computes the status kubelet would report.
func (a *Agent) podStatus(ctx context.Context, pod *corev1.Pod, st *podState) corev1.PodStatus {
	s := corev1.PodStatus{
		Phase:    corev1.PodPending,
		HostIP:   a.cfg.NodeIP.String(),
		HostIPs:  []corev1.HostIP{{IP: a.cfg.NodeIP.String()}},
		QOSClass: pod.Status.QOSClass,
	}
	if st.ip != "" {
		s.PodIP, s.PodIPs = st.ip, []corev1.PodIP{{IP: st.ip}}
	}
	start := metav1.NewTime(st.started.Truncate(1e9))
	s.StartTime = &start
	s.InitContainerStatuses = a.initStatuses(ctx, pod, st)
	s.EphemeralContainerStatuses = a.ephemeralStatuses(ctx, pod, st)
	initialized := true
	for _, ic := range s.InitContainerStatuses {
		initialized = initialized && ic.State.Terminated != nil && ic.State.Terminated.ExitCode == 0
	}
	running, ready, succeeded, failed := 0, 0, 0, 0
	for _, c := range pod.Spec.Containers {
		id := containerID(st.uid, c.Name)
		cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image, RestartCount: st.restarts[c.Name]}
		if img, err := a.cfg.Runtime.GetImage(ctx, c.Image); err == nil {
			cs.ImageID = statusImageID(img)
		}
		if last := st.last[c.Name]; last != nil && st.restarts[c.Name] > 0 {
			cs.LastTerminationState.Terminated = last
		}
		rt, err := a.cfg.Runtime.Inspect(ctx, id)
		f := false
		cs.Started = &f
		switch {
		case err == nil && rt.Running:
			cs.ContainerID = "containerd://" + id
			cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(st.startedAt[c.Name].Truncate(1e9))}
			isReady, started := a.probeReady(st, c.Name)
			cs.Ready = isReady
			cs.Started = &started
			running++
			if isReady {
				ready++
			}
		case st.waiting[c.Name] != nil:
			cs.State.Waiting = st.waiting[c.Name]
		case err == nil && !rt.Created && st.last[c.Name] != nil:
			cs.ContainerID = "containerd://" + id
			term := *st.last[c.Name]
			cs.State.Terminated = &term
			if term.ExitCode == 0 {
				succeeded++
			} else {
				failed++
			}
			// Shown as the state now, the latest exit is not also the
			// last state: like kubelet, that is the run before it.
			cs.LastTerminationState = corev1.ContainerState{}
			if prior := st.prior[c.Name]; prior != nil && st.restarts[c.Name] > 0 {
				cs.LastTerminationState.Terminated = prior
			}
		case !initialized:
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "PodInitializing"}
		default:
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
		}
		s.ContainerStatuses = append(s.ContainerStatuses, cs)
	}
	n := len(pod.Spec.Containers)
	switch {
	case st.initFailed:
		s.Phase = corev1.PodFailed
	case running > 0:
		s.Phase = corev1.PodRunning
	case succeeded+failed == n && pod.Spec.RestartPolicy != corev1.RestartPolicyAlways:
		if failed > 0 && pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
			s.Phase = corev1.PodFailed
		} else if failed == 0 {
			s.Phase = corev1.PodSucceeded
		}
	}
	allReady := ready == n
	cond := func(t corev1.PodConditionType, ok bool, reason string) corev1.PodCondition {
		c := corev1.PodCondition{Type: t, Status: corev1.ConditionFalse, Reason: reason, LastTransitionTime: metav1.Now()}
		if ok {
			c.Status, c.Reason = corev1.ConditionTrue, ""
		}
		for _, old := range pod.Status.Conditions {
			if old.Type == t && old.Status == c.Status {
				c.LastTransitionTime = old.LastTransitionTime
			}
		}
		return c
	}
	notReady := "ContainersNotReady"
	if s.Phase == corev1.PodSucceeded || s.Phase == corev1.PodFailed {
		notReady = "PodCompleted"
	}
	s.Conditions = []corev1.PodCondition{
		cond(corev1.PodReadyToStartContainers, st.netns != "", ""),
		cond(corev1.PodInitialized, initialized, "ContainersNotInitialized"),
		cond(corev1.PodReady, allReady, notReady),
		cond(corev1.ContainersReady, allReady, notReady),
		cond(corev1.PodScheduled, true, ""),
	}
	return s
}

// stripTimes drops the fields that change on every computation, so an
// unchanged pod is not written again.
func stripTimes(s corev1.PodStatus) corev1.PodStatus {
	s = *s.DeepCopy()
	for i := range s.Conditions {
		s.Conditions[i].LastTransitionTime = metav1.Time{}
		s.Conditions[i].LastProbeTime = metav1.Time{}
	}
	s.StartTime = nil
	return s
}

// statusImageID is a container status's imageID as kubelet on containerd
// reports it: the image's repo digest (repository@manifest digest), or
// the image ID (config digest) when the image has no manifest digest.
func statusImageID(img runtime.Image) string {
	switch {
	case strings.Contains(img.Ref, "@"):
		return img.Ref
	case img.Target != "":
		return imageRepo(img.Ref) + "@" + img.Target
	}
	return img.Digest
}
