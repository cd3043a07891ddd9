package controller

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestResourceQuotaUsage(t *testing.T) {
	withRes := func(name, cpu, mem string, phase corev1.PodPhase) *corev1.Pod {
		p := readyPod("default", name, nil, "n1", time.Now())
		p.Status.Phase = phase
		p.Status.QOSClass = corev1.PodQOSBurstable
		p.Spec.Containers[0].Resources = corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(mem)},
		}
		return p
	}
	a := withRes("a", "100m", "64Mi", corev1.PodRunning)
	b := withRes("b", "250m", "128Mi", corev1.PodPending)
	done := withRes("done", "1", "1Gi", corev1.PodSucceeded)
	lb := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "lb"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer,
		Ports: []corev1.ServicePort{{Port: 80, NodePort: 30080}}}}
	ip := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "ip"}}
	other := withRes("elsewhere", "2", "2Gi", corev1.PodRunning)
	other.Namespace = "other"
	q := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "q"}, Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{
		corev1.ResourcePods: resource.MustParse("10"), corev1.ResourceRequestsCPU: resource.MustParse("1"), corev1.ResourceLimitsMemory: resource.MustParse("1Gi"),
		corev1.ResourceServices: resource.MustParse("5"), corev1.ResourceServicesLoadBalancers: resource.MustParse("1"), corev1.ResourceServicesNodePorts: resource.MustParse("2"),
	}}}
	f := newFakeCluster(a, b, done, lb, ip, other, q)
	c, err := NewResourceQuota(ResourceQuotaConfig{Client: f.client, Informers: f.informers, Log: f.log})
	if err != nil {
		t.Fatal(err)
	}
	f.run(t, c.Run)
	want := map[corev1.ResourceName]string{corev1.ResourcePods: "2", corev1.ResourceRequestsCPU: "350m", corev1.ResourceLimitsMemory: "192Mi",
		corev1.ResourceServices: "2", corev1.ResourceServicesLoadBalancers: "1", corev1.ResourceServicesNodePorts: "1"}
	check := func(want map[corev1.ResourceName]string) func() bool {
		return func() bool {
			got, _ := f.client.CoreV1().ResourceQuotas("default").Get(context.Background(), "q", metav1.GetOptions{})
			if len(got.Status.Hard) != len(q.Spec.Hard) {
				return false
			}
			for r, v := range want {
				u, ok := got.Status.Used[r]
				if !ok || u.Cmp(resource.MustParse(v)) != 0 {
					return false
				}
			}
			return true
		}
	}
	eventually(t, "quota usage", check(want))
	// A pod that goes gives its share back.
	if err := f.client.CoreV1().Pods("default").Delete(context.Background(), "b", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	want[corev1.ResourcePods], want[corev1.ResourceRequestsCPU], want[corev1.ResourceLimitsMemory] = "1", "100m", "64Mi"
	eventually(t, "usage after a pod was deleted", check(want))
}
