package apiserver

import (
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// TestWatchFutureResourceVersion: a watch from a revision the store has
// not reached waits for it, and past Config.RevisionWait is kube-apiserver's
// 504 ResourceVersionTooLarge.
func TestWatchFutureResourceVersion(t *testing.T) {
	const wait = 300 * time.Millisecond
	s := startTestServer(t, func(c *Config) { c.RevisionWait = wait })
	cs, err := kubernetes.NewForConfig(s.LoopbackConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	cms := cs.CoreV1().ConfigMaps("default")
	rev := s.store.Rev()

	start := time.Now()
	_, err = cms.Watch(ctx, metav1.ListOptions{ResourceVersion: strconv.FormatInt(rev+100, 10)})
	if !apierrors.IsTimeout(err) || !apierrors.HasStatusCause(err, metav1.CauseTypeResourceVersionTooLarge) {
		t.Fatalf("watch from a future resourceVersion = %v, want 504 ResourceVersionTooLarge", err)
	}
	if took := time.Since(start); took < wait {
		t.Errorf("the watch gave up after %v, before its %v wait", took, wait)
	}

	// A revision that arrives within the wait: the watch starts there.
	type result struct {
		w   watch.Interface
		err error
	}
	started := make(chan result, 1)
	go func() {
		w, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: strconv.FormatInt(rev+1, 10)})
		started <- result{w, err}
	}()
	for _, name := range []string{"first", "second"} {
		if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	res := <-started
	if res.err != nil {
		t.Fatalf("watch from the next revision: %v", res.err)
	}
	defer res.w.Stop()
	select {
	case ev := <-res.w.ResultChan():
		if cm, ok := ev.Object.(*corev1.ConfigMap); !ok || ev.Type != watch.Added || cm.Name != "second" {
			t.Errorf("first event = %s %+v, want ADDED second", ev.Type, ev.Object)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
	}
}
