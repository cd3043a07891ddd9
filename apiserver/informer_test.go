package apiserver

import (
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// TestInformerAndExpiredWatch: a client-go shared informer (list, watch,
// resync) syncs and follows changes; a watch or an Exact list from a
// compacted revision gets 410 Expired, which makes informers re-list.
func TestInformerAndExpiredWatch(t *testing.T) {
	s := startTestServer(t)
	cs, err := kubernetes.NewForConfig(s.LoopbackConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	cms := cs.CoreV1().ConfigMaps("default")
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "before"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	factory := informers.NewSharedInformerFactoryWithOptions(cs, time.Second, informers.WithNamespace("default"))
	inf := factory.Core().V1().ConfigMaps().Informer()
	seen := make(chan string, 100)
	resynced := make(chan struct{}, 100)
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { seen <- "add " + obj.(*corev1.ConfigMap).Name },
		UpdateFunc: func(old, obj any) {
			if old.(*corev1.ConfigMap).ResourceVersion == obj.(*corev1.ConfigMap).ResourceVersion {
				resynced <- struct{}{}
				return
			}
			seen <- "update " + obj.(*corev1.ConfigMap).Name
		},
		DeleteFunc: func(obj any) { seen <- "delete " + obj.(*corev1.ConfigMap).Name },
	}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	factory.Start(stop)
	defer factory.Shutdown() // after close(stop): Shutdown waits for the informers to end
	defer close(stop)
	if !cache.WaitForCacheSync(stop, inf.HasSynced) {
		t.Fatal("informer never synced")
	}
	after, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "after"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	after.Data = map[string]string{"k": "v"}
	if _, err := cms.Update(ctx, after, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cms.Delete(ctx, "before", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"add before": true, "add after": true, "update after": true, "delete before": true}
	deadline := time.After(10 * time.Second)
	for len(want) > 0 {
		select {
		case ev := <-seen:
			delete(want, ev)
		case <-deadline:
			t.Fatalf("informer missed %v", want)
		}
	}
	select {
	case <-resynced:
	case <-deadline:
		t.Fatal("no resync within the deadline")
	}

	list, err := cms.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	old, _ := strconv.ParseInt(list.ResourceVersion, 10, 64)
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "later"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.store.Compact(s.store.Rev()); err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: strconv.FormatInt(old, 10)}); !apierrors.IsResourceExpired(err) && !apierrors.IsGone(err) {
		t.Errorf("watch from a compacted revision = %v, want 410", err)
	}
	_, err = cms.List(ctx, metav1.ListOptions{ResourceVersion: strconv.FormatInt(old, 10), ResourceVersionMatch: metav1.ResourceVersionMatchExact})
	if !apierrors.IsResourceExpired(err) || !strings.Contains(err.Error(), "The resourceVersion for the provided list is too old") {
		t.Errorf("Exact list at a compacted revision = %v, want 410 Expired", err)
	}
}

// TestNamespaceLifecycleAndGenerateName: a namespace being deleted
// refuses new content with kube-apiserver's message; generateName makes a
// fresh name for each create.
func TestNamespaceLifecycleAndGenerateName(t *testing.T) {
	cs := newTestServer(t)
	ctx := t.Context()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "going"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cs.CoreV1().Namespaces().Delete(ctx, "going", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// No namespace controller runs here: the namespace stays Terminating.
	ns, err := cs.CoreV1().Namespaces().Get(ctx, "going", metav1.GetOptions{})
	if err != nil || ns.Status.Phase != corev1.NamespaceTerminating || ns.DeletionTimestamp == nil {
		t.Fatalf("deleted namespace = %+v, %v; want Terminating", ns, err)
	}
	_, err = cs.CoreV1().ConfigMaps("going").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "late"}}, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "unable to create new content in namespace going because it is being terminated") {
		t.Errorf("create in a terminating namespace = %v", err)
	}
	names := map[string]bool{}
	for range 3 {
		cm, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{GenerateName: "gen-"}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(cm.Name, "gen-") || len(cm.Name) != len("gen-")+5 || names[cm.Name] {
			t.Errorf("generated name %q (had %v)", cm.Name, names)
		}
		names[cm.Name] = true
	}
}
