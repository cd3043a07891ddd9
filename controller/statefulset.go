package controller

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

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

// The labels a StatefulSet puts on its pods.
const (
	labelPodName  = "statefulset.kubernetes.io/pod-name"
	labelPodIndex = "apps.kubernetes.io/pod-index"
)

// StatefulSetConfig builds the StatefulSet controller.
type StatefulSetConfig struct {
	Client    kubernetes.Interface
	Informers informers.SharedInformerFactory
	Recorder  record.EventRecorder
	Log       *slog.Logger
}

// StatefulSet runs pods with stable names (<set>-<ordinal>), stable DNS
// names through the headless service (hostname and subdomain) and one
// claim per volumeClaimTemplate and ordinal that outlives the pod. With
// OrderedReady, ordinal i is made only once 0..i-1 are Running and Ready
// and pods go highest first; Parallel makes and removes them all at once.
// Template changes are ControllerRevisions; RollingUpdate replaces pods
// from the highest ordinal down to the partition, OnDelete waits for the
// user.
type StatefulSet struct {
	cfg    StatefulSetConfig
	sets   appslisters.StatefulSetLister
	pods   corelisters.PodLister
	claims corelisters.PersistentVolumeClaimLister
	revs   appslisters.ControllerRevisionLister
	hist   *history
	synced []cache.InformerSynced
	w      *worker
}

var statefulSetKind = appsv1.SchemeGroupVersion.WithKind("StatefulSet")

// NewStatefulSet builds the controller.
func NewStatefulSet(cfg StatefulSetConfig) (*StatefulSet, error) {
	setInf := cfg.Informers.Apps().V1().StatefulSets()
	podInf := cfg.Informers.Core().V1().Pods()
	pvcInf := cfg.Informers.Core().V1().PersistentVolumeClaims()
	revInf := cfg.Informers.Apps().V1().ControllerRevisions()
	c := &StatefulSet{cfg: cfg, sets: setInf.Lister(), pods: podInf.Lister(), claims: pvcInf.Lister(), revs: revInf.Lister(),
		hist: &history{client: cfg.Client, gvk: statefulSetKind}}
	c.w = newWorker("statefulset", cfg.Log, c.sync)
	if _, err := setInf.Informer().AddEventHandler(c.w.handler()); err != nil {
		return nil, err
	}
	owned := func(obj any) {
		if key, ok := controllerKey(obj, "StatefulSet"); ok {
			c.w.queue.Add(key)
		}
	}
	// An orphan pod may be adopted by the sets whose selector matches it.
	onPod := func(obj any) {
		owned(obj)
		m, ok := metaOf(obj)
		if !ok || metav1.GetControllerOfNoCopy(m) != nil {
			return
		}
		sets, _ := c.sets.StatefulSets(m.GetNamespace()).List(labels.Everything())
		for _, set := range sets {
			if sel, err := metav1.LabelSelectorAsSelector(set.Spec.Selector); err == nil && !sel.Empty() && sel.Matches(labels.Set(m.GetLabels())) {
				c.w.queue.Add(set.Namespace + "/" + set.Name)
			}
		}
	}
	if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: onPod, UpdateFunc: func(_, o any) { onPod(o) }, DeleteFunc: owned}); err != nil {
		return nil, err
	}
	for _, inf := range []cache.SharedIndexInformer{revInf.Informer()} {
		if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: owned, UpdateFunc: func(_, o any) { owned(o) }, DeleteFunc: owned}); err != nil {
			return nil, err
		}
	}
	c.synced = []cache.InformerSynced{setInf.Informer().HasSynced, podInf.Informer().HasSynced, pvcInf.Informer().HasSynced, revInf.Informer().HasSynced}
	return c, nil
}

// Run works until ctx ends.
func (c *StatefulSet) Run(ctx context.Context) error { return c.w.run(ctx, c.synced...) }

// podOrdinal is the ordinal in a pod's name <set>-<ordinal>.
func podOrdinal(set *appsv1.StatefulSet, p *corev1.Pod) (int, bool) {
	rest, ok := strings.CutPrefix(p.Name, set.Name+"-")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	return n, err == nil && n >= 0
}

