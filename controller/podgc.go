package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// PodGCConfig builds the pod garbage collector.
type PodGCConfig struct {
	Client    kubernetes.Interface
	Informers informers.SharedInformerFactory
	Log       *slog.Logger
	// TerminatedThreshold: above this many Succeeded/Failed pods the oldest
	// go (upstream's --terminated-pod-gc-threshold, 12500).
	TerminatedThreshold int
	// Quarantine: how long a node must stay gone before its pods are
	// removed (upstream waits 40s).
	Quarantine time.Duration
}

// PodGC removes pods nothing else will, like kube-controller-manager's
// pod garbage collector: the oldest terminated pods above the threshold,
// pods bound to nodes that no longer exist, and terminating pods of
// nodes tainted out-of-service. It works on informer events instead of a
// 20-second scan.
type PodGC struct {
	cfg    PodGCConfig
	pods   corelisters.PodLister
	nodes  corelisters.NodeLister
	byNode cache.Indexer
	synced []cache.InformerSynced
	w      *worker
}

// Work items of the pod GC: one key per kind of sweep, node keys for
// orphan checks.
const (
	gcTerminated = "terminated"
	gcNodePrefix = "node/"
)

// NewPodGC builds the controller.
func NewPodGC(cfg PodGCConfig) (*PodGC, error) {
	if cfg.TerminatedThreshold == 0 {
		cfg.TerminatedThreshold = 12500
	}
	if cfg.Quarantine == 0 {
		cfg.Quarantine = 40 * time.Second
	}
	podInf := cfg.Informers.Core().V1().Pods()
	nodeInf := cfg.Informers.Core().V1().Nodes()
	if err := addPodNodeIndex(podInf.Informer()); err != nil {
		return nil, err
	}
	c := &PodGC{cfg: cfg, pods: podInf.Lister(), nodes: nodeInf.Lister(), byNode: podInf.Informer().GetIndexer()}
	c.w = newWorker("podgc", cfg.Log, c.sync)
	// The terminated pods, kept by the handler (informer handlers run one
	// at a time): the threshold sweep lists pods only when it is crossed.
	terminated := map[types.UID]bool{}
	onPod := func(obj any) {
		p, ok := obj.(*corev1.Pod)
		if !ok {
			return
		}
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			terminated[p.UID] = true
			if len(terminated) > cfg.TerminatedThreshold {
				c.w.queue.AddAfter(gcTerminated, time.Second)
			}
		}
		if p.Spec.NodeName != "" {
			if _, err := c.nodes.Get(p.Spec.NodeName); apierrors.IsNotFound(err) {
				c.w.queue.AddAfter(gcNodePrefix+p.Spec.NodeName, cfg.Quarantine)
			}
		}
		if p.DeletionTimestamp != nil && p.Spec.NodeName != "" {
			c.w.queue.Add(gcNodePrefix + p.Spec.NodeName)
		}
	}
	if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: onPod, UpdateFunc: func(_, o any) { onPod(o) },
		DeleteFunc: func(o any) {
			if m, ok := metaOf(o); ok {
				delete(terminated, m.GetUID())
			}
		}}); err != nil {
		return nil, err
	}
	if _, err := nodeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(_, o any) {
			if n, ok := o.(*corev1.Node); ok && outOfService(n) {
				c.w.queue.Add(gcNodePrefix + n.Name)
			}
		},
		DeleteFunc: func(o any) {
			if m, ok := metaOf(o); ok {
				c.w.queue.AddAfter(gcNodePrefix+m.GetName(), cfg.Quarantine)
			}
		},
	}); err != nil {
		return nil, err
	}
	c.synced = []cache.InformerSynced{podInf.Informer().HasSynced, nodeInf.Informer().HasSynced}
	return c, nil
}

// Run works until ctx ends.
func (c *PodGC) Run(ctx context.Context) error {
	c.w.queue.Add(gcTerminated)
	return c.w.run(ctx, c.synced...)
}

func outOfService(n *corev1.Node) bool {
	for _, t := range n.Spec.Taints {
		if t.Key == corev1.TaintNodeOutOfService {
			return true
		}
	}
	return false
}

func (c *PodGC) sync(ctx context.Context, key string) error {
	if key == gcTerminated {
		return c.gcTerminated(ctx)
	}
	if len(key) > len(gcNodePrefix) && key[:len(gcNodePrefix)] == gcNodePrefix {
		return c.gcNode(ctx, key[len(gcNodePrefix):])
	}
	return nil
}

// gcTerminated deletes the oldest terminated pods above the threshold.
func (c *PodGC) gcTerminated(ctx context.Context) error {
	all, err := c.pods.List(labels.Everything())
	if err != nil {
		return err
	}
	var done []*corev1.Pod
	for _, p := range all {
		if (p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed) && p.DeletionTimestamp == nil {
			done = append(done, p)
		}
	}
	excess := len(done) - c.cfg.TerminatedThreshold
	if excess <= 0 {
		return nil
	}
	sort.Slice(done, func(i, j int) bool { return done[i].CreationTimestamp.Before(&done[j].CreationTimestamp) })
	var errs []error
	for _, p := range done[:excess] {
		errs = append(errs, c.forceDelete(ctx, p, ""))
	}
	return errors.Join(errs...)
}

// gcNode removes the pods of a node that is gone (after the quarantine),
// and the terminating pods of a node tainted out-of-service whose agent
// is not ready to confirm them.
func (c *PodGC) gcNode(ctx context.Context, name string) error {
	node, err := c.nodes.Get(name)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	if apierrors.IsNotFound(err) {
		// Ask the API, not the cache, before deleting anything.
		if _, err := c.cfg.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{}); err == nil || !apierrors.IsNotFound(err) {
			return err
		}
		var errs []error
		for _, p := range podsOnNode(c.byNode, name) {
			errs = append(errs, c.forceDelete(ctx, p, "PodGC: node no longer exists"))
		}
		return errors.Join(errs...)
	}
	if !outOfService(node) {
		return nil
	}
	if rc := readyCondition(node); rc != nil && rc.Status == corev1.ConditionTrue {
		return nil
	}
	var errs []error
	for _, p := range podsOnNode(c.byNode, name) {
		if p.DeletionTimestamp != nil {
			errs = append(errs, c.forceDelete(ctx, p, "PodGC: node is out of service"))
		}
	}
	return errors.Join(errs...)
}

// forceDelete deletes a pod without waiting for its node; a pod that had
// not ended is marked Failed with the DisruptionTarget reason first.
func (c *PodGC) forceDelete(ctx context.Context, p *corev1.Pod, why string) error {
	if why != "" && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
		next := p.DeepCopy()
		next.Status.Phase = corev1.PodFailed
		setCondition(&next.Status.Conditions, corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: "DeletionByPodGC", Message: why, LastTransitionTime: metav1.Now()})
		if _, err := c.cfg.Client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return fmt.Errorf("mark pod %s/%s failed: %w", p.Namespace, p.Name, err)
		}
	}
	zero := int64(0)
	uid := p.UID
	err := c.cfg.Client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("delete pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	c.cfg.Log.Info("pod garbage collected", "pod", p.Namespace+"/"+p.Name, "reason", why)
	return nil
}
