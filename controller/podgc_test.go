package controller

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestPodGC(t *testing.T) {
	objs := []runtime.Object{readyNode("n1")}
	// Three terminated pods with a threshold of 2: the oldest goes.
	for i, name := range []string{"old", "mid", "new"} {
		p := readyPod("default", name, nil, "n1", time.Now().Add(time.Duration(i)*time.Minute))
		p.Status.Phase = corev1.PodSucceeded
		objs = append(objs, p)
	}
	live := readyPod("default", "live", nil, "n1", time.Now())
	orphan := readyPod("default", "orphan", nil, "gone-node", time.Now())
	f := newFakeCluster(append(objs, live, orphan)...)
	c, err := NewPodGC(PodGCConfig{Client: f.client, Informers: f.informers, Log: f.log, TerminatedThreshold: 2, Quarantine: 100 * time.Millisecond})
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
	eventually(t, "the oldest terminated pod collected", gone("old"))
	eventually(t, "the pod of a missing node collected", gone("orphan"))
	for _, name := range []string{"mid", "new", "live"} {
		if gone(name)() {
			t.Errorf("pod %s collected", name)
		}
	}
	// A node that goes takes its pods with it, after the quarantine.
	if err := f.client.CoreV1().Nodes().Delete(context.Background(), "n1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the pods of the deleted node collected", gone("live"))
}
