package controller

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
)

// DaemonSetConfig builds the DaemonSet controller.
type DaemonSetConfig struct {
	Client    kubernetes.Interface
	Informers informers.SharedInformerFactory
	Recorder  record.EventRecorder
	Log       *slog.Logger
}

// DaemonSet keeps one pod of each DaemonSet on every eligible node (node
// selector, taints the template does not tolerate), pinned with the
// required node affinity upstream uses, and reports its status. Template
// changes are ControllerRevisions (what `kubectl rollout history|undo`
// read) and replace pods node by node (RollingUpdate, at most
// maxUnavailable at once) or wait for the user (OnDelete).
type DaemonSet struct {
	cfg    DaemonSetConfig
	ds     appslisters.DaemonSetLister
	pods   corelisters.PodLister
	nodes  corelisters.NodeLister
	revs   appslisters.ControllerRevisionLister
	hist   *history
	synced []cache.InformerSynced
	w      *worker
	exp    *expectations
}

// NewDaemonSet builds the controller.
func NewDaemonSet(cfg DaemonSetConfig) (*DaemonSet, error) {
	dsInf := cfg.Informers.Apps().V1().DaemonSets()
	podInf := cfg.Informers.Core().V1().Pods()
	nodeInf := cfg.Informers.Core().V1().Nodes()
	revInf := cfg.Informers.Apps().V1().ControllerRevisions()
	c := &DaemonSet{cfg: cfg, ds: dsInf.Lister(), pods: podInf.Lister(), nodes: nodeInf.Lister(), revs: revInf.Lister(), exp: newExpectations(),
		hist: &history{client: cfg.Client, gvk: appsv1.SchemeGroupVersion.WithKind("DaemonSet")}}
	c.w = newWorker("daemonset", cfg.Log, c.sync)
	if _, err := dsInf.Informer().AddEventHandler(c.w.handler()); err != nil {
		return nil, err
	}
	// Pods it created or deleted but has not seen yet hold the next sync
	// back, so a slow informer never yields two pods on one node.
	onPod := func(obj any, added, deleted bool) {
		m, ok := metaOf(obj)
		if !ok {
			return
		}
		key, ok := controllerKey(obj, "DaemonSet")
		if !ok {
			// An orphan may be adopted by a DaemonSet whose selector matches.
			if metav1.GetControllerOfNoCopy(m) == nil && !deleted {
				sets, _ := c.ds.DaemonSets(m.GetNamespace()).List(labels.Everything())
				for _, d := range sets {
					if sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector); err == nil && !sel.Empty() && sel.Matches(labels.Set(m.GetLabels())) {
						c.w.queue.Add(d.Namespace + "/" + d.Name)
					}
				}
			}
			return
		}
		if added {
			c.exp.observeAdds(key, 1)
		}
		if deleted || m.GetDeletionTimestamp() != nil {
			c.exp.observeDelete(key, m.GetUID())
		}
		c.w.queue.Add(key)
	}
	if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { onPod(o, true, false) },
		UpdateFunc: func(_, o any) { onPod(o, false, false) },
		DeleteFunc: func(o any) { onPod(o, false, true) },
	}); err != nil {
		return nil, err
	}
	all := func(any) {
		list, _ := c.ds.List(labels.Everything())
		for _, d := range list {
			c.w.queue.Add(d.Namespace + "/" + d.Name)
		}
	}
	if _, err := nodeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: all, UpdateFunc: func(_, o any) { all(o) }, DeleteFunc: all}); err != nil {
		return nil, err
	}
	revOwner := func(obj any) {
		if key, ok := controllerKey(obj, "DaemonSet"); ok {
			c.w.queue.Add(key)
		}
	}
	if _, err := revInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: revOwner, DeleteFunc: revOwner}); err != nil {
		return nil, err
	}
	c.synced = []cache.InformerSynced{dsInf.Informer().HasSynced, podInf.Informer().HasSynced, nodeInf.Informer().HasSynced, revInf.Informer().HasSynced}
	return c, nil
}

// Run works until ctx ends.
func (c *DaemonSet) Run(ctx context.Context) error { return c.w.run(ctx, c.synced...) }

// eligible reports whether the daemon pod may run on n.
func eligible(t *corev1.PodTemplateSpec, n *corev1.Node) bool {
	if len(t.Spec.NodeSelector) > 0 && !labels.SelectorFromSet(t.Spec.NodeSelector).Matches(labels.Set(n.Labels)) {
		return false
	}
	for _, taint := range n.Spec.Taints {
		if taint.Effect != corev1.TaintEffectNoSchedule && taint.Effect != corev1.TaintEffectNoExecute {
			continue
		}
		ok := false
		for _, tol := range t.Spec.Tolerations {
			ok = ok || tol.ToleratesTaint(klog.Background(), &taint, false)
		}
		if !ok {
			return false
		}
	}
	return true
}

