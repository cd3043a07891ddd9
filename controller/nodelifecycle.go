package controller

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	coordinationlisters "k8s.io/client-go/listers/coordination/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
)

// NodeLifecycleConfig builds the node lifecycle controller.
type NodeLifecycleConfig struct {
	Client    kubernetes.Interface
	Informers informers.SharedInformerFactory
	Recorder  record.EventRecorder
	Log       *slog.Logger
	// GracePeriod: a node whose lease and status were not renewed for this
	// long is Unknown (upstream's --node-monitor-grace-period, 40s).
	GracePeriod time.Duration
}

// NodeLifecycle watches node heartbeats like kube-controller-manager's
// node lifecycle controller: a node that stops renewing its Lease becomes
// Ready=Unknown ("Kubelet stopped posting node status."), its pods are
// marked not ready, and nodes get the condition taints the scheduler and
// the taint eviction controller act on (not-ready, unreachable,
// unschedulable, the pressure conditions). It does not poll: each
// heartbeat schedules the one check that matters, GracePeriod later.
type NodeLifecycle struct {
	cfg    NodeLifecycleConfig
	nodes  corelisters.NodeLister
	leases coordinationlisters.LeaseLister
	pods   cache.Indexer
	synced []cache.InformerSynced
	w      *worker

	mu     sync.Mutex
	health map[string]*nodeHealth
}

// nodeHealth is when this controller last saw a node's agent alive.
type nodeHealth struct {
	probe     time.Time // local time of the last renewal seen
	renew     time.Time // the lease's renewTime then
	heartbeat time.Time // the Ready condition's heartbeat then
}

const podsByNode = "spec.nodeName"

// NewNodeLifecycle builds the controller.
func NewNodeLifecycle(cfg NodeLifecycleConfig) (*NodeLifecycle, error) {
	if cfg.GracePeriod == 0 {
		cfg.GracePeriod = 40 * time.Second
	}
	nodeInf := cfg.Informers.Core().V1().Nodes()
	leaseInf := cfg.Informers.Coordination().V1().Leases()
	podInf := cfg.Informers.Core().V1().Pods()
	if err := addPodNodeIndex(podInf.Informer()); err != nil {
		return nil, err
	}
	c := &NodeLifecycle{cfg: cfg, nodes: nodeInf.Lister(), leases: leaseInf.Lister(), pods: podInf.Informer().GetIndexer(), health: map[string]*nodeHealth{}}
	c.w = newWorker("nodelifecycle", cfg.Log, c.sync)
	if _, err := nodeInf.Informer().AddEventHandler(c.w.handler()); err != nil {
		return nil, err
	}
	// Like kube-controller-manager, every node it starts to watch gets a
	// RegisteredNode event (again after each restart).
	if _, err := nodeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: func(obj any) {
		if n, ok := obj.(*corev1.Node); ok {
			cfg.Recorder.Eventf(&corev1.ObjectReference{Kind: "Node", Name: n.Name, UID: n.UID}, corev1.EventTypeNormal, "RegisteredNode",
				"Node %s event: Registered Node %s in Controller", n.Name, n.Name)
		}
	}}); err != nil {
		return nil, err
	}
	onLease := func(obj any) {
		if l, ok := obj.(*coordinationv1.Lease); ok && l.Namespace == corev1.NamespaceNodeLease {
			c.w.queue.Add(l.Name)
		}
	}
	if _, err := leaseInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: onLease, UpdateFunc: func(_, o any) { onLease(o) }}); err != nil {
		return nil, err
	}
	c.synced = []cache.InformerSynced{nodeInf.Informer().HasSynced, leaseInf.Informer().HasSynced, podInf.Informer().HasSynced}
	return c, nil
}

// addPodNodeIndex indexes pods by node name (shared by the node
// controllers; adding it twice is fine).
func addPodNodeIndex(inf cache.SharedIndexInformer) error {
	if _, ok := inf.GetIndexer().GetIndexers()[podsByNode]; ok {
		return nil
	}
	err := inf.AddIndexers(cache.Indexers{podsByNode: func(obj any) ([]string, error) {
		if p, ok := obj.(*corev1.Pod); ok && p.Spec.NodeName != "" {
			return []string{p.Spec.NodeName}, nil
		}
		return nil, nil
	}})
	if err != nil {
		if _, ok := inf.GetIndexer().GetIndexers()[podsByNode]; ok {
			return nil // another controller added it first
		}
	}
	return err
}

