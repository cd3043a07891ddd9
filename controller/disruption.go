package controller

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	policylisters "k8s.io/client-go/listers/policy/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
)

// pdbDeletionTimeout is how long an eviction's pod may take to go before
// the budget stops counting it as disrupted (upstream's DeletionTimeout).
const pdbDeletionTimeout = 2 * time.Minute

// DisruptionConfig builds the PodDisruptionBudget controller.
type DisruptionConfig struct {
	Client    kubernetes.Interface
	Informers informers.SharedInformerFactory
	Recorder  record.EventRecorder
	Log       *slog.Logger
}

// Disruption keeps the status of every PodDisruptionBudget like
// kube-controller-manager's disruption controller: expected, healthy and
// desired pods, the disruptions the eviction subresource may allow, the
// pods it has just evicted, and the DisruptionAllowed condition.
type Disruption struct {
	cfg    DisruptionConfig
	pdbs   policylisters.PodDisruptionBudgetLister
	pods   corelisters.PodLister
	rs     appslisters.ReplicaSetLister
	deps   appslisters.DeploymentLister
	sts    appslisters.StatefulSetLister
	rcs    corelisters.ReplicationControllerLister
	synced []cache.InformerSynced
	w      *worker
}

// NewDisruption builds the controller.
func NewDisruption(cfg DisruptionConfig) (*Disruption, error) {
	pdbInf := cfg.Informers.Policy().V1().PodDisruptionBudgets()
	podInf := cfg.Informers.Core().V1().Pods()
	rsInf, depInf, stsInf := cfg.Informers.Apps().V1().ReplicaSets(), cfg.Informers.Apps().V1().Deployments(), cfg.Informers.Apps().V1().StatefulSets()
	rcInf := cfg.Informers.Core().V1().ReplicationControllers()
	c := &Disruption{cfg: cfg, pdbs: pdbInf.Lister(), pods: podInf.Lister(), rs: rsInf.Lister(), deps: depInf.Lister(), sts: stsInf.Lister(), rcs: rcInf.Lister()}
	c.w = newWorker("disruption", cfg.Log, c.sync)
	if _, err := pdbInf.Informer().AddEventHandler(c.w.handler()); err != nil {
		return nil, err
	}
	onPod := func(obj any) {
		m, ok := metaOf(obj)
		if !ok {
			return
		}
		c.enqueueFor(m.GetNamespace(), m.GetLabels())
	}
	if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: onPod, UpdateFunc: func(_, o any) { onPod(o) }, DeleteFunc: onPod,
	}); err != nil {
		return nil, err
	}
	// A workload's scale is the denominator of percentages and of
	// maxUnavailable: its changes matter too.
	onScale := func(obj any) {
		m, ok := metaOf(obj)
		if !ok {
			return
		}
		if all, err := c.pdbs.PodDisruptionBudgets(m.GetNamespace()).List(labels.Everything()); err == nil && len(all) > 0 {
			for _, p := range all {
				c.w.queue.Add(p.Namespace + "/" + p.Name)
			}
		}
	}
	for _, inf := range []cache.SharedIndexInformer{rsInf.Informer(), depInf.Informer(), stsInf.Informer(), rcInf.Informer()} {
		if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: onScale, UpdateFunc: func(_, o any) { onScale(o) }, DeleteFunc: onScale}); err != nil {
			return nil, err
		}
	}
	c.synced = []cache.InformerSynced{pdbInf.Informer().HasSynced, podInf.Informer().HasSynced, rsInf.Informer().HasSynced,
		depInf.Informer().HasSynced, stsInf.Informer().HasSynced, rcInf.Informer().HasSynced}
	return c, nil
}

// Run works until ctx ends.
func (c *Disruption) Run(ctx context.Context) error { return c.w.run(ctx, c.synced...) }

// enqueueFor queues the budgets of namespace ns whose selector matches set.
func (c *Disruption) enqueueFor(ns string, set map[string]string) {
	all, err := c.pdbs.PodDisruptionBudgets(ns).List(labels.Everything())
	if err != nil {
		return
	}
	for _, p := range all {
		if sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector); err == nil && p.Spec.Selector != nil && sel.Matches(labels.Set(set)) {
			c.w.queue.Add(ns + "/" + p.Name)
		}
	}
}

