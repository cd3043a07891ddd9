package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
)

// ReplicaSetConfig builds the ReplicaSet controller.
type ReplicaSetConfig struct {
	Client    kubernetes.Interface
	Informers informers.SharedInformerFactory
	Recorder  record.EventRecorder
	Log       *slog.Logger
}

// ReplicaSet keeps spec.replicas pods of each ReplicaSet, like
// kube-controller-manager's: it adopts matching orphans, creates and
// deletes pods, and reports status. The same loop runs
// ReplicationControllers, seen as ReplicaSets (replicationcontroller.go).
type ReplicaSet struct {
	cfg    ReplicaSetConfig
	kind   replicaKind
	pods   corelisters.PodLister
	synced []cache.InformerSynced
	w      *worker
	exp    *expectations
}

// replicaKind is what the loop needs of the workload kind it runs.
type replicaKind struct {
	gvk schema.GroupVersionKind
	// get returns the workload as a ReplicaSet, and the stored object
	// (for events and status writes).
	get func(ns, name string) (*appsv1.ReplicaSet, runtime.Object, error)
	// list returns every workload of a namespace as ReplicaSets.
	list func(ns string) ([]*appsv1.ReplicaSet, error)
	// fresh reads the workload from the API server, not the cache (the
	// check before adopting).
	fresh func(ctx context.Context, ns, name string) (metav1.Object, error)
	// writeStatus stores a new status on the stored object.
	writeStatus func(ctx context.Context, obj runtime.Object, st appsv1.ReplicaSetStatus) error
}

// NewReplicaSet builds the controller.
func NewReplicaSet(cfg ReplicaSetConfig) (*ReplicaSet, error) {
	rsInf := cfg.Informers.Apps().V1().ReplicaSets()
	lister := rsInf.Lister()
	kind := replicaKind{
		gvk: appsv1.SchemeGroupVersion.WithKind("ReplicaSet"),
		get: func(ns, name string) (*appsv1.ReplicaSet, runtime.Object, error) {
			rs, err := lister.ReplicaSets(ns).Get(name)
			return rs, rs, err
		},
		list: func(ns string) ([]*appsv1.ReplicaSet, error) { return lister.ReplicaSets(ns).List(labels.Everything()) },
		fresh: func(ctx context.Context, ns, name string) (metav1.Object, error) {
			return cfg.Client.AppsV1().ReplicaSets(ns).Get(ctx, name, metav1.GetOptions{})
		},
		writeStatus: func(ctx context.Context, obj runtime.Object, st appsv1.ReplicaSetStatus) error {
			next := obj.(*appsv1.ReplicaSet).DeepCopy()
			next.Status = st
			_, err := cfg.Client.AppsV1().ReplicaSets(next.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
			return err
		},
	}
	return newReplicaController(cfg, kind, rsInf.Informer())
}

func newReplicaController(cfg ReplicaSetConfig, kind replicaKind, inf cache.SharedIndexInformer) (*ReplicaSet, error) {
	podInf := cfg.Informers.Core().V1().Pods()
	c := &ReplicaSet{cfg: cfg, kind: kind, pods: podInf.Lister(), exp: newExpectations()}
	c.w = newWorker(strings.ToLower(kind.gvk.Kind), cfg.Log, c.sync)
	if _, err := inf.AddEventHandler(c.w.handler()); err != nil {
		return nil, err
	}
	onPod := func(obj any, added, deleted bool) {
		m, ok := metaOf(obj)
		if !ok {
			return
		}
		if key, ok := controllerKey(obj, kind.gvk.Kind); ok {
			if added {
				c.exp.observeAdds(key, 1)
			}
			if deleted || m.GetDeletionTimestamp() != nil {
				c.exp.observeDelete(key, m.GetUID())
			}
			c.w.queue.Add(key)
			return
		}
		// An orphan may be adopted by a matching ReplicaSet.
		if all, err := kind.list(m.GetNamespace()); err == nil {
			for _, rs := range all {
				if sel, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector); err == nil && sel.Matches(labels.Set(m.GetLabels())) {
					c.w.queue.Add(m.GetNamespace() + "/" + rs.Name)
				}
			}
		}
	}
	if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { onPod(obj, true, false) },
		UpdateFunc: func(_, obj any) { onPod(obj, false, false) },
		DeleteFunc: func(obj any) { onPod(obj, false, true) },
	}); err != nil {
		return nil, err
	}
	c.synced = []cache.InformerSynced{inf.HasSynced, podInf.Informer().HasSynced}
	return c, nil
}