func podsOnNode(idx cache.Indexer, node string) []*corev1.Pod {
	objs, _ := idx.ByIndex(podsByNode, node)
	out := make([]*corev1.Pod, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.(*corev1.Pod))
	}
	return out
}

// Run works until ctx ends.
func (c *NodeLifecycle) Run(ctx context.Context) error { return c.w.run(ctx, c.synced...) }

func readyCondition(n *corev1.Node) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == corev1.NodeReady {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

func (c *NodeLifecycle) sync(ctx context.Context, name string) error {
	node, err := c.nodes.Get(name)
	if apierrors.IsNotFound(err) {
		c.mu.Lock()
		delete(c.health, name)
		c.mu.Unlock()
		return nil
	}
	if err != nil {
		return err
	}
	now := time.Now()
	var renew time.Time
	if l, err := c.leases.Leases(corev1.NamespaceNodeLease).Get(name); err == nil && l.Spec.RenewTime != nil {
		renew = l.Spec.RenewTime.Time
	}
	var heartbeat time.Time
	if rc := readyCondition(node); rc != nil {
		heartbeat = rc.LastHeartbeatTime.Time
	}
	c.mu.Lock()
	h := c.health[name]
	if h == nil {
		// First sight (also after a restart of the daemon): the grace
		// period counts from now, like upstream.
		h = &nodeHealth{probe: now, renew: renew, heartbeat: heartbeat}
		c.health[name] = h
	}
	if !renew.Equal(h.renew) || !heartbeat.Equal(h.heartbeat) {
		h.probe, h.renew, h.heartbeat = now, renew, heartbeat
	}
	stale := now.Sub(h.probe) > c.cfg.GracePeriod
	deadline := h.probe.Add(c.cfg.GracePeriod)
	c.mu.Unlock()

	if stale {
		if err := c.markUnknown(ctx, node); err != nil {
			return err
		}
	} else {
		c.w.queue.AddAfter(name, time.Until(deadline)+time.Second)
	}
	return c.syncTaints(ctx, name)
}

// markUnknown sets the conditions a silent node's agent can no longer
// report to Unknown, and marks its pods not ready.
func (c *NodeLifecycle) markUnknown(ctx context.Context, node *corev1.Node) error {
	rc := readyCondition(node)
	if rc != nil && rc.Status == corev1.ConditionUnknown {
		return nil
	}
	next := node.DeepCopy()
	now := metav1.Now()
	msg := "Kubelet stopped posting node status."
	if rc == nil {
		msg = "Kubelet never posted node status."
	}
	for _, t := range []corev1.NodeConditionType{corev1.NodeReady, corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure} {
		found := false
		for i := range next.Status.Conditions {
			cond := &next.Status.Conditions[i]
			if cond.Type != t {
				continue
			}
			found = true
			if cond.Status != corev1.ConditionUnknown {
				cond.Status, cond.Reason, cond.Message, cond.LastTransitionTime = corev1.ConditionUnknown, "NodeStatusUnknown", msg, now
			}
		}
		if !found {
			next.Status.Conditions = append(next.Status.Conditions, corev1.NodeCondition{Type: t, Status: corev1.ConditionUnknown, Reason: "NodeStatusNeverUpdated",
				Message: "Kubelet never posted node status.", LastHeartbeatTime: node.CreationTimestamp, LastTransitionTime: now})
		}
	}
	if _, err := c.cfg.Client.CoreV1().Nodes().UpdateStatus(ctx, next, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("mark node %s unknown: %w", node.Name, err)
	}
	c.cfg.Recorder.Eventf(&corev1.ObjectReference{Kind: "Node", Name: node.Name, UID: node.UID}, corev1.EventTypeNormal, "NodeNotReady", "Node %s status is now: NodeNotReady", node.Name)
	for _, pod := range podsOnNode(c.pods, node.Name) {
		if err := c.markPodNotReady(ctx, pod); err != nil {
			c.cfg.Log.Info("mark pod not ready", "pod", pod.Namespace+"/"+pod.Name, "err", err)
		}
	}
	return nil
}

// markPodNotReady is upstream's MarkPodsNotReady for one pod.
func (c *NodeLifecycle) markPodNotReady(ctx context.Context, pod *corev1.Pod) error {
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return nil
	}
	next := pod.DeepCopy()
	changed := false
	for i := range next.Status.Conditions {
		cond := &next.Status.Conditions[i]
		if (cond.Type == corev1.PodReady || cond.Type == corev1.ContainersReady) && cond.Status != corev1.ConditionFalse {
			cond.Status, cond.LastTransitionTime, changed = corev1.ConditionFalse, metav1.Now(), true
		}
	}
	if !changed {
		return nil
	}
	if _, err := c.cfg.Client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	c.cfg.Recorder.Event(pod, corev1.EventTypeWarning, "NodeNotReady", "Node is not ready")
	return nil
}

