package controller

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// deploymentPods makes a Deployment of replicas with its ReplicaSet and
// ready pods owned by it.
func deploymentPods(replicas int32, ready int) []runtime.Object {
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "dep-uid"}, Spec: appsv1.DeploymentSpec{Replicas: &replicas}}
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-1", UID: "rs-uid",
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(dep, appsv1.SchemeGroupVersion.WithKind("Deployment"))}}, Spec: appsv1.ReplicaSetSpec{Replicas: &replicas}}
	objs := []runtime.Object{dep, rs}
	for i := range int(replicas) {
		p := readyPod("default", "web-1-"+string(rune('a'+i)), map[string]string{"app": "web"}, "node", time.Now())
		p.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(rs, appsv1.SchemeGroupVersion.WithKind("ReplicaSet"))}
		if i >= ready {
			p.Status.Conditions[0].Status = corev1.ConditionFalse
		}
		objs = append(objs, p)
	}
	return objs
}

func TestDisruptionStatus(t *testing.T) {
	pct := intstr.FromString("50%")
	one := intstr.FromInt32(1)
	cases := []struct {
		name                              string
		spec                              policyv1.PodDisruptionBudgetSpec
		replicas                          int32
		ready                             int
		expected, desired, healthy, allow int32
		reason                            string
	}{
		{"minAvailable count", policyv1.PodDisruptionBudgetSpec{MinAvailable: &one}, 3, 3, 3, 1, 3, 2, policyv1.SufficientPodsReason},
		{"minAvailable percent of the deployment's scale", policyv1.PodDisruptionBudgetSpec{MinAvailable: &pct}, 3, 2, 3, 2, 2, 0, policyv1.InsufficientPodsReason},
		{"maxUnavailable", policyv1.PodDisruptionBudgetSpec{MaxUnavailable: &one}, 4, 4, 4, 3, 4, 1, policyv1.SufficientPodsReason},
		{"blocking budget", policyv1.PodDisruptionBudgetSpec{MinAvailable: &one}, 1, 1, 1, 1, 1, 0, policyv1.InsufficientPodsReason},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spec := c.spec
			spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
			pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", Generation: 2}, Spec: spec}
			f := newFakeCluster(append(deploymentPods(c.replicas, c.ready), pdb)...)
			d, err := NewDisruption(DisruptionConfig{Client: f.client, Informers: f.informers, Recorder: f.recorder, Log: f.log})
			if err != nil {
				t.Fatal(err)
			}
			f.run(t, d.Run)
			var got *policyv1.PodDisruptionBudget
			eventually(t, "pdb status", func() bool {
				got, _ = f.client.PolicyV1().PodDisruptionBudgets("default").Get(context.Background(), "web", metav1.GetOptions{})
				return got.Status.ObservedGeneration == 2
			})
			st := got.Status
			if st.ExpectedPods != c.expected || st.DesiredHealthy != c.desired || st.CurrentHealthy != c.healthy || st.DisruptionsAllowed != c.allow {
				t.Errorf("expected/desired/healthy/allowed = %d/%d/%d/%d, want %d/%d/%d/%d", st.ExpectedPods, st.DesiredHealthy, st.CurrentHealthy,
					st.DisruptionsAllowed, c.expected, c.desired, c.healthy, c.allow)
			}
			if len(st.Conditions) != 1 || st.Conditions[0].Type != policyv1.DisruptionAllowedCondition || st.Conditions[0].Reason != c.reason {
				t.Errorf("conditions = %+v, want DisruptionAllowed %s", st.Conditions, c.reason)
			}
		})
	}
}

func TestDisruptionCountsEvictedPodsAsUnhealthy(t *testing.T) {
	one := intstr.FromInt32(1)
	objs := deploymentPods(3, 3)
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", Generation: 1},
		Spec:   policyv1.PodDisruptionBudgetSpec{MinAvailable: &one, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
		Status: policyv1.PodDisruptionBudgetStatus{DisruptedPods: map[string]metav1.Time{"web-1-a": metav1.Now(), "gone": metav1.Now()}}}
	f := newFakeCluster(append(objs, pdb)...)
	d, err := NewDisruption(DisruptionConfig{Client: f.client, Informers: f.informers, Recorder: f.recorder, Log: f.log})
	if err != nil {
		t.Fatal(err)
	}
	f.run(t, d.Run)
	var got *policyv1.PodDisruptionBudget
	eventually(t, "pdb status", func() bool {
		got, _ = f.client.PolicyV1().PodDisruptionBudgets("default").Get(context.Background(), "web", metav1.GetOptions{})
		return got.Status.ObservedGeneration == 1
	})
	if got.Status.CurrentHealthy != 2 || got.Status.DisruptionsAllowed != 1 || len(got.Status.DisruptedPods) != 1 {
		t.Errorf("status = %+v, want 2 healthy, 1 allowed, only web-1-a still disrupted", got.Status)
	}
}

func TestDisruptionWithoutController(t *testing.T) {
	pct := intstr.FromString("50%")
	pod := readyPod("default", "bare", map[string]string{"app": "web"}, "node", time.Now())
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", Generation: 1},
		Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: &pct, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}
	f := newFakeCluster(pod, pdb)
	d, err := NewDisruption(DisruptionConfig{Client: f.client, Informers: f.informers, Recorder: f.recorder, Log: f.log})
	if err != nil {
		t.Fatal(err)
	}
	f.run(t, d.Run)
	eventually(t, "SyncFailed", func() bool {
		got, _ := f.client.PolicyV1().PodDisruptionBudgets("default").Get(context.Background(), "web", metav1.GetOptions{})
		return len(got.Status.Conditions) == 1 && got.Status.Conditions[0].Reason == policyv1.SyncFailedReason &&
			got.Status.Conditions[0].Message == `found no controller ref for pod "bare"`
	})
}
