package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"slices"
	"sort"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
)

// Annotations and labels of the Deployment controller (same keys as upstream).
const (
	revisionAnnotation        = "deployment.kubernetes.io/revision"
	desiredReplicasAnnotation = "deployment.kubernetes.io/desired-replicas"
	maxReplicasAnnotation     = "deployment.kubernetes.io/max-replicas"
	podTemplateHashLabel      = appsv1.DefaultDeploymentUniqueLabelKey
)

var deploymentKind = appsv1.SchemeGroupVersion.WithKind("Deployment")

// DeploymentConfig builds the Deployment controller.
type DeploymentConfig struct {
	Client    kubernetes.Interface
	Informers informers.SharedInformerFactory
	Recorder  record.EventRecorder
	Log       *slog.Logger
}

// Deployment rolls a Deployment's pod template out through ReplicaSets:
// RollingUpdate with maxSurge/maxUnavailable or Recreate, revision history
// for `kubectl rollout history/undo`, and the status kubectl waits on.
type Deployment struct {
	cfg    DeploymentConfig
	d      appslisters.DeploymentLister
	rs     appslisters.ReplicaSetLister
	pods   corelisters.PodLister
	synced []cache.InformerSynced
	w      *worker
}

// NewDeployment builds the controller.
func NewDeployment(cfg DeploymentConfig) (*Deployment, error) {
	dInf := cfg.Informers.Apps().V1().Deployments()
	rsInf := cfg.Informers.Apps().V1().ReplicaSets()
	podInf := cfg.Informers.Core().V1().Pods()
	c := &Deployment{cfg: cfg, d: dInf.Lister(), rs: rsInf.Lister(), pods: podInf.Lister()}
	c.w = newWorker("deployment", cfg.Log, c.sync)
	if _, err := dInf.Informer().AddEventHandler(c.w.handler()); err != nil {
		return nil, err
	}
	// Like upstream's add/update/deleteReplicaSet: the owner is queued, an
	// owner the update took away too, and an orphan queues the matching
	// deployments.
	onRS := func(obj any) {
		if key, ok := controllerKey(obj, "Deployment"); ok {
			c.w.queue.Add(key)
		} else if m, ok := metaOf(obj); ok && metav1.GetControllerOf(m) == nil {
			c.enqueueMatching(m)
		}
	}
	onRSUpdate := func(prev, cur any) {
		if key, ok := controllerKey(prev, "Deployment"); ok {
			if curKey, _ := controllerKey(cur, "Deployment"); curKey != key {
				c.w.queue.Add(key)
			}
		}
		onRS(cur)
	}
	onRSDelete := func(obj any) {
		if key, ok := controllerKey(obj, "Deployment"); ok {
			c.w.queue.Add(key)
		}
	}
	if _, err := rsInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: onRS, UpdateFunc: onRSUpdate, DeleteFunc: onRSDelete}); err != nil {
		return nil, err
	}
	// Recreate waits for the old pods to be gone, not only terminating.
	onPodGone := func(obj any) {
		m, ok := metaOf(obj)
		if !ok {
			return
		}
		ref := metav1.GetControllerOf(m)
		if ref == nil || ref.Kind != "ReplicaSet" {
			return
		}
		if rs, err := c.rs.ReplicaSets(m.GetNamespace()).Get(ref.Name); err == nil {
			if key, ok := controllerKey(rs, "Deployment"); ok {
				c.w.queue.Add(key)
			}
		}
	}
	if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{DeleteFunc: onPodGone}); err != nil {
		return nil, err
	}
	c.synced = []cache.InformerSynced{dInf.Informer().HasSynced, rsInf.Informer().HasSynced, podInf.Informer().HasSynced}
	return c, nil
}

// Run works until ctx ends.
func (c *Deployment) Run(ctx context.Context) error { return c.w.run(ctx, c.synced...) }

// templateHash names a pod template: FNV-32a of its JSON, encoded with
// the same safe alphabet as upstream's pod-template-hash.
func templateHash(t *corev1.PodTemplateSpec, collisions *int32) string {
	h := fnv.New32a()
	b, _ := json.Marshal(t)
	h.Write(b)
	if collisions != nil {
		fmt.Fprint(h, *collisions)
	}
	return rand.SafeEncodeString(fmt.Sprint(h.Sum32()))
}