// Run works until ctx ends.
func (c *ReplicaSet) Run(ctx context.Context) error { return c.w.run(ctx, c.synced...) }

// burstReplicas bounds the pods created or deleted in one sync.
const burstReplicas = 500

func (c *ReplicaSet) sync(ctx context.Context, key string) error {
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	rs, obj, err := c.kind.get(ns, name)
	if apierrors.IsNotFound(err) {
		c.exp.forget(key)
		return nil
	}
	if err != nil {
		return err
	}
	sel, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
	if err != nil {
		return nil // invalid selectors are rejected by validation
	}
	pods, err := c.claimPods(ctx, rs, sel)
	if err != nil {
		return err
	}
	active := activePods(pods)
	var manageErr error
	if rs.DeletionTimestamp == nil && c.exp.satisfied(key) {
		manageErr = c.manage(ctx, key, rs, obj, active)
	}
	if err := c.updateStatus(ctx, key, rs, obj, active, manageErr); err != nil {
		return err
	}
	return manageErr
}

// claimPods returns the pods the ReplicaSet owns, adopting matching
// orphans and releasing owned pods that no longer match.
func (c *ReplicaSet) claimPods(ctx context.Context, rs *appsv1.ReplicaSet, sel labels.Selector) ([]*corev1.Pod, error) {
	all, err := c.pods.Pods(rs.Namespace).List(labels.Everything())
	if err != nil {
		return nil, err
	}
	m := &refManager{client: c.cfg.Client, owner: rs, gvk: c.kind.gvk, sel: sel,
		fresh: func(ctx context.Context) (metav1.Object, error) { return c.kind.fresh(ctx, rs.Namespace, rs.Name) }}
	return m.claim(ctx, all)
}

func activePods(pods []*corev1.Pod) []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range pods {
		if p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			out = append(out, p)
		}
	}
	return out
}

func (c *ReplicaSet) manage(ctx context.Context, key string, rs *appsv1.ReplicaSet, obj runtime.Object, active []*corev1.Pod) error {
	want := int32(1)
	if rs.Spec.Replicas != nil {
		want = *rs.Spec.Replicas
	}
	diff := int(want) - len(active)
	switch {
	case diff > 0:
		diff = min(diff, burstReplicas)
		c.exp.expectAdds(key, diff)
		// Slow start like upstream: 1, 2, 4, … so a broken template fails fast.
		created := 0
		for batch := 1; created < diff; batch = min(2*batch, diff-created) {
			n := min(batch, diff-created)
			var wg sync.WaitGroup
			errs := make([]error, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[i] = createPodFor(ctx, c.cfg.Client, c.cfg.Recorder, rs, obj, c.kind.gvk, &rs.Spec.Template)
				}()
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					c.exp.observeAdds(key, diff-created)
					return err
				}
			}
			created += n
		}
	case diff < 0:
		victims := append([]*corev1.Pod(nil), active...)
		sort.SliceStable(victims, func(i, j int) bool { return deleteFirst(victims[i], victims[j]) })
		victims = victims[:min(-diff, burstReplicas)]
		for _, p := range victims {
			c.exp.expectDelete(key, p.UID)
		}
		// In parallel, like upstream's manageReplicas.
		var wg sync.WaitGroup
		errs := make([]error, len(victims))
		for i, p := range victims {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := c.cfg.Client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{})
				if err != nil {
					c.exp.observeDelete(key, p.UID)
				}
				if err != nil && !apierrors.IsNotFound(err) {
					errs[i] = fmt.Errorf("delete pod %s: %w", p.Name, err)
					return
				}
				c.cfg.Recorder.Eventf(obj, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted pod: %s", p.Name)
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
	}
	return nil
}

