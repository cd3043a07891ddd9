package apiserver

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestEphemeralContainers: the pods/ephemeralcontainers subresource adds
// defaulted ephemeral containers (what `kubectl debug` patches) and keeps
// kube-apiserver's rules.
func TestEphemeralContainers(t *testing.T) {
	_, cs := newStreamServer(t)
	ctx := t.Context()
	pods := cs.CoreV1().Pods("default")
	patch := `{"spec":{"ephemeralContainers":[{"name":"debugger","image":"busybox:1.36","stdin":true,"tty":true,"targetContainerName":"a"}]}}`
	pod, err := pods.Patch(ctx, "p", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}, "ephemeralcontainers")
	if err != nil {
		t.Fatalf("patch ephemeralcontainers: %v", err)
	}
	if n := len(pod.Spec.EphemeralContainers); n != 1 {
		t.Fatalf("%d ephemeral containers after the patch", n)
	}
	ec := pod.Spec.EphemeralContainers[0]
	if ec.ImagePullPolicy != corev1.PullIfNotPresent || ec.TerminationMessagePolicy != corev1.TerminationMessageReadFile || !ec.TTY || ec.TargetContainerName != "a" {
		t.Errorf("ephemeral container not defaulted or kept: %+v", ec)
	}
	if len(pod.Spec.Containers) != 2 || pod.Spec.Containers[0].Image != "busybox" {
		t.Errorf("the subresource changed more than ephemeral containers: %+v", pod.Spec.Containers)
	}
	got, err := cs.CoreV1().RESTClient().Get().Resource("pods").Namespace("default").Name("p").SubResource("ephemeralcontainers").Do(ctx).Get()
	if err != nil || len(got.(*corev1.Pod).Spec.EphemeralContainers) != 1 {
		t.Errorf("get ephemeralcontainers: %v %v", got, err)
	}

	for _, tc := range []struct {
		name string
		ecs  []corev1.EphemeralContainer
		want string
	}{
		{"removed", nil, `spec.ephemeralContainers: Forbidden: existing ephemeral containers "debugger" may not be removed`},
		{"changed", []corev1.EphemeralContainer{withImage(ec, "other")}, `spec.ephemeralContainers[0]: Forbidden: existing ephemeral containers "debugger" may not be changed`},
		{"duplicate", []corev1.EphemeralContainer{ec, newEphemeral("a", "")}, `spec.ephemeralContainers[1].name: Duplicate value: "a"`},
		{"bad target", []corev1.EphemeralContainer{ec, newEphemeral("d2", "nope")}, `spec.ephemeralContainers[1].targetContainerName: Not found: "nope"`},
	} {
		cur, err := pods.Get(ctx, "p", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cur.Spec.EphemeralContainers = tc.ecs
		_, err = pods.UpdateEphemeralContainers(ctx, "p", cur, metav1.UpdateOptions{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

func withImage(ec corev1.EphemeralContainer, image string) corev1.EphemeralContainer {
	ec.Image = image
	return ec
}

func newEphemeral(name, target string) corev1.EphemeralContainer {
	return corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: name, Image: "busybox"}, TargetContainerName: target}
}