func (c *Deployment) sync(ctx context.Context, key string) error {
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	d, err := c.d.Deployments(ns).Get(name)
	if apierrors.IsNotFound(err) || (err == nil && d.DeletionTimestamp != nil) {
		return nil
	}
	if err != nil {
		return err
	}
	if d.Spec.Selector == nil || (len(d.Spec.Selector.MatchLabels) == 0 && len(d.Spec.Selector.MatchExpressions) == 0) {
		// Upstream refuses to select every ReplicaSet of the namespace.
		c.cfg.Recorder.Eventf(d, corev1.EventTypeWarning, "SelectingAll", "This deployment is selecting all pods. A non-empty selector is required.")
		return nil
	}
	owned, err := c.claimReplicaSets(ctx, d)
	if err != nil {
		return err
	}
	hash := templateHash(&d.Spec.Template, d.Status.CollisionCount)
	var newRS *appsv1.ReplicaSet
	var old []*appsv1.ReplicaSet
	for _, rs := range owned {
		if rs.Labels[podTemplateHashLabel] == hash {
			newRS = rs
		} else {
			old = append(old, rs)
		}
	}
	maxRev := 0
	for _, rs := range old {
		if r, _ := strconv.Atoi(rs.Annotations[revisionAnnotation]); r > maxRev {
			maxRev = r
		}
	}
	replicas := derefReplicas(d.Spec.Replicas)
	if d.Spec.Paused || isScalingEvent(d, newRS, old) {
		// Upstream's sync: a paused deployment (and one whose replicas
		// changed) is only scaled, proportionally across its ReplicaSets.
		if err := c.scaleReplicaSets(ctx, d, newRS, old); err != nil {
			return err
		}
		if d.Spec.Paused {
			if err := c.cleanup(ctx, d, old); err != nil {
				return err
			}
		}
		return c.syncStatus(ctx, d, newRS, old, false)
	}
	created := false
	if newRS == nil {
		if newRS, err = c.createRS(ctx, d, hash, maxRev+1, old); err != nil {
			return err
		}
		created = true
	} else if r, _ := strconv.Atoi(newRS.Annotations[revisionAnnotation]); r <= maxRev {
		// A rollback to an older template: it becomes the newest revision.
		if newRS, err = c.annotate(ctx, newRS, d, maxRev+1); err != nil {
			return err
		}
	} else if !annotationsCopied(d, newRS) {
		// Annotations set on the deployment after the rollout began
		// (kubernetes.io/change-cause) follow it to its ReplicaSet.
		if newRS, err = c.annotate(ctx, newRS, d, r); err != nil {
			return err
		}
	}
	switch d.Spec.Strategy.Type {
	case appsv1.RecreateDeploymentStrategyType:
		for _, rs := range old {
			if derefReplicas(rs.Spec.Replicas) > 0 {
				if err := c.scale(ctx, rs, d, 0); err != nil {
					return err
				}
			}
		}
		running, err := c.oldPodsRunning(old)
		if err != nil {
			return err
		}
		if !running {
			if err := c.scale(ctx, newRS, d, replicas); err != nil {
				return err
			}
		}
	default:
		if err := c.rollingUpdate(ctx, d, newRS, old, replicas); err != nil {
			return err
		}
	}
	if err := c.cleanup(ctx, d, old); err != nil {
		return err
	}
	return c.syncStatus(ctx, d, newRS, old, created)
}

// claimReplicaSets is upstream's getReplicaSetsForDeployment: the
// namespace's ReplicaSets the deployment controls, after adopting
// matching orphans (a deployment deleted with --cascade=orphan and made
// again takes its ReplicaSets back instead of starting a new rollout) and
// releasing owned ones relabelled out of its selector.
func (c *Deployment) claimReplicaSets(ctx context.Context, d *appsv1.Deployment) ([]*appsv1.ReplicaSet, error) {
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("deployment %s/%s selector: %w", d.Namespace, d.Name, err)
	}
	all, err := c.rs.ReplicaSets(d.Namespace).List(labels.Everything())
	if err != nil {
		return nil, err
	}
	m := &refManager{client: c.cfg.Client, owner: d, gvk: deploymentKind, sel: sel,
		fresh: func(ctx context.Context) (metav1.Object, error) {
			return c.cfg.Client.AppsV1().Deployments(d.Namespace).Get(ctx, d.Name, metav1.GetOptions{})
		}}
	return m.claimReplicaSets(ctx, all)
}

