package apiserver

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func testPod(name string, res corev1.ResourceRequirements) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox", Resources: res}}}}
}

func TestLimitRangerQuotaAndPriority(t *testing.T) {
	cs := newTestServer(t)
	ctx := t.Context()
	pods := cs.CoreV1().Pods("default")

	// LimitRanger: defaults with the annotation, then min/max.
	_, err := cs.CoreV1().LimitRanges("default").Create(ctx, &corev1.LimitRange{ObjectMeta: metav1.ObjectMeta{Name: "limits"},
		Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{Type: corev1.LimitTypeContainer,
			Default: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
			Max:     corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")},
			Min:     corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
		}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := pods.Create(ctx, testPod("defaulted", corev1.ResourceRequirements{}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := p.Spec.Containers[0].Resources
	if r.Limits.Cpu().String() != "500m" || r.Requests.Memory().String() != "128Mi" || p.Status.QOSClass != corev1.PodQOSGuaranteed {
		t.Errorf("defaulted resources = %+v, QoS %s", r, p.Status.QOSClass)
	}
	if got := p.Annotations["kubernetes.io/limit-ranger"]; got != "LimitRanger plugin set: cpu, memory request for container app; cpu, memory limit for container app" {
		t.Errorf("limit-ranger annotation = %q", got)
	}
	_, err = pods.Create(ctx, testPod("big", corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")},
		Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("32Mi")}}), metav1.CreateOptions{})
	want := `pods "big" is forbidden: [minimum memory usage per Container is 64Mi, but request is 32Mi, maximum cpu usage per Container is 1, but limit is 2]`
	if !apierrors.IsForbidden(err) || err.Error() != want {
		t.Errorf("over the limit range = %v\nwant %s", err, want)
	}

	// ResourceQuota: usage in status, denial with the upstream message.
	_, err = cs.CoreV1().ResourceQuotas("default").Create(ctx, &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "q"},
		Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{"pods": resource.MustParse("2"), "configmaps": resource.MustParse("10"), "requests.cpu": resource.MustParse("2")}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pods.Create(ctx, testPod("second", corev1.ResourceRequirements{}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = pods.Create(ctx, testPod("third", corev1.ResourceRequirements{}), metav1.CreateOptions{})
	want = `pods "third" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2`
	if !apierrors.IsForbidden(err) || err.Error() != want {
		t.Errorf("over quota = %v\nwant %s", err, want)
	}
	if err := pods.Delete(ctx, "second", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// A deleted pod no longer counts (usage is counted live at admission).
	if _, err := pods.Create(ctx, testPod("fourth", corev1.ResourceRequirements{}), metav1.CreateOptions{}); err != nil {
		t.Errorf("create after a delete freed quota: %v", err)
	}
	if err := pods.Delete(ctx, "fourth", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// Pods without the requests a quota tracks are refused.
	_, err = cs.CoreV1().ResourceQuotas("kube-public").Create(ctx, &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "compute"},
		Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{"limits.memory": resource.MustParse("1Gi")}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = cs.CoreV1().Pods("kube-public").Create(ctx, testPod("bare", corev1.ResourceRequirements{}), metav1.CreateOptions{})
	if want := `pods "bare" is forbidden: failed quota: compute: must specify limits.memory for: app`; !apierrors.IsForbidden(err) || err.Error() != want {
		t.Errorf("pod without limits under a compute quota = %v", err)
	}

	// Priority: system classes exist; a class sets the priority; an
	// unknown class is refused.
	for _, name := range []string{"system-cluster-critical", "system-node-critical"} {
		if _, err := cs.SchedulingV1().PriorityClasses().Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Errorf("priorityclass %s: %v", name, err)
		}
	}
	if err := pods.Delete(ctx, "defaulted", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.SchedulingV1().PriorityClasses().Create(ctx, &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "high"}, Value: 1000}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	hp := testPod("high", corev1.ResourceRequirements{})
	hp.Spec.PriorityClassName = "high"
	got, err := pods.Create(ctx, hp, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.Priority == nil || *got.Spec.Priority != 1000 || got.Spec.PreemptionPolicy == nil || *got.Spec.PreemptionPolicy != corev1.PreemptLowerPriority {
		t.Errorf("pod priority = %v %v", got.Spec.Priority, got.Spec.PreemptionPolicy)
	}
	np := testPod("nope", corev1.ResourceRequirements{})
	np.Spec.PriorityClassName = "missing"
	_, err = pods.Create(ctx, np, metav1.CreateOptions{})
	if want := `pods "nope" is forbidden: no PriorityClass with name missing was found`; !apierrors.IsForbidden(err) || err.Error() != want {
		t.Errorf("unknown priority class = %v", err)
	}
	if _, err := cs.SchedulingV1().PriorityClasses().Create(ctx, &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "huge"}, Value: 2000000000}, metav1.CreateOptions{}); !apierrors.IsInvalid(err) {
		t.Errorf("user priority class above the limit = %v", err)
	}
}