func (c *Disruption) sync(ctx context.Context, key string) error {
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	pdb, err := c.pdbs.PodDisruptionBudgets(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	pods, err := c.podsFor(pdb)
	if err != nil {
		return err
	}
	if len(pods) == 0 {
		c.cfg.Recorder.Event(pdb, corev1.EventTypeNormal, "NoPods", "No matching pods found")
	}
	now := time.Now()
	expected, desired, err := c.expectedPods(pdb, pods)
	if err != nil {
		return c.failSafe(ctx, pdb, err)
	}
	disrupted, recheck := c.disruptedPods(pdb, pods, now)
	healthy := countHealthy(pods, disrupted, now)
	allowed := healthy - desired
	if expected <= 0 || allowed <= 0 {
		allowed = 0
	}
	next := pdb.DeepCopy()
	next.Status.CurrentHealthy, next.Status.DesiredHealthy, next.Status.ExpectedPods = healthy, desired, expected
	next.Status.DisruptionsAllowed, next.Status.DisruptedPods, next.Status.ObservedGeneration = allowed, disrupted, pdb.Generation
	setDisruptionAllowed(next)
	if recheck != nil {
		c.w.queue.AddAfter(key, time.Until(*recheck))
	}
	if equality.Semantic.DeepEqual(pdb.Status, next.Status) {
		return nil
	}
	if _, err := c.cfg.Client.PolicyV1().PodDisruptionBudgets(ns).UpdateStatus(ctx, next, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("update pdb %s status: %w", key, err)
	}
	return nil
}

// podsFor lists the pods the budget's selector matches (policy/v1: a nil
// selector matches nothing, an empty one everything).
func (c *Disruption) podsFor(pdb *policyv1.PodDisruptionBudget) ([]*corev1.Pod, error) {
	if pdb.Spec.Selector == nil {
		return nil, nil
	}
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil {
		return nil, nil
	}
	return c.pods.Pods(pdb.Namespace).List(sel)
}

// expectedPods is upstream's getExpectedPodCount: an integer minAvailable
// counts the matching pods; a percentage or maxUnavailable counts the
// scale of the pods' controllers.
func (c *Disruption) expectedPods(pdb *policyv1.PodDisruptionBudget, pods []*corev1.Pod) (expected, desired int32, err error) {
	switch {
	case pdb.Spec.MaxUnavailable != nil:
		if expected, err = c.expectedScale(pdb, pods); err != nil {
			return 0, 0, err
		}
		maxUnavailable, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MaxUnavailable, int(expected), true)
		if err != nil {
			return 0, 0, err
		}
		return expected, max(expected-int32(maxUnavailable), 0), nil
	case pdb.Spec.MinAvailable != nil && pdb.Spec.MinAvailable.Type == intstr.Int:
		return int32(len(pods)), pdb.Spec.MinAvailable.IntVal, nil
	case pdb.Spec.MinAvailable != nil:
		if expected, err = c.expectedScale(pdb, pods); err != nil {
			return 0, 0, err
		}
		minAvailable, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MinAvailable, int(expected), true)
		if err != nil {
			return 0, 0, err
		}
		return expected, int32(minAvailable), nil
	}
	return int32(len(pods)), 0, nil
}

// expectedScale sums the scale of the controllers of the pods; a pod
// without one is an error, as upstream reports it.
func (c *Disruption) expectedScale(pdb *policyv1.PodDisruptionBudget, pods []*corev1.Pod) (int32, error) {
	scales := map[types.UID]int32{}
	for _, pod := range pods {
		ref := metav1.GetControllerOf(pod)
		if ref == nil {
			err := fmt.Errorf("found no controller ref for pod %q", pod.Name)
			c.cfg.Recorder.Event(pdb, corev1.EventTypeWarning, "NoControllerRef", err.Error())
			return 0, err
		}
		if _, ok := scales[ref.UID]; ok {
			continue
		}
		uid, scale, ok := c.scaleOf(pod.Namespace, ref)
		if !ok {
			err := fmt.Errorf("found no controllers for pod %q", pod.Name)
			c.cfg.Recorder.Event(pdb, corev1.EventTypeWarning, "NoControllers", err.Error())
			return 0, err
		}
		scales[uid] = scale
	}
	var sum int32
	for _, s := range scales {
		sum += s
	}
	return sum, nil
}