// enqueueMatching queues the deployments whose selector matches an orphan
// ReplicaSet's labels: one of them may adopt it.
func (c *Deployment) enqueueMatching(rs metav1.Object) {
	all, err := c.d.Deployments(rs.GetNamespace()).List(labels.Everything())
	if err != nil {
		return
	}
	for _, d := range all {
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(rs.GetLabels())) {
			continue
		}
		c.w.queue.Add(d.Namespace + "/" + d.Name)
	}
}

// oldPodsRunning reports whether any pod of the old ReplicaSets still
// exists and has not finished, terminating ones included (upstream's
// Recreate waits for them).
func (c *Deployment) oldPodsRunning(old []*appsv1.ReplicaSet) (bool, error) {
	for _, rs := range old {
		if rs.Status.Replicas > 0 {
			return true, nil
		}
		sel, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
		if err != nil {
			continue
		}
		pods, err := c.pods.Pods(rs.Namespace).List(sel)
		if err != nil {
			return false, err
		}
		for _, p := range pods {
			if ref := metav1.GetControllerOf(p); ref != nil && ref.UID == rs.UID && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
				return true, nil
			}
		}
	}
	return false, nil
}

func derefReplicas(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

// surgeAndUnavailable resolves maxSurge (rounded up) and maxUnavailable
// (rounded down) against replicas, like upstream's ResolveFenceposts; a
// Recreate deployment has neither.
func surgeAndUnavailable(d *appsv1.Deployment, replicas int32) (int32, int32) {
	if d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		return 0, 0
	}
	ru := d.Spec.Strategy.RollingUpdate
	surge, unavail := intstr.FromString("25%"), intstr.FromString("25%")
	if ru != nil && ru.MaxSurge != nil {
		surge = *ru.MaxSurge
	}
	if ru != nil && ru.MaxUnavailable != nil {
		unavail = *ru.MaxUnavailable
	}
	s, _ := intstr.GetScaledValueFromIntOrPercent(&surge, int(replicas), true)
	u, _ := intstr.GetScaledValueFromIntOrPercent(&unavail, int(replicas), false)
	if s == 0 && u == 0 {
		u = 1
	}
	return int32(s), int32(u)
}

func (c *Deployment) rollingUpdate(ctx context.Context, d *appsv1.Deployment, newRS *appsv1.ReplicaSet, old []*appsv1.ReplicaSet, replicas int32) error {
	plan := planRollingUpdate(d, newRS, old, replicas)
	if err := c.scale(ctx, newRS, d, plan.newReplicas); err != nil {
		return err
	}
	for _, rs := range old {
		if to, ok := plan.old[rs.Name]; ok {
			if err := c.scale(ctx, rs, d, to); err != nil {
				return err
			}
		}
	}
	return nil
}

// rollingPlan is one step of a rolling update: the new ReplicaSet's
// replicas and the old ReplicaSets to scale down (by name).
type rollingPlan struct {
	newReplicas int32
	old         map[string]int32
}