func (c *DaemonSet) sync(ctx context.Context, key string) error {
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	ds, err := c.ds.DaemonSets(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.exp.forget(key)
		return nil
	}
	if err != nil || ds.DeletionTimestamp != nil {
		return err
	}
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return err
	}
	all, err := c.pods.Pods(ns).List(labels.Everything())
	if err != nil {
		return err
	}
	sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
	if err != nil {
		return nil // invalid selectors are rejected by validation
	}
	claimer := &refManager{client: c.cfg.Client, owner: ds, gvk: appsv1.SchemeGroupVersion.WithKind("DaemonSet"), sel: sel,
		fresh: func(ctx context.Context) (metav1.Object, error) {
			return c.cfg.Client.AppsV1().DaemonSets(ds.Namespace).Get(ctx, ds.Name, metav1.GetOptions{})
		}}
	pods, err := claimer.claim(ctx, all)
	if err != nil {
		return fmt.Errorf("daemonset %s: claim pods: %w", key, err)
	}
	if err := claimer.adoptRevisions(ctx, c.revs); err != nil {
		return fmt.Errorf("daemonset %s: %w", key, err)
	}
	hash := templateHash(&ds.Spec.Template, ds.Status.CollisionCount)
	revs, err := c.syncHistory(ctx, ds, hash)
	if err != nil || revs == nil {
		return err
	}
	byNode := map[string][]*corev1.Pod{}
	for _, p := range pods {
		if ref := metav1.GetControllerOf(p); ref != nil && ref.UID == ds.UID && p.DeletionTimestamp == nil {
			byNode[daemonNode(p)] = append(byNode[daemonNode(p)], p)
		}
	}
	st := appsv1.DaemonSetStatus{ObservedGeneration: ds.Generation, CollisionCount: ds.Status.CollisionCount}
	rolling := ds.Spec.UpdateStrategy.Type != appsv1.OnDeleteDaemonSetStrategyType
	// manage is false while earlier creations and deletions are unseen:
	// then only the status is computed.
	manage := c.exp.satisfied(key)
	var outdated []*corev1.Pod
	for _, n := range nodes {
		have := byNode[n.Name]
		delete(byNode, n.Name)
		if !eligible(&ds.Spec.Template, n) {
			for _, p := range have {
				c.deletePod(ctx, key, ds, p, manage)
			}
			continue
		}
		st.DesiredNumberScheduled++
		if len(have) == 0 {
			if !manage {
				continue
			}
			c.exp.expectAdds(key, 1)
			if err := c.createPod(ctx, ds, n.Name, hash); err != nil {
				c.exp.observeAdds(key, 1)
				return err
			}
			continue
		}
		for _, extra := range have[1:] {
			c.deletePod(ctx, key, ds, extra, manage)
		}
		p := have[0]
		st.CurrentNumberScheduled++
		current := p.Labels[appsv1.DefaultDaemonSetUniqueLabelKey] == hash
		if current {
			st.UpdatedNumberScheduled++
		}
		if podReady(p) {
			st.NumberReady++
			st.NumberAvailable++
		}
		if !current {
			outdated = append(outdated, p)
		}
	}
	// RollingUpdate: outdated pods go while fewer than maxUnavailable
	// daemon pods are unavailable, unavailable ones first.
	if rolling && len(outdated) > 0 {
		sort.SliceStable(outdated, func(i, j int) bool { return !podReady(outdated[i]) && podReady(outdated[j]) })
		budget := daemonMaxUnavailable(ds, int(st.DesiredNumberScheduled)) - int(st.DesiredNumberScheduled-st.NumberAvailable)
		for _, p := range outdated {
			if podReady(p) {
				if budget <= 0 {
					break
				}
				budget--
			}
			c.deletePod(ctx, key, ds, p, manage)
		}
	}
	for _, orphaned := range byNode { // nodes that went away
		for _, p := range orphaned {
			c.deletePod(ctx, key, ds, p, manage)
		}
	}
	st.NumberUnavailable = st.DesiredNumberScheduled - st.NumberAvailable
	if reflect.DeepEqual(st, ds.Status) {
		return nil
	}
	next := ds.DeepCopy()
	next.Status = st
	if _, err := c.cfg.Client.AppsV1().DaemonSets(ns).UpdateStatus(ctx, next, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("update daemonset %s status: %w", key, err)
	}
	return nil
}

