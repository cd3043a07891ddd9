package controller

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
)

// TaintEvictionConfig builds the taint eviction controller.
type TaintEvictionConfig struct {
	Client    kubernetes.Interface
	Informers informers.SharedInformerFactory
	Recorder  record.EventRecorder
	Log       *slog.Logger
}

// TaintEviction deletes the pods of nodes with NoExecute taints like
// kube-controller-manager's taint-eviction-controller: at once when a
// pod does not tolerate a taint, after the smallest tolerationSeconds
// when it does for a while (the API server gives every pod 300 s for
// not-ready and unreachable), never when it tolerates them for good.
type TaintEviction struct {
	cfg    TaintEvictionConfig
	nodes  corelisters.NodeLister
	pods   corelisters.PodLister
	byNode cache.Indexer
	synced []cache.InformerSynced
	w      *worker
}

// NewTaintEviction builds the controller.
func NewTaintEviction(cfg TaintEvictionConfig) (*TaintEviction, error) {
	nodeInf := cfg.Informers.Core().V1().Nodes()
	podInf := cfg.Informers.Core().V1().Pods()
	if err := addPodNodeIndex(podInf.Informer()); err != nil {
		return nil, err
	}
	c := &TaintEviction{cfg: cfg, nodes: nodeInf.Lister(), pods: podInf.Lister(), byNode: podInf.Informer().GetIndexer()}
	c.w = newWorker("tainteviction", cfg.Log, c.sync)
	onPod := func(obj any) {
		if p, ok := obj.(*corev1.Pod); ok && p.Spec.NodeName != "" && p.DeletionTimestamp == nil {
			if n, err := c.nodes.Get(p.Spec.NodeName); err == nil && hasNoExecute(n) {
				c.w.enqueue(p)
			}
		}
	}
	if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: onPod, UpdateFunc: func(_, o any) { onPod(o) }}); err != nil {
		return nil, err
	}
	onNode := func(old, cur any) {
		n, ok := cur.(*corev1.Node)
		if !ok {
			return
		}
		if o, ok := old.(*corev1.Node); ok && !hasNoExecute(o) && !hasNoExecute(n) {
			return
		}
		for _, p := range podsOnNode(c.byNode, n.Name) {
			c.w.enqueue(p)
		}
	}
	if _, err := nodeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: func(o any) { onNode(nil, o) }, UpdateFunc: onNode}); err != nil {
		return nil, err
	}
	c.synced = []cache.InformerSynced{nodeInf.Informer().HasSynced, podInf.Informer().HasSynced}
	return c, nil
}

// Run works until ctx ends.
func (c *TaintEviction) Run(ctx context.Context) error { return c.w.run(ctx, c.synced...) }

func hasNoExecute(n *corev1.Node) bool {
	for _, t := range n.Spec.Taints {
		if t.Effect == corev1.TaintEffectNoExecute {
			return true
		}
	}
	return false
}

// evictionDelay is how long pod may stay on a node with taints: -1 for
// ever, 0 for not at all, otherwise the smallest tolerationSeconds of the
// tolerations that match, counted from when each taint was added.
func evictionDelay(pod *corev1.Pod, taints []corev1.Taint, now time.Time) time.Duration {
	delay := time.Duration(-1)
	for _, t := range taints {
		if t.Effect != corev1.TaintEffectNoExecute {
			continue
		}
		tolerated := false
		taintDelay := time.Duration(-1)
		for _, tol := range pod.Spec.Tolerations {
			if !tol.ToleratesTaint(klog.Background(), &t, false) {
				continue
			}
			tolerated = true
			if tol.TolerationSeconds == nil {
				continue
			}
			d := time.Duration(max(*tol.TolerationSeconds, 0)) * time.Second
			if taintDelay < 0 || d < taintDelay {
				taintDelay = d
			}
		}
		if !tolerated {
			return 0
		}
		if taintDelay < 0 {
			continue
		}
		added := now
		if t.TimeAdded != nil {
			added = t.TimeAdded.Time
		}
		left := max(added.Add(taintDelay).Sub(now), 0)
		if delay < 0 || left < delay {
			delay = left
		}
	}
	return delay
}

func (c *TaintEviction) sync(ctx context.Context, key string) error {
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	pod, err := c.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil || pod.DeletionTimestamp != nil || pod.Spec.NodeName == "" {
		return err
	}
	node, err := c.nodes.Get(pod.Spec.NodeName)
	if apierrors.IsNotFound(err) {
		return nil // pod GC takes pods of deleted nodes
	}
	if err != nil {
		return err
	}
	delay := evictionDelay(pod, node.Spec.Taints, time.Now())
	switch {
	case delay < 0:
		return nil
	case delay > 0:
		c.w.queue.AddAfter(key, delay)
		return nil
	}
	c.cfg.Recorder.Eventf(pod, corev1.EventTypeNormal, "TaintManagerEviction", "Marking for deletion Pod %s", key)
	next := pod.DeepCopy()
	setCondition(&next.Status.Conditions, corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: "DeletionByTaintManager",
		Message: "Taint manager: deleting due to NoExecute taint", LastTransitionTime: metav1.Now()})
	if _, err := c.cfg.Client.CoreV1().Pods(ns).UpdateStatus(ctx, next, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("mark pod %s for eviction: %w", key, err)
	}
	uid := pod.UID
	if err := c.cfg.Client.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}}); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("evict pod %s: %w", key, err)
	}
	return nil
}

// setCondition sets or replaces a pod condition of the same type.
func setCondition(conds *[]corev1.PodCondition, c corev1.PodCondition) {
	for i := range *conds {
		if (*conds)[i].Type == c.Type {
			if (*conds)[i].Status == c.Status {
				c.LastTransitionTime = (*conds)[i].LastTransitionTime
			}
			(*conds)[i] = c
			return
		}
	}
	*conds = append(*conds, c)
}