// planRollingUpdate is upstream's rolloutRolling arithmetic for one sync:
// reconcileNewReplicaSet (grow the new ReplicaSet within maxSurge, or
// shrink it to replicas), then reconcileOldReplicaSets — at most
// allPods-minAvailable-newUnavailable old replicas go, unhealthy ones of
// the oldest ReplicaSets first (cleanupUnhealthyReplicas), then healthy
// ones while more than minAvailable pods are available
// (scaleDownOldReplicaSetsForRollingUpdate), oldest ReplicaSets first.
func planRollingUpdate(d *appsv1.Deployment, newRS *appsv1.ReplicaSet, old []*appsv1.ReplicaSet, replicas int32) rollingPlan {
	surge, unavail := surgeAndUnavailable(d, replicas)
	plan := rollingPlan{newReplicas: derefReplicas(newRS.Spec.Replicas), old: map[string]int32{}}
	allPods := plan.newReplicas
	for _, rs := range old {
		allPods += derefReplicas(rs.Spec.Replicas)
	}
	switch {
	case plan.newReplicas > replicas:
		allPods -= plan.newReplicas - replicas
		plan.newReplicas = replicas
	case plan.newReplicas < replicas && allPods < replicas+surge:
		grow := min(replicas+surge-allPods, replicas-plan.newReplicas)
		plan.newReplicas += grow
		allPods += grow
	}
	sorted := append([]*appsv1.ReplicaSet(nil), old...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if !sorted[i].CreationTimestamp.Equal(&sorted[j].CreationTimestamp) {
			return sorted[i].CreationTimestamp.Before(&sorted[j].CreationTimestamp)
		}
		return sorted[i].Name < sorted[j].Name
	})
	size := func(rs *appsv1.ReplicaSet) int32 {
		if n, ok := plan.old[rs.Name]; ok {
			return n
		}
		return derefReplicas(rs.Spec.Replicas)
	}
	minAvailable := replicas - unavail
	newUnavailable := plan.newReplicas - newRS.Status.AvailableReplicas
	maxScaledDown := allPods - minAvailable - newUnavailable
	if maxScaledDown <= 0 {
		return plan
	}
	// Unhealthy old replicas first: they would otherwise block the rollout.
	cleaned := int32(0)
	for _, rs := range sorted {
		cur := size(rs)
		if cleaned >= maxScaledDown || cur == 0 || cur == rs.Status.AvailableReplicas {
			continue
		}
		n := min(maxScaledDown-cleaned, cur-rs.Status.AvailableReplicas)
		if n <= 0 {
			continue
		}
		plan.old[rs.Name] = cur - n
		cleaned += n
	}
	// Then healthy ones, keeping minAvailable pods available.
	available := newRS.Status.AvailableReplicas
	for _, rs := range old {
		available += rs.Status.AvailableReplicas
	}
	if available <= minAvailable {
		return plan
	}
	toDrop, dropped := available-minAvailable, int32(0)
	for _, rs := range sorted {
		cur := size(rs)
		if dropped >= toDrop || cur == 0 {
			continue
		}
		n := min(cur, toDrop-dropped)
		plan.old[rs.Name] = cur - n
		dropped += n
	}
	return plan
}

// isScalingEvent is upstream's: an active ReplicaSet's desired-replicas
// annotation differs from the deployment's replicas.
func isScalingEvent(d *appsv1.Deployment, newRS *appsv1.ReplicaSet, old []*appsv1.ReplicaSet) bool {
	want := strconv.Itoa(int(derefReplicas(d.Spec.Replicas)))
	for _, rs := range append([]*appsv1.ReplicaSet{newRS}, old...) {
		if rs == nil || derefReplicas(rs.Spec.Replicas) == 0 {
			continue
		}
		if v, ok := rs.Annotations[desiredReplicasAnnotation]; ok && v != want {
			return true
		}
	}
	return false
}

// scaleReplicaSets is upstream's scale: the only active (or else the
// newest) ReplicaSet takes all replicas; a saturated new ReplicaSet
// drops the old ones; otherwise a rolling deployment's replicas are
// spread over its active ReplicaSets in proportion to their size.
func (c *Deployment) scaleReplicaSets(ctx context.Context, d *appsv1.Deployment, newRS *appsv1.ReplicaSet, old []*appsv1.ReplicaSet) error {
	replicas := derefReplicas(d.Spec.Replicas)
	var all, active []*appsv1.ReplicaSet
	if newRS != nil {
		all = append(all, newRS)
	}
	all = append(all, old...)
	for _, rs := range all {
		if derefReplicas(rs.Spec.Replicas) > 0 {
			active = append(active, rs)
		}
	}
	switch {
	case len(active) == 1:
		return c.scale(ctx, active[0], d, replicas)
	case len(active) == 0 && newRS != nil:
		return c.scale(ctx, newRS, d, replicas)
	case len(active) == 0 && len(old) > 0:
		latest := slices.MaxFunc(old, func(a, b *appsv1.ReplicaSet) int { return a.CreationTimestamp.Compare(b.CreationTimestamp.Time) })
		return c.scale(ctx, latest, d, replicas)
	case len(active) == 0:
		return nil
	}
	if newRS != nil && derefReplicas(newRS.Spec.Replicas) == replicas && newRS.Annotations[desiredReplicasAnnotation] == strconv.Itoa(int(replicas)) &&
		newRS.Status.AvailableReplicas == replicas {
		for _, rs := range old {
			if err := c.scale(ctx, rs, d, 0); err != nil {
				return err
			}
		}
		return nil
	}
	if d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		return nil
	}
	sizes := proportionalSizes(d, active)
	for _, rs := range active {
		if err := c.scale(ctx, rs, d, sizes[rs.Name]); err != nil {
			return err
		}
	}
	return nil
}