func runningAndReady(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodRunning && podReady(p)
}

// podAvailable is upstream's IsPodAvailable: Ready for minReady by now
// (with minReady 0, Ready is enough).
func podAvailable(p *corev1.Pod, minReady time.Duration, now time.Time) bool {
	since, ok := readySince(p)
	return ok && (minReady == 0 || !since.Add(minReady).After(now))
}

// setPodUnavailable is upstream's isUnavailable: not Running and Ready,
// terminating, or Ready for less than minReadySeconds.
func setPodUnavailable(set *appsv1.StatefulSet, p *corev1.Pod, now time.Time) bool {
	return !runningAndReady(p) || p.DeletionTimestamp != nil || !podAvailable(p, time.Duration(set.Spec.MinReadySeconds)*time.Second, now)
}

func podFinishedPhase(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// claimName is the claim of template tmpl for a pod.
func claimName(tmpl, set string, ordinal int) string {
	return fmt.Sprintf("%s-%s-%d", tmpl, set, ordinal)
}

// setPlan is what one sync of a set decides, computed from the listers
// without side effects (the unit of the ordering tests).
type setPlan struct {
	create []int         // ordinals to create, in order
	remove []*corev1.Pod // pods to delete, in order
	wait   string        // why nothing more happens now ("" when nothing waits)
	pods   map[int]*corev1.Pod
}

// planSet is the monotonic (OrderedReady) or burst (Parallel) step of
// upstream's StatefulSet control: failed pods are replaced, missing
// ordinals created, condemned ordinals (≥ replicas) removed highest first,
// then one outdated pod per sync replaced from the top down to the
// partition. OrderedReady also waits for each pod to be available
// (Ready for minReadySeconds at now), like upstream.
func planSet(set *appsv1.StatefulSet, pods []*corev1.Pod, updateRevision string, now time.Time) setPlan {
	replicas := int(derefReplicas(set.Spec.Replicas))
	start := 0
	if set.Spec.Ordinals != nil {
		start = int(set.Spec.Ordinals.Start)
	}
	ordered := set.Spec.PodManagementPolicy != appsv1.ParallelPodManagement
	plan := setPlan{pods: map[int]*corev1.Pod{}}
	var condemned []*corev1.Pod
	for _, p := range pods {
		n, ok := podOrdinal(set, p)
		if !ok {
			continue
		}
		if n >= start && n < start+replicas {
			plan.pods[n] = p
		} else {
			condemned = append(condemned, p)
		}
	}
	sort.Slice(condemned, func(i, j int) bool {
		a, _ := podOrdinal(set, condemned[i])
		b, _ := podOrdinal(set, condemned[j])
		return a > b
	})
	// Replicas in order.
	for n := start; n < start+replicas; n++ {
		p := plan.pods[n]
		switch {
		case p == nil:
			plan.create = append(plan.create, n)
			if ordered {
				plan.wait = fmt.Sprintf("pod %s-%d is being created", set.Name, n)
				return plan
			}
			continue
		case p.DeletionTimestamp != nil:
			if ordered {
				plan.wait = fmt.Sprintf("pod %s is terminating", p.Name)
				return plan
			}
			continue
		case podFinishedPhase(p):
			plan.remove = append(plan.remove, p)
			if ordered {
				plan.wait = fmt.Sprintf("pod %s failed and is being recreated", p.Name)
				return plan
			}
			continue
		case !runningAndReady(p) && ordered:
			plan.wait = fmt.Sprintf("pod %s is not Running and Ready", p.Name)
			return plan
		case ordered && !podAvailable(p, time.Duration(set.Spec.MinReadySeconds)*time.Second, now):
			plan.wait = fmt.Sprintf("pod %s is not Available", p.Name)
			return plan
		}
	}
	if !ordered && len(plan.create)+len(plan.remove) > 0 {
		plan.wait = "pods are being created"
	}
	// Condemned, highest first.
	for _, p := range condemned {
		if p.DeletionTimestamp != nil {
			if ordered {
				plan.wait = fmt.Sprintf("pod %s is terminating", p.Name)
				return plan
			}
			continue
		}
		if ordered && plan.wait != "" {
			return plan
		}
		plan.remove = append(plan.remove, p)
		if ordered {
			plan.wait = fmt.Sprintf("pod %s is being deleted", p.Name)
			return plan
		}
	}
	if plan.wait != "" || len(plan.remove) > 0 || set.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType {
		return plan
	}
	// Rolling update, upstream's order: from the highest ordinal down to
	// the partition, delete the first outdated pod, or wait for the first
	// unavailable updated one.
	partition := 0
	if ru := set.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil {
		partition = int(*ru.Partition)
	}
	for n := start + replicas - 1; n >= start+partition; n-- {
		p := plan.pods[n]
		if p == nil {
			continue
		}
		if p.Labels[appsv1.StatefulSetRevisionLabel] != updateRevision && p.DeletionTimestamp == nil {
			plan.remove = append(plan.remove, p)
			plan.wait = fmt.Sprintf("pod %s is being updated", p.Name)
			return plan
		}
		if setPodUnavailable(set, p, now) {
			plan.wait = fmt.Sprintf("waiting for pod %s to be available after the update", p.Name)
			return plan
		}
	}
	return plan
}

// revisionFor is the revision a new pod of ordinal n gets: below the
// partition of a RollingUpdate it keeps the current one.
func revisionFor(set *appsv1.StatefulSet, n int, current, update string) string {
	if set.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType {
		return update
	}
	start := 0
	if set.Spec.Ordinals != nil {
		start = int(set.Spec.Ordinals.Start)
	}
	if ru := set.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil && n-start < int(*ru.Partition) {
		return current
	}
	return update
}

func (c *StatefulSet) sync(ctx context.Context, key string) error {
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	set, err := c.sets.StatefulSets(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil || set.DeletionTimestamp != nil {
		return err
	}
	all, err := c.pods.Pods(ns).List(labels.Everything())
	if err != nil {
		return err
	}
	sel, err := metav1.LabelSelectorAsSelector(set.Spec.Selector)
	if err != nil {
		return nil // invalid selectors are rejected by validation
	}
	claimer := &refManager{client: c.cfg.Client, owner: set, gvk: statefulSetKind, sel: sel,
		filter: func(p *corev1.Pod) bool { _, ok := podOrdinal(set, p); return ok },
		fresh: func(ctx context.Context) (metav1.Object, error) {
			return c.cfg.Client.AppsV1().StatefulSets(set.Namespace).Get(ctx, set.Name, metav1.GetOptions{})
		}}
	pods, err := claimer.claim(ctx, all)
	if err != nil {
		return fmt.Errorf("statefulset %s: claim pods: %w", key, err)
	}
	if err := claimer.adoptRevisions(ctx, c.revs); err != nil {
		return fmt.Errorf("statefulset %s: %w", key, err)
	}
	revs, err := ownedRevisions(c.revs, set)
	if err != nil {
		return err
	}
	data, err := templatePatch(&set.Spec.Template)
	if err != nil {
		return fmt.Errorf("statefulset %s: encode template: %w", key, err)
	}
	hash := revisionHash(data, set.Status.CollisionCount)
	upd, collided, err := c.hist.current(ctx, revs, revisionSpec{owner: set, labels: set.Spec.Template.Labels, data: data, hash: hash,
		name: set.Name + "-" + hash, annotations: set.Annotations})
	if err != nil {
		return fmt.Errorf("statefulset %s: %w", key, err)
	}
	if collided {
		next := set.DeepCopy()
		cc := int32(0)
		if next.Status.CollisionCount != nil {
			cc = *next.Status.CollisionCount
		}
		cc++
		next.Status.CollisionCount = &cc
		if _, err := c.cfg.Client.AppsV1().StatefulSets(ns).UpdateStatus(ctx, next, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("statefulset %s: bump collision count: %w", key, err)
		}
		return nil
	}
	byName := map[string]*appsv1.ControllerRevision{upd.Name: upd}
	for _, cr := range revs {
		byName[cr.Name] = cr
	}
	cur := upd
	if cr, ok := byName[set.Status.CurrentRevision]; ok {
		cur = cr
	}
	plan := planSet(set, pods, upd.Name, time.Now())
	if err := c.apply(ctx, set, plan, cur, upd); err != nil {
		return err
	}
	if err := c.updateStatus(ctx, set, pods, cur.Name, upd.Name); err != nil {
		return err
	}
	live := map[string]bool{cur.Name: true, upd.Name: true}
	for _, p := range pods {
		live[p.Labels[appsv1.StatefulSetRevisionLabel]] = true
	}
	return c.hist.trim(ctx, revs, live, set.Spec.RevisionHistoryLimit)
}

// apply carries out a plan: claims before pods, deletions with the
// upstream events, and the claims of scaled-down ordinals when the
// retention policy says Delete.
func (c *StatefulSet) apply(ctx context.Context, set *appsv1.StatefulSet, plan setPlan, cur, upd *appsv1.ControllerRevision) error {
	for _, n := range plan.create {
		rev := cur
		if revisionFor(set, n, cur.Name, upd.Name) == upd.Name {
			rev = upd
		}
		tmpl, err := revisionTemplate(rev)
		if err != nil {
			return err
		}
		if err := c.createClaims(ctx, set, n); err != nil {
			return err
		}
		if err := c.createPod(ctx, set, n, tmpl, rev.Name); err != nil {
			return err
		}
	}
	ownDelete := set.Spec.PersistentVolumeClaimRetentionPolicy != nil &&
		set.Spec.PersistentVolumeClaimRetentionPolicy.WhenDeleted == appsv1.DeletePersistentVolumeClaimRetentionPolicyType
	for n := range plan.pods {
		for _, t := range set.Spec.VolumeClaimTemplates {
			if pvc, err := c.claims.PersistentVolumeClaims(set.Namespace).Get(claimName(t.Name, set.Name, n)); err == nil && pvc.DeletionTimestamp == nil {
				if err := c.syncClaimOwner(ctx, set, pvc, ownDelete); err != nil {
					return err
				}
			}
		}
	}
	replicas := int(derefReplicas(set.Spec.Replicas))
	scaleDelete := set.Spec.PersistentVolumeClaimRetentionPolicy != nil &&
		set.Spec.PersistentVolumeClaimRetentionPolicy.WhenScaled == appsv1.DeletePersistentVolumeClaimRetentionPolicyType
	for _, p := range plan.remove {
		if err := c.cfg.Client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &p.UID}}); err != nil {
			if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
				continue
			}
			c.cfg.Recorder.Eventf(set, corev1.EventTypeWarning, "FailedDelete", "delete Pod %s in StatefulSet %s failed error: %v", p.Name, set.Name, err)
			return fmt.Errorf("statefulset %s/%s: delete pod %s: %w", set.Namespace, set.Name, p.Name, err)
		}
		c.cfg.Recorder.Eventf(set, corev1.EventTypeNormal, "SuccessfulDelete", "delete Pod %s in StatefulSet %s successful", p.Name, set.Name)
		if n, _ := podOrdinal(set, p); scaleDelete && n >= replicas {
			for _, t := range set.Spec.VolumeClaimTemplates {
				name := claimName(t.Name, set.Name, n)
				if err := c.cfg.Client.CoreV1().PersistentVolumeClaims(set.Namespace).Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
					return fmt.Errorf("statefulset %s/%s: delete claim %s: %w", set.Namespace, set.Name, name, err)
				}
			}
		}
	}
	return nil
}

