package agent

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nanokube/nanokube/runtime"
)

// TestStatusOfAContainerThatDiedAgain: between a restarted container's
// exit and its next start, kubelet shows the new exit as the state and the
// one before it as lastState; neither goes missing.
func TestStatusOfAContainerThatDiedAgain(t *testing.T) {
	a, rt, _ := testAgentWithFakeRuntime(t)
	ctx := t.Context()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "hog", Namespace: "default", UID: "u1"},
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyAlways, Containers: []corev1.Container{{Name: "c", Image: "app:1"}}}}
	st := a.stateOf(pod)
	id := containerID(st.uid, "c")
	if err := rt.Run(ctx, runtime.ContainerSpec{ID: id, Image: "app:1"}); err != nil {
		t.Fatal(err)
	}
	if err := rt.Exit(id, 137); err != nil {
		t.Fatal(err)
	}
	first := &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "OOMKilled", FinishedAt: metav1.NewTime(time.Unix(100, 0))}
	second := &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "OOMKilled", FinishedAt: metav1.NewTime(time.Unix(200, 0))}

	// The first exit, not restarted yet: the state, no lastState.
	st.last["c"] = first
	cs := a.podStatus(ctx, pod, st).ContainerStatuses[0]
	if cs.State.Terminated == nil || cs.State.Terminated.FinishedAt != first.FinishedAt || cs.LastTerminationState.Terminated != nil {
		t.Errorf("after the first exit: state %+v, lastState %+v", cs.State, cs.LastTerminationState)
	}

	// Restarted once and dead again: the second exit is the state, the
	// first the lastState.
	st.restarts["c"] = 1
	st.prior["c"], st.last["c"] = first, second
	cs = a.podStatus(ctx, pod, st).ContainerStatuses[0]
	if cs.State.Terminated == nil || cs.State.Terminated.FinishedAt != second.FinishedAt {
		t.Errorf("after the second exit: state %+v", cs.State)
	}
	if lt := cs.LastTerminationState.Terminated; lt == nil || lt.Reason != "OOMKilled" || lt.ExitCode != 137 || lt.FinishedAt != first.FinishedAt {
		t.Errorf("after the second exit: lastState %+v, want the first exit", cs.LastTerminationState)
	}
}

// TestStatusImageID: imageID is the repo digest, as kubelet on containerd
// reports it.
func TestStatusImageID(t *testing.T) {
	for _, c := range []struct {
		img  runtime.Image
		want string
	}{
		{runtime.Image{Ref: "nanokube.local/busybox:test", Digest: "sha256:cfg", Target: "sha256:man"}, "nanokube.local/busybox@sha256:man"},
		{runtime.Image{Ref: "docker.io/library/app:1", Digest: "sha256:cfg", Target: "sha256:man"}, "docker.io/library/app@sha256:man"},
		{runtime.Image{Ref: "127.0.0.1:5000/app@sha256:man", Digest: "sha256:cfg", Target: "sha256:man"}, "127.0.0.1:5000/app@sha256:man"},
		{runtime.Image{Ref: "localhost:5000/app:v1", Digest: "sha256:cfg"}, "sha256:cfg"},
	} {
		if got := statusImageID(c.img); got != c.want {
			t.Errorf("statusImageID(%+v) = %q, want %q", c.img, got, c.want)
		}
	}
}
