package agent

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestContainerRef(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u", ResourceVersion: "7"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}, InitContainers: []corev1.Container{{Name: "setup"}},
			EphemeralContainers: []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debugger"}}}}}
	for name, want := range map[string]string{"app": "spec.containers{app}", "setup": "spec.initContainers{setup}",
		"debugger": "spec.ephemeralContainers{debugger}", "gone": "implicitly required container gone"} {
		ref := containerRef(pod, name)
		if ref.FieldPath != want || ref.Kind != "Pod" || ref.APIVersion != "v1" || ref.Name != "p" || ref.Namespace != "ns" || ref.UID != "u" || ref.ResourceVersion != "7" {
			t.Errorf("containerRef(%s) = %+v, want fieldPath %s", name, ref, want)
		}
	}
}