// proportionalSizes is the arithmetic of upstream's proportional scaling:
// the replicas to add (or remove) within replicas+maxSurge go to each
// active ReplicaSet by its share of the max-replicas it was sized for,
// the rounding leftover to the largest one.
func proportionalSizes(d *appsv1.Deployment, active []*appsv1.ReplicaSet) map[string]int32 {
	replicas := derefReplicas(d.Spec.Replicas)
	surge, _ := surgeAndUnavailable(d, replicas)
	allowed := replicas
	if replicas > 0 {
		allowed += surge
	}
	current := int32(0)
	for _, rs := range active {
		current += derefReplicas(rs.Spec.Replicas)
	}
	toAdd := allowed - current
	sorted := slices.Clone(active)
	// Larger first; on a tie newer first when growing, older when shrinking.
	slices.SortStableFunc(sorted, func(a, b *appsv1.ReplicaSet) int {
		if n := int(derefReplicas(b.Spec.Replicas)) - int(derefReplicas(a.Spec.Replicas)); n != 0 {
			return n
		}
		if toAdd > 0 {
			return b.CreationTimestamp.Compare(a.CreationTimestamp.Time)
		}
		return a.CreationTimestamp.Compare(b.CreationTimestamp.Time)
	})
	sizes := map[string]int32{}
	added := int32(0)
	for _, rs := range sorted {
		cur := derefReplicas(rs.Spec.Replicas)
		p := int32(0)
		if toAdd != 0 && toAdd != added && cur > 0 {
			p = replicaSetFraction(d, rs, replicas, surge)
			if toAdd > 0 {
				p = min(p, toAdd-added)
			} else {
				p = max(p, toAdd-added)
			}
		}
		sizes[rs.Name] = cur + p
		added += p
	}
	if len(sorted) > 0 && toAdd != added {
		sizes[sorted[0].Name] = max(sizes[sorted[0].Name]+toAdd-added, 0)
	}
	return sizes
}

// replicaSetFraction is upstream's getReplicaSetFraction: how many
// replicas a ReplicaSet gains or loses when the deployment's max replicas
// change from what the ReplicaSet's max-replicas annotation says.
func replicaSetFraction(d *appsv1.Deployment, rs *appsv1.ReplicaSet, replicas, surge int32) int32 {
	cur := derefReplicas(rs.Spec.Replicas)
	if replicas == 0 {
		return -cur
	}
	annotated := d.Status.Replicas
	if v, err := strconv.Atoi(rs.Annotations[maxReplicasAnnotation]); err == nil {
		annotated = int32(v)
	}
	if annotated <= 0 {
		return 0
	}
	return int32(math.Round(float64(cur)*float64(replicas+surge)/float64(annotated))) - cur
}

func (c *Deployment) createRS(ctx context.Context, d *appsv1.Deployment, hash string, revision int, old []*appsv1.ReplicaSet) (*appsv1.ReplicaSet, error) {
	tmpl := *d.Spec.Template.DeepCopy()
	if tmpl.Labels == nil {
		tmpl.Labels = map[string]string{}
	}
	tmpl.Labels[podTemplateHashLabel] = hash
	sel := d.Spec.Selector.DeepCopy()
	if sel.MatchLabels == nil {
		sel.MatchLabels = map[string]string{}
	}
	sel.MatchLabels[podTemplateHashLabel] = hash
	start := int32(0)
	if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType && len(old) == 0 {
		start = derefReplicas(d.Spec.Replicas)
	}
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name:            d.Name + "-" + hash,
			Namespace:       d.Namespace,
			Labels:          tmpl.Labels,
			Annotations:     c.rsAnnotations(d, revision),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(d, deploymentKind)},
		},
		Spec: appsv1.ReplicaSetSpec{Replicas: &start, MinReadySeconds: d.Spec.MinReadySeconds, Selector: sel, Template: tmpl},
	}
	created, err := c.cfg.Client.AppsV1().ReplicaSets(d.Namespace).Create(ctx, rs, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return c.cfg.Client.AppsV1().ReplicaSets(d.Namespace).Get(ctx, rs.Name, metav1.GetOptions{})
	}
	if err != nil {
		return nil, fmt.Errorf("create replicaset %s: %w", rs.Name, err)
	}
	if start > 0 {
		c.cfg.Recorder.Eventf(d, corev1.EventTypeNormal, "ScalingReplicaSet", "Scaled up replica set %s from 0 to %d", created.Name, start)
	}
	return created, nil
}

