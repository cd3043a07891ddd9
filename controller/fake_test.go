package controller

import (
	"context"
	"log/slog"
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
)

// fakeCluster is an in-memory API (client-go's fake clientset) with a
// shared informer factory, for running one controller in a test.
type fakeCluster struct {
	client    *fake.Clientset
	informers informers.SharedInformerFactory
	recorder  *record.FakeRecorder
	log       *slog.Logger
}

func newFakeCluster(objs ...runtime.Object) *fakeCluster {
	c := fake.NewClientset(objs...)
	c.PrependReactor("update", "*", statusOnly(c.Tracker()))
	return &fakeCluster{client: c, informers: informers.NewSharedInformerFactory(c, 0), recorder: record.NewFakeRecorder(100), log: slog.New(slog.DiscardHandler)}
}

// statusOnly makes status updates write only status, as the API server
// does: client-go's fake writes the whole object, so a controller's status
// write from a cached copy would undo a newer spec and make tests flaky
// in ways a real cluster is not.
func statusOnly(tracker clienttesting.ObjectTracker) clienttesting.ReactionFunc {
	return func(a clienttesting.Action) (bool, runtime.Object, error) {
		u, ok := a.(clienttesting.UpdateAction)
		if !ok || u.GetSubresource() != "status" {
			return false, nil, nil
		}
		m, err := meta.Accessor(u.GetObject())
		if err != nil {
			return true, nil, err
		}
		cur, err := tracker.Get(u.GetResource(), u.GetNamespace(), m.GetName())
		if err != nil {
			return true, nil, err
		}
		merged, err := runtime.DefaultUnstructuredConverter.ToUnstructured(cur)
		if err != nil {
			return true, nil, err
		}
		next, err := runtime.DefaultUnstructuredConverter.ToUnstructured(u.GetObject())
		if err != nil {
			return true, nil, err
		}
		merged["status"] = next["status"]
		out := reflect.New(reflect.TypeOf(cur).Elem()).Interface().(runtime.Object)
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(merged, out); err != nil {
			return true, nil, err
		}
		if err := tracker.Update(u.GetResource(), out, u.GetNamespace()); err != nil {
			return true, nil, err
		}
		return true, out, nil
	}
}

// run starts the informers and the controller until the test ends.
func (f *fakeCluster) run(t *testing.T, run func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	f.informers.Start(ctx.Done())
	t.Cleanup(func() {
		cancel()
		<-done
		f.informers.Shutdown()
	})
}

// eventually waits up to 10s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("timed out waiting for %s", what)
	}
}

// events drains the fake recorder.
func (f *fakeCluster) events() []string {
	var out []string
	for {
		select {
		case e := <-f.recorder.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func readyPod(ns, name string, labels map[string]string, node string, started time.Time) *corev1.Pod {
	st := metav1.NewTime(started)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels, UID: types.UID("uid-" + name), CreationTimestamp: st},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "img"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, StartTime: &st,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: st}}},
	}
}