// conditionTaints are upstream's TaintNodesByCondition and taint-based
// eviction taints for a node's state.
func conditionTaints(n *corev1.Node) []corev1.Taint {
	var out []corev1.Taint
	if rc := readyCondition(n); rc != nil {
		switch rc.Status {
		case corev1.ConditionFalse:
			out = append(out, corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoSchedule}, corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoExecute})
		case corev1.ConditionUnknown:
			out = append(out, corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoSchedule}, corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute})
		}
	}
	for _, cond := range n.Status.Conditions {
		if cond.Status != corev1.ConditionTrue {
			continue
		}
		switch cond.Type {
		case corev1.NodeMemoryPressure:
			out = append(out, corev1.Taint{Key: corev1.TaintNodeMemoryPressure, Effect: corev1.TaintEffectNoSchedule})
		case corev1.NodeDiskPressure:
			out = append(out, corev1.Taint{Key: corev1.TaintNodeDiskPressure, Effect: corev1.TaintEffectNoSchedule})
		case corev1.NodePIDPressure:
			out = append(out, corev1.Taint{Key: corev1.TaintNodePIDPressure, Effect: corev1.TaintEffectNoSchedule})
		case corev1.NodeNetworkUnavailable:
			out = append(out, corev1.Taint{Key: corev1.TaintNodeNetworkUnavailable, Effect: corev1.TaintEffectNoSchedule})
		}
	}
	if n.Spec.Unschedulable {
		out = append(out, corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule})
	}
	return out
}

// managedTaint reports whether this controller owns the taint's key.
func managedTaint(key string) bool {
	switch key {
	case corev1.TaintNodeNotReady, corev1.TaintNodeUnreachable, corev1.TaintNodeMemoryPressure, corev1.TaintNodeDiskPressure,
		corev1.TaintNodePIDPressure, corev1.TaintNodeNetworkUnavailable, corev1.TaintNodeUnschedulable:
		return true
	}
	return false
}

// syncTaints makes the node's managed taints match its state, keeping
// the other taints and the time NoExecute taints were added.
func (c *NodeLifecycle) syncTaints(ctx context.Context, name string) error {
	for attempt := 0; attempt < 5; attempt++ {
		node, err := c.nodes.Get(name)
		if attempt > 0 {
			node, err = c.cfg.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		}
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		want := conditionTaints(node)
		var next []corev1.Taint
		for _, t := range node.Spec.Taints {
			if !managedTaint(t.Key) {
				next = append(next, t)
			}
		}
		for _, t := range want {
			for _, old := range node.Spec.Taints {
				if old.Key == t.Key && old.Effect == t.Effect {
					t.TimeAdded = old.TimeAdded
				}
			}
			if t.Effect == corev1.TaintEffectNoExecute && t.TimeAdded == nil {
				now := metav1.Now()
				t.TimeAdded = &now
			}
			next = append(next, t)
		}
		if equality.Semantic.DeepEqual(next, node.Spec.Taints) || (len(next) == 0 && len(node.Spec.Taints) == 0) {
			return nil
		}
		upd := node.DeepCopy()
		upd.Spec.Taints = next
		_, err = c.cfg.Client.CoreV1().Nodes().Update(ctx, upd, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("update node %s taints: %w", name, err)
		}
		return nil
	}
	return fmt.Errorf("update node %s taints: too many conflicts", name)
}