// createClaims makes the ordinal's claims that are missing; with the
// WhenDeleted=Delete retention policy they are owned by the set, so the
// garbage collector removes them with it.
func (c *StatefulSet) createClaims(ctx context.Context, set *appsv1.StatefulSet, n int) error {
	podName := fmt.Sprintf("%s-%d", set.Name, n)
	ownDelete := set.Spec.PersistentVolumeClaimRetentionPolicy != nil &&
		set.Spec.PersistentVolumeClaimRetentionPolicy.WhenDeleted == appsv1.DeletePersistentVolumeClaimRetentionPolicyType
	for _, t := range set.Spec.VolumeClaimTemplates {
		name := claimName(t.Name, set.Name, n)
		if existing, err := c.claims.PersistentVolumeClaims(set.Namespace).Get(name); err == nil {
			if existing.DeletionTimestamp != nil {
				return fmt.Errorf("statefulset %s/%s: claim %s is being deleted", set.Namespace, set.Name, name)
			}
			if err := c.syncClaimOwner(ctx, set, existing, ownDelete); err != nil {
				return err
			}
			continue
		}
		pvc := &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: set.Namespace, Labels: copyMap(t.Labels), Annotations: copyMap(t.Annotations)},
			Spec:       *t.Spec.DeepCopy(),
		}
		if pvc.Labels == nil {
			pvc.Labels = map[string]string{}
		}
		if set.Spec.Selector != nil {
			for k, v := range set.Spec.Selector.MatchLabels {
				pvc.Labels[k] = v
			}
		}
		if ownDelete {
			f := false
			pvc.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "StatefulSet", Name: set.Name, UID: set.UID, BlockOwnerDeletion: &f}}
		}
		_, err := c.cfg.Client.CoreV1().PersistentVolumeClaims(set.Namespace).Create(ctx, pvc, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			continue
		}
		if err != nil {
			c.cfg.Recorder.Eventf(set, corev1.EventTypeWarning, "FailedCreate", "create Claim %s for Pod %s in StatefulSet %s failed error: %v", name, podName, set.Name, err)
			return fmt.Errorf("statefulset %s/%s: create claim %s: %w", set.Namespace, set.Name, name, err)
		}
		c.cfg.Recorder.Eventf(set, corev1.EventTypeNormal, "SuccessfulCreate", "create Claim %s Pod %s in StatefulSet %s success", name, podName, set.Name)
	}
	return nil
}

