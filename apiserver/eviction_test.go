package apiserver

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
)

// runningPod creates a pod bound to a node and reports it running and ready.
func runningPod(t *testing.T, cs kubernetes.Interface, name string) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	p, err := cs.CoreV1().Pods("default").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Image: "img"}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Status.Phase = corev1.PodRunning
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	if p, err = cs.CoreV1().Pods("default").UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEvictionHonoursDisruptionBudgets(t *testing.T) {
	cs := newTestServer(t)
	ctx := context.Background()
	runningPod(t, cs, "web")
	one := intstr.FromInt32(1)
	pdbs := cs.PolicyV1().PodDisruptionBudgets("default")
	pdb, err := pdbs.Create(ctx, &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: &one, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	evict := func() error {
		return cs.PolicyV1().Evictions("default").Evict(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}})
	}
	// Not yet seen by the disruption controller: retry later.
	err = evict()
	if !apierrors.IsTooManyRequests(err) || !strings.Contains(err.Error(), "Cannot evict pod as it would violate the pod's disruption budget.") {
		t.Fatalf("eviction before the budget was processed = %v", err)
	}
	var se apierrors.APIStatus
	if !errors.As(err, &se) || len(se.Status().Details.Causes) != 1 || se.Status().Details.Causes[0].Message != "The disruption budget web is still being processed by the server." {
		t.Errorf("causes = %+v", se.Status().Details)
	}
	// Processed, and no disruption allowed.
	pdb.Status = policyv1.PodDisruptionBudgetStatus{ObservedGeneration: pdb.Generation, CurrentHealthy: 1, DesiredHealthy: 1, ExpectedPods: 1}
	if pdb, err = pdbs.UpdateStatus(ctx, pdb, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	err = evict()
	if !apierrors.IsTooManyRequests(err) || !errors.As(err, &se) || se.Status().Details.Causes[0].Message != "The disruption budget web needs 1 healthy pods and has 1 currently" {
		t.Fatalf("eviction against a full budget = %v", err)
	}
	// One disruption allowed: the eviction takes it and the pod goes.
	pdb.Status.DisruptionsAllowed = 1
	if _, err = pdbs.UpdateStatus(ctx, pdb, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := evict(); err != nil {
		t.Fatalf("eviction within the budget: %v", err)
	}
	pdb, _ = pdbs.Get(ctx, "web", metav1.GetOptions{})
	if pdb.Status.DisruptionsAllowed != 0 || pdb.Status.DisruptedPods["web"].Time.IsZero() {
		t.Errorf("budget after the eviction: %+v", pdb.Status)
	}
	p, err := cs.CoreV1().Pods("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.DeletionTimestamp == nil {
		t.Error("evicted pod is not being deleted")
	}
	found := false
	for _, c := range p.Status.Conditions {
		found = found || (c.Type == corev1.DisruptionTarget && c.Reason == "EvictionByEvictionAPI")
	}
	if !found {
		t.Errorf("evicted pod lacks the DisruptionTarget condition: %+v", p.Status.Conditions)
	}
	// A pod that has not started goes without asking the budget.
	if _, err := cs.CoreV1().Pods("default").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "pending", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "img"}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cs.PolicyV1().Evictions("default").Evict(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: "pending", Namespace: "default"}}); err != nil {
		t.Errorf("eviction of a pending pod: %v", err)
	}
	if _, err := cs.CoreV1().Pods("default").Get(ctx, "pending", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("pending pod after eviction: %v", err)
	}
}

func TestEvictionWithTwoBudgets(t *testing.T) {
	cs := newTestServer(t)
	ctx := context.Background()
	runningPod(t, cs, "web")
	for _, n := range []string{"a", "b"} {
		one := intstr.FromInt32(1)
		if _, err := cs.PolicyV1().PodDisruptionBudgets("default").Create(ctx, &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: n},
			Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: &one, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	err := cs.PolicyV1().Evictions("default").Evict(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}})
	if err == nil || !strings.Contains(err.Error(), "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.") {
		t.Errorf("eviction with two budgets = %v", err)
	}
}

// TestEventsAreAggregated: client-go's recorder folds repeats of an event
// into one object (count, lastTimestamp) through a patch the server applies.
func TestEventsAreAggregated(t *testing.T) {
	cs := newTestServer(t)
	ctx := context.Background()
	b := record.NewBroadcaster()
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events("")})
	defer b.Shutdown()
	rec := b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kubelet", Host: "n1"})
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", UID: "u1"}}
	for range 3 {
		rec.Event(pod, corev1.EventTypeWarning, "BackOff", "Back-off restarting failed container")
	}
	err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		list, err := cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		return len(list.Items) == 1 && list.Items[0].Count == 3 && !list.Items[0].LastTimestamp.Before(&list.Items[0].FirstTimestamp), nil
	})
	if err != nil {
		list, _ := cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{})
		t.Fatalf("events not aggregated into one with count 3: %+v", list.Items)
	}
}
