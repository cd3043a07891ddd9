package controller

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
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
// deletes pods, and reports status.
type ReplicaSet struct {
	cfg    ReplicaSetConfig
	rs     appslisters.ReplicaSetLister
	pods   corelisters.PodLister
	synced []cache.InformerSynced
	w      *worker
	exp    *expectations
}

// NewReplicaSet builds the controller.
func NewReplicaSet(cfg ReplicaSetConfig) (*ReplicaSet, error) {
	rsInf := cfg.Informers.Apps().V1().ReplicaSets()
	podInf := cfg.Informers.Core().V1().Pods()
	c := &ReplicaSet{cfg: cfg, rs: rsInf.Lister(), pods: podInf.Lister(), exp: newExpectations()}
	c.w = newWorker("replicaset", cfg.Log, c.sync)
	if _, err := rsInf.Informer().AddEventHandler(c.w.handler()); err != nil {
		return nil, err
	}
	onPod := func(obj any, added, deleted bool) {
		m, ok := metaOf(obj)
		if !ok {
			return
		}
		if key, ok := controllerKey(obj, "ReplicaSet"); ok {
			if added {
				c.exp.observe(key, 1, 0)
			}
			if deleted {
				c.exp.observe(key, 0, 1)
			}
			c.w.queue.Add(key)
			return
		}
		// An orphan may be adopted by a matching ReplicaSet.
		if all, err := c.rs.ReplicaSets(m.GetNamespace()).List(labels.Everything()); err == nil {
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
	c.synced = []cache.InformerSynced{rsInf.Informer().HasSynced, podInf.Informer().HasSynced}
	return c, nil
}

// Run works until ctx ends.
func (c *ReplicaSet) Run(ctx context.Context) error { return c.w.run(ctx, c.synced...) }

// burstReplicas bounds the pods created or deleted in one sync.
const burstReplicas = 500

func (c *ReplicaSet) sync(ctx context.Context, key string) error {
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	rs, err := c.rs.ReplicaSets(ns).Get(name)
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
	if rs.DeletionTimestamp == nil && c.exp.satisfied(key) {
		if err := c.manage(ctx, key, rs, active); err != nil {
			return err
		}
	}
	return c.updateStatus(ctx, rs, pods, active, sel)
}

// claimPods returns the pods the ReplicaSet owns, adopting matching orphans.
func (c *ReplicaSet) claimPods(ctx context.Context, rs *appsv1.ReplicaSet, sel labels.Selector) ([]*corev1.Pod, error) {
	all, err := c.pods.Pods(rs.Namespace).List(labels.Everything())
	if err != nil {
		return nil, err
	}
	var owned []*corev1.Pod
	for _, p := range all {
		ref := metav1.GetControllerOf(p)
		switch {
		case ref != nil && ref.UID == rs.UID:
			owned = append(owned, p)
		case ref == nil && sel.Matches(labels.Set(p.Labels)) && p.DeletionTimestamp == nil && rs.DeletionTimestamp == nil:
			patch := fmt.Sprintf(`{"metadata":{"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":%q,"uid":%q,"controller":true,"blockOwnerDeletion":true}],"uid":%q}}`, rs.Name, rs.UID, p.UID)
			adopted, err := c.cfg.Client.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, "application/strategic-merge-patch+json", []byte(patch), metav1.PatchOptions{})
			if err == nil {
				owned = append(owned, adopted)
			} else if !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
				return nil, fmt.Errorf("adopt pod %s: %w", p.Name, err)
			}
		}
	}
	return owned, nil
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

func (c *ReplicaSet) manage(ctx context.Context, key string, rs *appsv1.ReplicaSet, active []*corev1.Pod) error {
	want := int32(1)
	if rs.Spec.Replicas != nil {
		want = *rs.Spec.Replicas
	}
	diff := int(want) - len(active)
	switch {
	case diff > 0:
		diff = min(diff, burstReplicas)
		c.exp.expect(key, diff, 0)
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
					errs[i] = c.createPod(ctx, rs)
				}()
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					c.exp.observe(key, diff-created, 0)
					return err
				}
			}
			created += n
		}
	case diff < 0:
		victims := append([]*corev1.Pod(nil), active...)
		sort.SliceStable(victims, func(i, j int) bool { return deleteFirst(victims[i], victims[j]) })
		victims = victims[:min(-diff, burstReplicas)]
		c.exp.expect(key, 0, len(victims))
		for _, p := range victims {
			err := c.cfg.Client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				c.exp.observe(key, 0, 1)
				return fmt.Errorf("delete pod %s: %w", p.Name, err)
			}
			if apierrors.IsNotFound(err) {
				c.exp.observe(key, 0, 1)
			}
			c.cfg.Recorder.Eventf(rs, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted pod: %s", p.Name)
		}
	}
	return nil
}

func (c *ReplicaSet) createPod(ctx context.Context, rs *appsv1.ReplicaSet) error {
	return createPodFor(ctx, c.cfg.Client, c.cfg.Recorder, rs, rs, appsv1.SchemeGroupVersion.WithKind("ReplicaSet"), &rs.Spec.Template)
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

func (c *ReplicaSet) updateStatus(ctx context.Context, rs *appsv1.ReplicaSet, pods, active []*corev1.Pod, sel labels.Selector) error {
	st := appsv1.ReplicaSetStatus{Replicas: int32(len(active)), ObservedGeneration: rs.Generation, Conditions: rs.Status.Conditions}
	tmpl := labels.Set(rs.Spec.Template.Labels).AsSelector()
	for _, p := range active {
		if tmpl.Matches(labels.Set(p.Labels)) {
			st.FullyLabeledReplicas++
		}
		if podReady(p) {
			st.ReadyReplicas++
			st.AvailableReplicas++
		}
	}
	if equalRSStatus(rs.Status, st) {
		return nil
	}
	next := rs.DeepCopy()
	next.Status = st
	_, err := c.cfg.Client.AppsV1().ReplicaSets(rs.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

func equalRSStatus(a, b appsv1.ReplicaSetStatus) bool {
	return a.Replicas == b.Replicas && a.FullyLabeledReplicas == b.FullyLabeledReplicas && a.ReadyReplicas == b.ReadyReplicas &&
		a.AvailableReplicas == b.AvailableReplicas && a.ObservedGeneration == b.ObservedGeneration
}

// expectations remember creations and deletions a controller made but has
// not yet seen through its informer, so it does not act twice.
type expectations struct {
	mu  sync.Mutex
	add map[string]int
	del map[string]int
}

func newExpectations() *expectations {
	return &expectations{add: map[string]int{}, del: map[string]int{}}
}

func (e *expectations) expect(key string, add, del int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.add[key] += add
	e.del[key] += del
}

func (e *expectations) observe(key string, add, del int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.add[key] = max(0, e.add[key]-add)
	e.del[key] = max(0, e.del[key]-del)
}

func (e *expectations) satisfied(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.add[key] == 0 && e.del[key] == 0
}

func (e *expectations) forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.add, key)
	delete(e.del, key)
}