// deleteFirst orders pods like upstream's ActivePods: unscheduled before
// scheduled, pending before running, not ready before ready, newer first.
func deleteFirst(a, b *corev1.Pod) bool {
	if (a.Spec.NodeName == "") != (b.Spec.NodeName == "") {
		return a.Spec.NodeName == ""
	}
	rank := map[corev1.PodPhase]int{corev1.PodPending: 0, corev1.PodUnknown: 1, corev1.PodRunning: 2}
	if rank[a.Status.Phase] != rank[b.Status.Phase] {
		return rank[a.Status.Phase] < rank[b.Status.Phase]
	}
	if podReady(a) != podReady(b) {
		return !podReady(a)
	}
	return a.CreationTimestamp.After(b.CreationTimestamp.Time)
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// updateStatus counts the pods; available ones have been ready for
// minReadySeconds (the key comes back when the next one will be). A failed
// create or delete shows as the ReplicaFailure condition, like upstream.
func (c *ReplicaSet) updateStatus(ctx context.Context, key string, rs *appsv1.ReplicaSet, obj runtime.Object, active []*corev1.Pod, manageErr error) error {
	st := appsv1.ReplicaSetStatus{Replicas: int32(len(active)), ObservedGeneration: rs.Generation}
	tmpl := labels.Set(rs.Spec.Template.Labels).AsSelector()
	now := time.Now()
	minReady := time.Duration(rs.Spec.MinReadySeconds) * time.Second
	var next time.Duration
	for _, p := range active {
		if tmpl.Matches(labels.Set(p.Labels)) {
			st.FullyLabeledReplicas++
		}
		since, ready := readySince(p)
		if !ready {
			continue
		}
		st.ReadyReplicas++
		if left := since.Add(minReady).Sub(now); minReady == 0 || left <= 0 {
			st.AvailableReplicas++
		} else if next == 0 || left < next {
			next = left
		}
	}
	if next > 0 {
		c.w.queue.AddAfter(key, next+10*time.Millisecond)
	}
	for _, cond := range rs.Status.Conditions {
		if cond.Type != appsv1.ReplicaSetReplicaFailure {
			st.Conditions = append(st.Conditions, cond)
		}
	}
	if manageErr != nil {
		reason := "FailedCreate"
		if derefReplicas(rs.Spec.Replicas) < int32(len(active)) {
			reason = "FailedDelete"
		}
		st.Conditions = append(st.Conditions, appsv1.ReplicaSetCondition{Type: appsv1.ReplicaSetReplicaFailure, Status: corev1.ConditionTrue,
			Reason: reason, Message: manageErr.Error(), LastTransitionTime: metav1.Now()})
	}
	if equalRSStatus(rs.Status, st) {
		return nil
	}
	err := c.kind.writeStatus(ctx, obj, st)
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// readySince is when the pod's Ready condition turned true.
func readySince(p *corev1.Pod) (time.Time, bool) {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return c.LastTransitionTime.Time, true
		}
	}
	return time.Time{}, false
}

func equalRSStatus(a, b appsv1.ReplicaSetStatus) bool {
	if a.Replicas != b.Replicas || a.FullyLabeledReplicas != b.FullyLabeledReplicas || a.ReadyReplicas != b.ReadyReplicas ||
		a.AvailableReplicas != b.AvailableReplicas || a.ObservedGeneration != b.ObservedGeneration || len(a.Conditions) != len(b.Conditions) {
		return false
	}
	for i := range a.Conditions {
		if a.Conditions[i].Type != b.Conditions[i].Type || a.Conditions[i].Status != b.Conditions[i].Status || a.Conditions[i].Message != b.Conditions[i].Message {
			return false
		}
	}
	return true
}

// expectations remember creations and deletions a controller made but has
// not yet seen through its informer, so it does not act twice. Deletions
// are tracked by pod UID and count as seen as soon as the pod is
// terminating, like upstream's UIDTrackingControllerExpectations.
type expectations struct {
	mu  sync.Mutex
	add map[string]int
	del map[string]map[types.UID]bool
}

func newExpectations() *expectations {
	return &expectations{add: map[string]int{}, del: map[string]map[types.UID]bool{}}
}

func (e *expectations) expectAdds(key string, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.add[key] += n
}

func (e *expectations) observeAdds(key string, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.add[key] = max(0, e.add[key]-n)
}

func (e *expectations) expectDelete(key string, uid types.UID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.del[key] == nil {
		e.del[key] = map[types.UID]bool{}
	}
	e.del[key][uid] = true
}

func (e *expectations) observeDelete(key string, uid types.UID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.del[key], uid)
}

func (e *expectations) satisfied(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.add[key] == 0 && len(e.del[key]) == 0
}

func (e *expectations) forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.add, key)
	delete(e.del, key)
}