// daemonMaxUnavailable is the rolling update's maxUnavailable (default 1,
// percentages of the desired number rounded up, at least 1).
func daemonMaxUnavailable(ds *appsv1.DaemonSet, desired int) int {
	ru := ds.Spec.UpdateStrategy.RollingUpdate
	if ru == nil || ru.MaxUnavailable == nil {
		return 1
	}
	n, err := intstr.GetScaledValueFromIntOrPercent(ru.MaxUnavailable, desired, true)
	if err != nil || n < 1 {
		return 1
	}
	return n
}

// syncHistory makes the revision of the current template (moving an old
// one to the top on rollback) and trims the history; nil revisions mean a
// hash collision was recorded and the set comes back.
func (c *DaemonSet) syncHistory(ctx context.Context, ds *appsv1.DaemonSet, hash string) ([]*appsv1.ControllerRevision, error) {
	revs, err := ownedRevisions(c.revs, ds)
	if err != nil {
		return nil, err
	}
	data, err := templatePatch(&ds.Spec.Template)
	if err != nil {
		return nil, fmt.Errorf("daemonset %s/%s: encode template: %w", ds.Namespace, ds.Name, err)
	}
	cur, collided, err := c.hist.current(ctx, revs, revisionSpec{owner: ds, labels: ds.Spec.Template.Labels, hashLabel: true, data: data, hash: hash,
		name: ds.Name + "-" + hash, annotations: ds.Annotations})
	if err != nil {
		return nil, fmt.Errorf("daemonset %s/%s: %w", ds.Namespace, ds.Name, err)
	}
	if collided {
		next := ds.DeepCopy()
		cc := int32(1)
		if next.Status.CollisionCount != nil {
			cc = *next.Status.CollisionCount + 1
		}
		next.Status.CollisionCount = &cc
		if _, err := c.cfg.Client.AppsV1().DaemonSets(ds.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{}); err != nil {
			return nil, fmt.Errorf("daemonset %s/%s: bump collision count: %w", ds.Namespace, ds.Name, err)
		}
		return nil, nil
	}
	live := map[string]bool{cur.Name: true}
	pods, err := c.pods.Pods(ds.Namespace).List(labels.Everything())
	if err != nil {
		return nil, err
	}
	for _, p := range pods {
		if ref := metav1.GetControllerOf(p); ref != nil && ref.UID == ds.UID {
			live[ds.Name+"-"+p.Labels[appsv1.DefaultDaemonSetUniqueLabelKey]] = true
		}
	}
	if err := c.hist.trim(ctx, revs, live, ds.Spec.RevisionHistoryLimit); err != nil {
		return nil, err
	}
	return append(revs, cur), nil
}

// daemonNode is the node a daemon pod is pinned to.
func daemonNode(p *corev1.Pod) string {
	if p.Spec.NodeName != "" {
		return p.Spec.NodeName
	}
	if a := p.Spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		for _, t := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
			for _, f := range t.MatchFields {
				if f.Key == "metadata.name" && len(f.Values) == 1 {
					return f.Values[0]
				}
			}
		}
	}
	return ""
}

// createPod pins a pod to node with the required node affinity upstream
// uses, and adds the daemon tolerations (not-ready, unreachable, …).
func (c *DaemonSet) createPod(ctx context.Context, ds *appsv1.DaemonSet, node, hash string) error {
	t := ds.Spec.Template.DeepCopy()
	if t.Labels == nil {
		t.Labels = map[string]string{}
	}
	t.Labels[appsv1.DefaultDaemonSetUniqueLabelKey] = hash
	t.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{node}}}}}}}}
	for _, key := range []string{corev1.TaintNodeNotReady, corev1.TaintNodeUnreachable, corev1.TaintNodeDiskPressure, corev1.TaintNodeMemoryPressure, corev1.TaintNodePIDPressure, corev1.TaintNodeUnschedulable} {
		effect := corev1.TaintEffectNoSchedule
		if key == corev1.TaintNodeNotReady || key == corev1.TaintNodeUnreachable {
			effect = corev1.TaintEffectNoExecute
		}
		t.Spec.Tolerations = append(t.Spec.Tolerations, corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists, Effect: effect})
	}
	return createPodFor(ctx, c.cfg.Client, c.cfg.Recorder, ds, ds, appsv1.SchemeGroupVersion.WithKind("DaemonSet"), t)
}

// deletePod deletes a daemon pod when the controller may act (manage).
func (c *DaemonSet) deletePod(ctx context.Context, key string, ds *appsv1.DaemonSet, p *corev1.Pod, manage bool) {
	if !manage {
		return
	}
	c.exp.expectDelete(key, p.UID)
	if err := c.cfg.Client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil {
		c.exp.observeDelete(key, p.UID)
		return
	}
	c.cfg.Recorder.Eventf(ds, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted pod: %s", p.Name)
}
