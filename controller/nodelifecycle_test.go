package controller

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func readyNode(name string) *corev1.Node {
	now := metav1.Now()
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
		{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", LastHeartbeatTime: now, LastTransitionTime: now},
		{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, LastHeartbeatTime: now, LastTransitionTime: now},
	}}}
}

func hasTaint(n *corev1.Node, key string, effect corev1.TaintEffect) bool {
	for _, t := range n.Spec.Taints {
		if t.Key == key && t.Effect == effect {
			return true
		}
	}
	return false
}

func TestNodeLifecycleMarksSilentNodes(t *testing.T) {
	pod := readyPod("default", "p", nil, "n1", time.Now())
	cordoned := readyNode("n2")
	cordoned.Spec.Unschedulable = true
	f := newFakeCluster(readyNode("n1"), cordoned, pod)
	c, err := NewNodeLifecycle(NodeLifecycleConfig{Client: f.client, Informers: f.informers, Recorder: f.recorder, Log: f.log, GracePeriod: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	f.run(t, c.Run)
	nodes := f.client.CoreV1().Nodes()
	eventually(t, "the cordoned node's unschedulable taint", func() bool {
		n, _ := nodes.Get(context.Background(), "n2", metav1.GetOptions{})
		return hasTaint(n, corev1.TaintNodeUnschedulable, corev1.TaintEffectNoSchedule)
	})
	var n1 *corev1.Node
	eventually(t, "n1 Unknown and tainted unreachable", func() bool {
		n1, _ = nodes.Get(context.Background(), "n1", metav1.GetOptions{})
		return hasTaint(n1, corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute) && hasTaint(n1, corev1.TaintNodeUnreachable, corev1.TaintEffectNoSchedule)
	})
	for _, cond := range n1.Status.Conditions {
		if cond.Type != corev1.NodeReady && cond.Type != corev1.NodeMemoryPressure {
			if cond.Status != corev1.ConditionUnknown || cond.Reason != "NodeStatusNeverUpdated" {
				t.Errorf("condition the agent never reported %s = %s/%s", cond.Type, cond.Status, cond.Reason)
			}
			continue
		}
		if cond.Status != corev1.ConditionUnknown || cond.Reason != "NodeStatusUnknown" || cond.Message != "Kubelet stopped posting node status." {
			t.Errorf("condition %s = %s/%s/%q", cond.Type, cond.Status, cond.Reason, cond.Message)
		}
	}
	for _, tn := range n1.Spec.Taints {
		if tn.Effect == corev1.TaintEffectNoExecute && tn.TimeAdded == nil {
			t.Errorf("NoExecute taint without timeAdded")
		}
	}
	p, _ := f.client.CoreV1().Pods("default").Get(context.Background(), "p", metav1.GetOptions{})
	if podReady(p) {
		t.Errorf("pod of the silent node still ready")
	}

	// The agent comes back: renewing its lease and reporting Ready clears
	// the taints.
	n1.Status.Conditions[0] = corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}
	if _, err := nodes.UpdateStatus(context.Background(), n1, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "taints gone", func() bool {
		n, _ := nodes.Get(context.Background(), "n1", metav1.GetOptions{})
		return len(n.Spec.Taints) == 0
	})
}

func TestEvictionDelay(t *testing.T) {
	now := time.Now()
	added := metav1.NewTime(now.Add(-100 * time.Second))
	taints := []corev1.Taint{{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute, TimeAdded: &added}}
	secs := func(n int64) *int64 { return &n }
	tol := func(s *int64) []corev1.Toleration {
		return []corev1.Toleration{{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: s}}
	}
	cases := []struct {
		name string
		tols []corev1.Toleration
		want time.Duration
	}{
		{"no toleration: now", nil, 0},
		{"the API server's 300s default: the rest of it", tol(secs(300)), 200 * time.Second},
		{"expired toleration: now", tol(secs(60)), 0},
		{"tolerated for good: never", tol(nil), -1},
	}
	for _, c := range cases {
		p := &corev1.Pod{Spec: corev1.PodSpec{Tolerations: c.tols}}
		if got := evictionDelay(p, taints, now); got != c.want {
			t.Errorf("%s: delay %v, want %v", c.name, got, c.want)
		}
	}
	if got := evictionDelay(&corev1.Pod{}, []corev1.Taint{{Key: "x", Effect: corev1.TaintEffectNoSchedule}}, now); got != -1 {
		t.Errorf("NoSchedule taint evicts after %v", got)
	}
}

func TestTaintEvictionDeletes(t *testing.T) {
	node := readyNode("n1")
	now := metav1.Now()
	node.Spec.Taints = []corev1.Taint{{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoExecute, TimeAdded: &now}}
	intolerant := readyPod("default", "intolerant", nil, "n1", time.Now())
	patient := readyPod("default", "patient", nil, "n1", time.Now())
	patient.Spec.Tolerations = []corev1.Toleration{{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}}
	brief := readyPod("default", "brief", nil, "n1", time.Now())
	one := int64(1)
	brief.Spec.Tolerations = []corev1.Toleration{{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: &one}}
	f := newFakeCluster(node, intolerant, patient, brief)
	c, err := NewTaintEviction(TaintEvictionConfig{Client: f.client, Informers: f.informers, Recorder: f.recorder, Log: f.log})
	if err != nil {
		t.Fatal(err)
	}
	f.run(t, c.Run)
	gone := func(name string) func() bool {
		return func() bool {
			_, err := f.client.CoreV1().Pods("default").Get(context.Background(), name, metav1.GetOptions{})
			return apierrors.IsNotFound(err)
		}
	}
	eventually(t, "the intolerant pod evicted", gone("intolerant"))
	eventually(t, "the briefly tolerant pod evicted after 1s", gone("brief"))
	if gone("patient")() {
		t.Error("a pod tolerating the taint for good was evicted")
	}
	found := false
	for _, e := range f.events() {
		found = found || e == "Normal TaintManagerEviction Marking for deletion Pod default/intolerant"
	}
	if !found {
		t.Error("no TaintManagerEviction event")
	}
}
