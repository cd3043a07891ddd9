package controller

import (
	"log/slog"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/record"
)

func TestSurgeAndUnavailable(t *testing.T) {
	pct := func(s string) *intstr.IntOrString { v := intstr.FromString(s); return &v }
	num := func(n int) *intstr.IntOrString { v := intstr.FromInt32(int32(n)); return &v }
	cases := []struct {
		replicas       int32
		surge, unavail *intstr.IntOrString
		wantS, wantU   int32
	}{
		{10, pct("25%"), pct("25%"), 3, 2}, // surge rounds up, unavailable down
		{1, pct("25%"), pct("25%"), 1, 0},
		{3, num(0), num(0), 0, 1}, // both zero: one may be unavailable
		{4, num(2), pct("50%"), 2, 2},
	}
	for _, c := range cases {
		d := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Strategy: appsv1.DeploymentStrategy{
			RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: c.surge, MaxUnavailable: c.unavail}}}}
		s, u := surgeAndUnavailable(d, c.replicas)
		if s != c.wantS || u != c.wantU {
			t.Errorf("replicas %d surge %v unavailable %v: got %d/%d, want %d/%d", c.replicas, c.surge, c.unavail, s, u, c.wantS, c.wantU)
		}
	}
}

func TestTemplateHashIsStable(t *testing.T) {
	d := &appsv1.Deployment{}
	d.Spec.Template.Labels = map[string]string{"app": "web"}
	h1 := templateHash(&d.Spec.Template, nil)
	h2 := templateHash(d.Spec.Template.DeepCopy(), nil)
	if h1 != h2 || h1 == "" {
		t.Fatalf("hash of equal templates differs: %q %q", h1, h2)
	}
	d.Spec.Template.Labels["app"] = "other"
	if templateHash(&d.Spec.Template, nil) == h1 {
		t.Errorf("hash ignores a template change")
	}
	one := int32(1)
	if templateHash(&d.Spec.Template, &one) == templateHash(&d.Spec.Template, nil) {
		t.Errorf("collision count does not change the hash")
	}
}

func TestDeploymentProgress(t *testing.T) {
	c := &Deployment{cfg: DeploymentConfig{Recorder: record.NewFakeRecorder(10)}, w: newWorker("test", slog.New(slog.DiscardHandler), nil)}
	defer c.w.queue.ShutDown()
	three, deadline := int32(3), int32(60)
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns"}, Spec: appsv1.DeploymentSpec{Replicas: &three, ProgressDeadlineSeconds: &deadline}}
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "web-abc"}}
	now := metav1.Now()
	reason := func(st *appsv1.DeploymentStatus) string {
		if c := deploymentCondition(st, appsv1.DeploymentProgressing); c != nil {
			return string(c.Status) + "/" + c.Reason
		}
		return ""
	}
	st := &appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 3}
	c.progress(d, st, rs, true, now)
	if got := reason(st); got != "True/NewReplicaSetCreated" {
		t.Fatalf("after create: %s", got)
	}
	d.Status = *st
	st = d.Status.DeepCopy()
	st.AvailableReplicas = 1
	c.progress(d, st, rs, false, now)
	if got := reason(st); got != "True/ReplicaSetUpdated" {
		t.Fatalf("after progress: %s", got)
	}
	// Nothing moves for longer than the deadline.
	d.Status = *st
	st = d.Status.DeepCopy()
	c.progress(d, st, rs, false, metav1.NewTime(now.Add(61*time.Second)))
	if got := reason(st); got != "False/ProgressDeadlineExceeded" {
		t.Fatalf("after the deadline: %s", got)
	}
	if msg := deploymentCondition(st, appsv1.DeploymentProgressing).Message; msg != `ReplicaSet "web-abc" has timed out progressing.` {
		t.Errorf("message %q", msg)
	}
	// It stays timed out until something moves; completion clears it.
	d.Status = *st
	st = d.Status.DeepCopy()
	st.AvailableReplicas = 3
	c.progress(d, st, rs, false, now)
	if got := reason(st); got != "True/NewReplicaSetAvailable" {
		t.Fatalf("after completion: %s", got)
	}
	// Pausing and resuming.
	d.Spec.Paused = true
	d.Status = *st
	st = d.Status.DeepCopy()
	c.progress(d, st, rs, false, now)
	if got := reason(st); got != "Unknown/DeploymentPaused" {
		t.Fatalf("paused: %s", got)
	}
	d.Spec.Paused = false
	d.Status = *st
	st = d.Status.DeepCopy()
	c.progress(d, st, rs, false, now)
	if got := reason(st); got != "True/NewReplicaSetAvailable" {
		t.Fatalf("resumed and complete: %s", got)
	}
}