// syncClaimOwner makes the set own an existing claim exactly when the
// whenDeleted policy is Delete (the policy may change after creation).
func (c *StatefulSet) syncClaimOwner(ctx context.Context, set *appsv1.StatefulSet, pvc *corev1.PersistentVolumeClaim, own bool) error {
	var refs []metav1.OwnerReference
	has := false
	for _, r := range pvc.OwnerReferences {
		if r.UID == set.UID {
			has = true
			continue
		}
		refs = append(refs, r)
	}
	if has == own {
		return nil
	}
	if own {
		f := false
		refs = append(refs, metav1.OwnerReference{APIVersion: "apps/v1", Kind: "StatefulSet", Name: set.Name, UID: set.UID, BlockOwnerDeletion: &f})
	}
	next := pvc.DeepCopy()
	next.OwnerReferences = refs
	if _, err := c.cfg.Client.CoreV1().PersistentVolumeClaims(pvc.Namespace).Update(ctx, next, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("statefulset %s/%s: set the owner of claim %s: %w", set.Namespace, set.Name, pvc.Name, err)
	}
	return nil
}

// createPod makes ordinal n from tmpl: its name, DNS identity, labels and
// claims.
func (c *StatefulSet) createPod(ctx context.Context, set *appsv1.StatefulSet, n int, tmpl *corev1.PodTemplateSpec, revision string) error {
	name := fmt.Sprintf("%s-%d", set.Name, n)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: set.Namespace, Labels: copyMap(tmpl.Labels), Annotations: copyMap(tmpl.Annotations),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(set, statefulSetKind)}},
		Spec: *tmpl.Spec.DeepCopy(),
	}
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Labels[labelPodName] = name
	pod.Labels[labelPodIndex] = strconv.Itoa(n)
	pod.Labels[appsv1.StatefulSetRevisionLabel] = revision
	pod.Spec.Hostname = name
	pod.Spec.Subdomain = set.Spec.ServiceName
	for _, t := range set.Spec.VolumeClaimTemplates {
		src := corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claimName(t.Name, set.Name, n)}}
		found := false
		for i := range pod.Spec.Volumes {
			if pod.Spec.Volumes[i].Name == t.Name {
				pod.Spec.Volumes[i].VolumeSource, found = src, true
			}
		}
		if !found {
			pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: t.Name, VolumeSource: src})
		}
	}
	_, err := c.cfg.Client.CoreV1().Pods(set.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil // the cache has not seen it yet
	}
	if err != nil {
		c.cfg.Recorder.Eventf(set, corev1.EventTypeWarning, "FailedCreate", "create Pod %s in StatefulSet %s failed error: %v", name, set.Name, err)
		return fmt.Errorf("statefulset %s/%s: create pod %s: %w", set.Namespace, set.Name, name, err)
	}
	c.cfg.Recorder.Eventf(set, corev1.EventTypeNormal, "SuccessfulCreate", "create Pod %s in StatefulSet %s successful", name, set.Name)
	return nil
}