// scaleOf finds the workload behind a pod's controller reference: a
// ReplicaSet's Deployment, a ReplicaSet, a StatefulSet or a
// ReplicationController.
func (c *Disruption) scaleOf(ns string, ref *metav1.OwnerReference) (types.UID, int32, bool) {
	replicas := func(p *int32) int32 {
		if p == nil {
			return 1
		}
		return *p
	}
	switch ref.Kind {
	case "ReplicaSet":
		rs, err := c.rs.ReplicaSets(ns).Get(ref.Name)
		if err != nil || rs.UID != ref.UID {
			return "", 0, false
		}
		if dref := metav1.GetControllerOf(rs); dref != nil && dref.Kind == "Deployment" {
			d, err := c.deps.Deployments(ns).Get(dref.Name)
			if err != nil || d.UID != dref.UID {
				return "", 0, false
			}
			return d.UID, replicas(d.Spec.Replicas), true
		}
		return rs.UID, replicas(rs.Spec.Replicas), true
	case "StatefulSet":
		s, err := c.sts.StatefulSets(ns).Get(ref.Name)
		if err != nil || s.UID != ref.UID {
			return "", 0, false
		}
		return s.UID, replicas(s.Spec.Replicas), true
	case "ReplicationController":
		rc, err := c.rcs.ReplicationControllers(ns).Get(ref.Name)
		if err != nil || rc.UID != ref.UID {
			return "", 0, false
		}
		return rc.UID, replicas(rc.Spec.Replicas), true
	}
	return "", 0, false
}

// disruptedPods keeps the evictions still expected to finish and the
// time the budget must be looked at again.
func (c *Disruption) disruptedPods(pdb *policyv1.PodDisruptionBudget, pods []*corev1.Pod, now time.Time) (map[string]metav1.Time, *time.Time) {
	out := map[string]metav1.Time{}
	var recheck *time.Time
	if pdb.Status.DisruptedPods == nil {
		return out, nil
	}
	for _, pod := range pods {
		if pod.DeletionTimestamp != nil {
			continue
		}
		at, ok := pdb.Status.DisruptedPods[pod.Name]
		if !ok {
			continue
		}
		expected := at.Add(pdbDeletionTimeout)
		if expected.Before(now) {
			c.cfg.Recorder.Eventf(pod, corev1.EventTypeWarning, "NotDeleted", "Pod was expected by PDB %s/%s to be deleted but it wasn't", pdb.Namespace, pdb.Name)
			continue
		}
		if recheck == nil || expected.Before(*recheck) {
			recheck = &expected
		}
		out[pod.Name] = at
	}
	return out, recheck
}

// countHealthy counts the ready pods that are neither being deleted nor
// just evicted.
func countHealthy(pods []*corev1.Pod, disrupted map[string]metav1.Time, now time.Time) int32 {
	var n int32
	for _, pod := range pods {
		if pod.DeletionTimestamp != nil {
			continue
		}
		if at, ok := disrupted[pod.Name]; ok && at.Add(pdbDeletionTimeout).After(now) {
			continue
		}
		if podReady(pod) {
			n++
		}
	}
	return n
}

// setDisruptionAllowed is upstream's UpdateDisruptionAllowedCondition.
func setDisruptionAllowed(pdb *policyv1.PodDisruptionBudget) {
	if pdb.Status.Conditions == nil {
		pdb.Status.Conditions = []metav1.Condition{}
	}
	cond := metav1.Condition{Type: policyv1.DisruptionAllowedCondition, Reason: policyv1.InsufficientPodsReason, Status: metav1.ConditionFalse, ObservedGeneration: pdb.Status.ObservedGeneration}
	if pdb.Status.DisruptionsAllowed > 0 {
		cond.Reason, cond.Status = policyv1.SufficientPodsReason, metav1.ConditionTrue
	}
	apimeta.SetStatusCondition(&pdb.Status.Conditions, cond)
}

// failSafe allows no disruption when the budget cannot be computed.
func (c *Disruption) failSafe(ctx context.Context, pdb *policyv1.PodDisruptionBudget, cause error) error {
	next := pdb.DeepCopy()
	next.Status.DisruptionsAllowed = 0
	next.Status.ObservedGeneration = pdb.Generation
	apimeta.SetStatusCondition(&next.Status.Conditions, metav1.Condition{Type: policyv1.DisruptionAllowedCondition, Status: metav1.ConditionFalse,
		Reason: policyv1.SyncFailedReason, Message: cause.Error(), ObservedGeneration: pdb.Generation})
	if equality.Semantic.DeepEqual(pdb.Status, next.Status) {
		return nil
	}
	if _, err := c.cfg.Client.PolicyV1().PodDisruptionBudgets(pdb.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("update pdb %s/%s status: %w", pdb.Namespace, pdb.Name, err)
	}
	return nil
}