func (c *Deployment) rsAnnotations(d *appsv1.Deployment, revision int) map[string]string {
	replicas := derefReplicas(d.Spec.Replicas)
	surge, _ := surgeAndUnavailable(d, replicas)
	a := map[string]string{}
	for k, v := range d.Annotations {
		if k != "kubectl.kubernetes.io/last-applied-configuration" && k != revisionAnnotation {
			a[k] = v
		}
	}
	a[revisionAnnotation] = strconv.Itoa(revision)
	a[desiredReplicasAnnotation] = strconv.Itoa(int(replicas))
	a[maxReplicasAnnotation] = strconv.Itoa(int(replicas + surge))
	return a
}

// annotationsCopied reports whether the ReplicaSet carries every
// annotation the deployment passes on.
func annotationsCopied(d *appsv1.Deployment, rs *appsv1.ReplicaSet) bool {
	for k, v := range d.Annotations {
		if k != "kubectl.kubernetes.io/last-applied-configuration" && k != revisionAnnotation && rs.Annotations[k] != v {
			return false
		}
	}
	return true
}

func (c *Deployment) annotate(ctx context.Context, rs *appsv1.ReplicaSet, d *appsv1.Deployment, revision int) (*appsv1.ReplicaSet, error) {
	next := rs.DeepCopy()
	for k, v := range c.rsAnnotations(d, revision) {
		if next.Annotations == nil {
			next.Annotations = map[string]string{}
		}
		next.Annotations[k] = v
	}
	return c.cfg.Client.AppsV1().ReplicaSets(rs.Namespace).Update(ctx, next, metav1.UpdateOptions{})
}

func (c *Deployment) scale(ctx context.Context, rs *appsv1.ReplicaSet, d *appsv1.Deployment, to int32) error {
	from := derefReplicas(rs.Spec.Replicas)
	replicas := derefReplicas(d.Spec.Replicas)
	surge, _ := surgeAndUnavailable(d, replicas)
	desired, maxRep := strconv.Itoa(int(replicas)), strconv.Itoa(int(replicas+surge))
	// Like upstream's scaleReplicaSet: the replicas annotations are kept
	// current even when the size stays (they tell a scaling event).
	if from == to && rs.Annotations[desiredReplicasAnnotation] == desired && rs.Annotations[maxReplicasAnnotation] == maxRep {
		return nil
	}
	next := rs.DeepCopy()
	next.Spec.Replicas = &to
	if next.Annotations == nil {
		next.Annotations = map[string]string{}
	}
	next.Annotations[desiredReplicasAnnotation] = desired
	next.Annotations[maxReplicasAnnotation] = maxRep
	if _, err := c.cfg.Client.AppsV1().ReplicaSets(rs.Namespace).Update(ctx, next, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("scale replicaset %s to %d: %w", rs.Name, to, err)
	}
	if from == to {
		return nil
	}
	verb := "up"
	if to < from {
		verb = "down"
	}
	c.cfg.Recorder.Eventf(d, corev1.EventTypeNormal, "ScalingReplicaSet", "Scaled %s replica set %s from %d to %d", verb, rs.Name, from, to)
	return nil
}

// cleanup deletes old, empty ReplicaSets beyond revisionHistoryLimit.
func (c *Deployment) cleanup(ctx context.Context, d *appsv1.Deployment, old []*appsv1.ReplicaSet) error {
	limit := int32(10)
	if d.Spec.RevisionHistoryLimit != nil {
		limit = *d.Spec.RevisionHistoryLimit
	}
	var empty []*appsv1.ReplicaSet
	for _, rs := range old {
		if derefReplicas(rs.Spec.Replicas) == 0 && rs.Status.Replicas == 0 && rs.DeletionTimestamp == nil {
			empty = append(empty, rs)
		}
	}
	if int32(len(empty)) <= limit {
		return nil
	}
	sort.Slice(empty, func(i, j int) bool {
		ri, _ := strconv.Atoi(empty[i].Annotations[revisionAnnotation])
		rj, _ := strconv.Atoi(empty[j].Annotations[revisionAnnotation])
		return ri < rj
	})
	for _, rs := range empty[:int32(len(empty))-limit] {
		if err := c.cfg.Client.AppsV1().ReplicaSets(rs.Namespace).Delete(ctx, rs.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete old replicaset %s: %w", rs.Name, err)
		}
	}
	return nil
}