// setStatus counts the pods like upstream's computeReplicaStatus: pods
// with an ordinal that the kubelet has seen (a phase), Running and Ready
// ones, those Ready for minReadySeconds, and the non-terminating ones per
// revision. A RollingUpdate whose every pod is updated and Ready makes the
// update revision current (completeRollingUpdate); OnDelete never does.
// Like upstream the status is built afresh: the controller sets no
// conditions.
func setStatus(set *appsv1.StatefulSet, pods []*corev1.Pod, current, update string, now time.Time) appsv1.StatefulSetStatus {
	cc := int32(0)
	if set.Status.CollisionCount != nil {
		cc = *set.Status.CollisionCount
	}
	st := appsv1.StatefulSetStatus{ObservedGeneration: set.Generation, CollisionCount: &cc,
		CurrentRevision: current, UpdateRevision: update}
	minReady := time.Duration(set.Spec.MinReadySeconds) * time.Second
	for _, p := range pods {
		if _, ok := podOrdinal(set, p); !ok {
			continue
		}
		created := p.Status.Phase != ""
		if created {
			st.Replicas++
		}
		if runningAndReady(p) {
			st.ReadyReplicas++
			if podAvailable(p, minReady, now) {
				st.AvailableReplicas++
			}
		}
		if !created || p.DeletionTimestamp != nil {
			continue
		}
		if rev := p.Labels[appsv1.StatefulSetRevisionLabel]; rev == current {
			st.CurrentReplicas++
		}
		if rev := p.Labels[appsv1.StatefulSetRevisionLabel]; rev == update {
			st.UpdatedReplicas++
		}
	}
	if set.Spec.UpdateStrategy.Type == appsv1.RollingUpdateStatefulSetStrategyType &&
		st.UpdatedReplicas == st.Replicas && st.ReadyReplicas == st.Replicas {
		st.CurrentReplicas, st.CurrentRevision = st.UpdatedReplicas, st.UpdateRevision
	}
	return st
}

// inconsistentStatus is upstream's test for writing the status: a newer
// generation or a changed count or revision.
func inconsistentStatus(set *appsv1.StatefulSet, st appsv1.StatefulSetStatus) bool {
	o := set.Status
	return st.ObservedGeneration > o.ObservedGeneration || st.Replicas != o.Replicas || st.CurrentReplicas != o.CurrentReplicas ||
		st.ReadyReplicas != o.ReadyReplicas || st.UpdatedReplicas != o.UpdatedReplicas || st.CurrentRevision != o.CurrentRevision ||
		st.AvailableReplicas != o.AvailableReplicas || st.UpdateRevision != o.UpdateRevision
}

func (c *StatefulSet) updateStatus(ctx context.Context, set *appsv1.StatefulSet, pods []*corev1.Pod, current, update string) error {
	st := setStatus(set, pods, current, update, time.Now())
	if set.Spec.MinReadySeconds > 0 && st.AvailableReplicas != derefReplicas(set.Spec.Replicas) {
		c.w.queue.AddAfter(set.Namespace+"/"+set.Name, time.Duration(set.Spec.MinReadySeconds)*time.Second)
	}
	if !inconsistentStatus(set, st) {
		return nil
	}
	next := set.DeepCopy()
	next.Status = st
	if _, err := c.cfg.Client.AppsV1().StatefulSets(set.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		if apierrors.IsConflict(err) {
			return err
		}
		return fmt.Errorf("update statefulset %s/%s status: %w", set.Namespace, set.Name, err)
	}
	return nil
}