// Reasons of the Progressing condition, as upstream's deployment util.
const (
	reasonNewRSCreated   = "NewReplicaSetCreated"
	reasonFoundNewRS     = "FoundNewReplicaSet"
	reasonRSUpdated      = "ReplicaSetUpdated"
	reasonNewRSAvailable = "NewReplicaSetAvailable"
	reasonTimedOut       = "ProgressDeadlineExceeded"
	reasonPaused         = "DeploymentPaused"
	reasonResumed        = "DeploymentResumed"
)

func (c *Deployment) syncStatus(ctx context.Context, d *appsv1.Deployment, newRS *appsv1.ReplicaSet, old []*appsv1.ReplicaSet, created bool) error {
	replicas := derefReplicas(d.Spec.Replicas)
	st := appsv1.DeploymentStatus{ObservedGeneration: d.Generation, CollisionCount: d.Status.CollisionCount}
	for _, rs := range append([]*appsv1.ReplicaSet{newRS}, old...) {
		if rs == nil {
			continue
		}
		st.Replicas += rs.Status.Replicas
		st.ReadyReplicas += rs.Status.ReadyReplicas
		st.AvailableReplicas += rs.Status.AvailableReplicas
	}
	if newRS != nil {
		st.UpdatedReplicas = newRS.Status.Replicas
	}
	st.UnavailableReplicas = max(st.Replicas-st.AvailableReplicas, replicas-st.AvailableReplicas, 0)
	_, unavail := surgeAndUnavailable(d, replicas)
	now := metav1.Now()
	st.Conditions = append([]appsv1.DeploymentCondition(nil), d.Status.Conditions...)
	if st.AvailableReplicas >= replicas-unavail {
		setDeploymentCondition(&st, appsv1.DeploymentAvailable, corev1.ConditionTrue, "MinimumReplicasAvailable", "Deployment has minimum availability.", now)
	} else {
		setDeploymentCondition(&st, appsv1.DeploymentAvailable, corev1.ConditionFalse, "MinimumReplicasUnavailable", "Deployment does not have minimum availability.", now)
	}
	c.progress(d, &st, newRS, created, now)
	if deploymentStatusEqual(d.Status, st) {
		return nil
	}
	next := d.DeepCopy()
	next.Status = st
	if rev := newRS; rev != nil && next.Annotations[revisionAnnotation] != rev.Annotations[revisionAnnotation] {
		// The revision annotation lives on the deployment's metadata: a full update.
		next.Annotations = copyMap(next.Annotations)
		next.Annotations[revisionAnnotation] = rev.Annotations[revisionAnnotation]
		upd, err := c.cfg.Client.AppsV1().Deployments(d.Namespace).Update(ctx, next, metav1.UpdateOptions{})
		if err != nil {
			return err
		}
		next = upd
		next.Status = st
	}
	_, err := c.cfg.Client.AppsV1().Deployments(d.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// progress keeps the Progressing condition like upstream: created or found
// the new ReplicaSet, progressing while counts move, complete when every
// replica is new and available, timed out when nothing moved for
// progressDeadlineSeconds; Unknown while paused. A deployment that is
// still rolling is looked at again when its deadline passes.
func (c *Deployment) progress(d *appsv1.Deployment, st *appsv1.DeploymentStatus, newRS *appsv1.ReplicaSet, created bool, now metav1.Time) {
	cond := deploymentCondition(st, appsv1.DeploymentProgressing)
	if cond != nil && cond.Reason == reasonTimedOut && !created {
		// Only a new template restarts the clock, as upstream.
		if !deploymentProgressing(d, st) {
			return
		}
	}
	switch {
	case d.Spec.Paused:
		if cond == nil || cond.Reason != reasonPaused {
			setDeploymentCondition(st, appsv1.DeploymentProgressing, corev1.ConditionUnknown, reasonPaused, "Deployment is paused", now)
		}
		return
	case cond != nil && cond.Reason == reasonPaused:
		setDeploymentCondition(st, appsv1.DeploymentProgressing, corev1.ConditionUnknown, reasonResumed, "Deployment is resumed", now)
	}
	if newRS == nil {
		return
	}
	replicas := derefReplicas(d.Spec.Replicas)
	switch {
	case st.UpdatedReplicas == replicas && st.Replicas == replicas && st.AvailableReplicas == replicas:
		setDeploymentCondition(st, appsv1.DeploymentProgressing, corev1.ConditionTrue, reasonNewRSAvailable, fmt.Sprintf("ReplicaSet %q has successfully progressed.", newRS.Name), now)
		return
	case created:
		setDeploymentCondition(st, appsv1.DeploymentProgressing, corev1.ConditionTrue, reasonNewRSCreated, fmt.Sprintf("Created new replica set %q", newRS.Name), now)
	case cond == nil || cond.Reason == reasonResumed:
		setDeploymentCondition(st, appsv1.DeploymentProgressing, corev1.ConditionTrue, reasonFoundNewRS, fmt.Sprintf("Found new replica set %q", newRS.Name), now)
	case deploymentProgressing(d, st):
		setDeploymentCondition(st, appsv1.DeploymentProgressing, corev1.ConditionTrue, reasonRSUpdated, fmt.Sprintf("ReplicaSet %q is progressing.", newRS.Name), now)
		// Progress always moves the clock, even with the same text.
		deploymentCondition(st, appsv1.DeploymentProgressing).LastUpdateTime = now
	}
	deadline := d.Spec.ProgressDeadlineSeconds
	if deadline == nil || *deadline == math.MaxInt32 {
		return
	}
	cond = deploymentCondition(st, appsv1.DeploymentProgressing)
	if cond == nil || cond.Reason == reasonNewRSAvailable || cond.Reason == reasonTimedOut {
		return
	}
	left := cond.LastUpdateTime.Add(time.Duration(*deadline) * time.Second).Sub(now.Time)
	if left < 0 {
		setDeploymentCondition(st, appsv1.DeploymentProgressing, corev1.ConditionFalse, reasonTimedOut, fmt.Sprintf("ReplicaSet %q has timed out progressing.", newRS.Name), now)
		c.cfg.Recorder.Eventf(d, corev1.EventTypeWarning, reasonTimedOut, "Deployment %q has timed out progressing.", d.Name)
		return
	}
	if key, err := cache.MetaNamespaceKeyFunc(d); err == nil {
		c.w.queue.AddAfter(key, left+time.Second)
	}
}

// deploymentProgressing is upstream's DeploymentProgressing: more new,
// ready or available replicas, or fewer old ones, than the stored status.
func deploymentProgressing(d *appsv1.Deployment, st *appsv1.DeploymentStatus) bool {
	was := d.Status
	return st.UpdatedReplicas > was.UpdatedReplicas || st.Replicas-st.UpdatedReplicas < was.Replicas-was.UpdatedReplicas ||
		st.ReadyReplicas > was.ReadyReplicas || st.AvailableReplicas > was.AvailableReplicas
}

func deploymentCondition(st *appsv1.DeploymentStatus, t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range st.Conditions {
		if st.Conditions[i].Type == t {
			return &st.Conditions[i]
		}
	}
	return nil
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

func setDeploymentCondition(st *appsv1.DeploymentStatus, t appsv1.DeploymentConditionType, s corev1.ConditionStatus, reason, msg string, now metav1.Time) {
	for i := range st.Conditions {
		c := &st.Conditions[i]
		if c.Type != t {
			continue
		}
		if c.Status != s {
			c.LastTransitionTime = now
		}
		if c.Status != s || c.Reason != reason || c.Message != msg {
			c.LastUpdateTime = now
		}
		c.Status, c.Reason, c.Message = s, reason, msg
		return
	}
	st.Conditions = append(st.Conditions, appsv1.DeploymentCondition{Type: t, Status: s, Reason: reason, Message: msg, LastUpdateTime: now, LastTransitionTime: now})
}

func deploymentStatusEqual(a, b appsv1.DeploymentStatus) bool {
	if a.ObservedGeneration != b.ObservedGeneration || a.Replicas != b.Replicas || a.UpdatedReplicas != b.UpdatedReplicas ||
		a.ReadyReplicas != b.ReadyReplicas || a.AvailableReplicas != b.AvailableReplicas || a.UnavailableReplicas != b.UnavailableReplicas ||
		len(a.Conditions) != len(b.Conditions) {
		return false
	}
	for i := range a.Conditions {
		x, y := a.Conditions[i], b.Conditions[i]
		if x.Type != y.Type || x.Status != y.Status || x.Reason != y.Reason || x.Message != y.Message || !x.LastUpdateTime.Equal(&y.LastUpdateTime) {
			return false
		}
	}
	return true
}
