// Package scheduler assigns pods to nodes like kube-scheduler with its
// default plugins: filters (node unschedulable, node name, taints, node
// affinity, host ports, resources, topology spread, inter-pod affinity),
// weighted scores (least and balanced allocation, image locality,
// inter-pod and node affinity preferences, PreferNoSchedule taints,
// topology spread), preemption of lower-priority pods, and binding through
// the pods/binding subresource. Pods it bound but has not yet seen bound
// in its informer are "assumed", so a burst of pods does not overcommit.
// Like kube-scheduler's cache, each node's pods and request sums are kept
// from the informer's events and the assumptions (cache.go), so a
// scheduling attempt does not go over every pod.
package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
)

// Config builds the scheduler.
type Config struct {
	Client    kubernetes.Interface
	Informers informers.SharedInformerFactory
	Log       *slog.Logger
}

// Scheduler binds pending pods to nodes.
type Scheduler struct {
	cfg      Config
	pods     corelisters.PodLister
	nodes    corelisters.NodeLister
	nss      corelisters.NamespaceLister
	vols     volumeListers
	queue    workqueue.TypedRateLimitingInterface[string]
	synced   []cache.InformerSynced
	recorder record.EventRecorder
	bcast    record.EventBroadcaster

	// cache is the pods from the informer plus the ones bound by us and
	// not yet seen bound (assumed), kept incrementally.
	cache *podCache

	// binds are the bindings in flight: like kube-scheduler's binding
	// cycle they run beside the next pods' placement (the assumed pods
	// keep the placements consistent), so the store commits many of them
	// with one fsync instead of one pod per round trip.
	binds    sync.WaitGroup
	bindSlot chan struct{}
}

// maxBinds bounds the bindings in flight.
const maxBinds = 32

// New builds the scheduler.
func New(cfg Config) (*Scheduler, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	podInf := cfg.Informers.Core().V1().Pods()
	nodeInf := cfg.Informers.Core().V1().Nodes()
	nsInf := cfg.Informers.Core().V1().Namespaces()
	pvcInf := cfg.Informers.Core().V1().PersistentVolumeClaims()
	pvInf := cfg.Informers.Core().V1().PersistentVolumes()
	scInf := cfg.Informers.Storage().V1().StorageClasses()
	s := &Scheduler{
		cfg:      cfg,
		pods:     podInf.Lister(),
		nodes:    nodeInf.Lister(),
		nss:      nsInf.Lister(),
		vols:     volumeListers{claims: pvcInf.Lister(), volumes: pvInf.Lister(), classes: scInf.Lister()},
		cache:    newPodCache(),
		bindSlot: make(chan struct{}, maxBinds),
		queue:    workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](), workqueue.TypedRateLimitingQueueConfig[string]{Name: "scheduler"}),
	}
	s.bcast = record.NewBroadcaster()
	s.recorder = s.bcast.NewRecorder(scheme.Scheme, corev1.EventSource{Component: corev1.DefaultSchedulerName})
	enqueue := func(obj any) {
		if pod, ok := obj.(*corev1.Pod); ok && pending(pod) {
			if key, err := cache.MetaNamespaceKeyFunc(pod); err == nil {
				s.queue.Add(key)
			}
		}
	}
	// The cache is updated before the pod is queued, so its attempt sees
	// it.
	if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: func(o any) {
		if pod, ok := o.(*corev1.Pod); ok {
			s.cache.setPod(pod)
		}
		enqueue(o)
	}, UpdateFunc: func(_, o any) {
		if pod, ok := o.(*corev1.Pod); ok {
			s.cache.setPod(pod)
		}
		enqueue(o)
	}, DeleteFunc: func(o any) {
		if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
			o = t.Obj
		}
		if pod, ok := o.(*corev1.Pod); ok {
			s.cache.deletePod(pod.UID)
		}
	}}); err != nil {
		return nil, err
	}
	// A node that appears or changes may fit pods that did not fit before;
	// a pod that goes frees room.
	retryAll := func(any) { s.requeuePending() }
	if _, err := nodeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: retryAll, UpdateFunc: func(o, n any) {
		if nodeChanged(o.(*corev1.Node), n.(*corev1.Node)) {
			s.requeuePending()
		}
	}}); err != nil {
		return nil, err
	}
	if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{DeleteFunc: retryAll}); err != nil {
		return nil, err
	}
	// A claim, volume or class that appears may let a pod's volumes fit.
	for _, inf := range []cache.SharedIndexInformer{pvcInf.Informer(), pvInf.Informer(), scInf.Informer()} {
		if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: retryAll, UpdateFunc: func(_, o any) { s.requeuePending() }}); err != nil {
			return nil, err
		}
	}
	s.synced = []cache.InformerSynced{podInf.Informer().HasSynced, nodeInf.Informer().HasSynced, nsInf.Informer().HasSynced,
		pvcInf.Informer().HasSynced, pvInf.Informer().HasSynced, scInf.Informer().HasSynced}
	return s, nil
}

func pending(pod *corev1.Pod) bool {
	return pod.Spec.NodeName == "" && pod.DeletionTimestamp == nil &&
		(pod.Spec.SchedulerName == "" || pod.Spec.SchedulerName == corev1.DefaultSchedulerName) &&
		pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed
}

func nodeChanged(a, b *corev1.Node) bool {
	return a.Spec.Unschedulable != b.Spec.Unschedulable || fmt.Sprint(a.Spec.Taints) != fmt.Sprint(b.Spec.Taints) ||
		fmt.Sprint(a.Labels) != fmt.Sprint(b.Labels) || fmt.Sprint(a.Status.Allocatable) != fmt.Sprint(b.Status.Allocatable) ||
		readyOf(a) != readyOf(b)
}

func readyOf(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (s *Scheduler) requeuePending() {
	pods, err := s.pods.List(labels.Everything())
	if err != nil {
		return
	}
	for _, p := range pods {
		if pending(p) {
			s.queue.Add(p.Namespace + "/" + p.Name)
		}
	}
}

// Run schedules until ctx ends.
func (s *Scheduler) Run(ctx context.Context) error {
	defer s.queue.ShutDown()
	s.bcast.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: s.cfg.Client.CoreV1().Events("")})
	defer s.bcast.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), s.synced...) {
		return nil
	}
	go func() {
		<-ctx.Done()
		s.queue.ShutDown()
	}()
	defer s.binds.Wait()
	for {
		key, quit := s.queue.Get()
		if quit {
			return nil
		}
		if err := s.schedule(ctx, key); err != nil {
			s.cfg.Log.Info("scheduling retry", "pod", key, "err", err)
			s.queue.AddRateLimited(key)
		} else {
			s.queue.Forget(key)
		}
		s.queue.Done(key)
	}
}

// snapshot takes the pod cache (the informer's view plus the assumed
// pods) on the informer's nodes.
func (s *Scheduler) snapshot() (*snapshot, error) {
	nodes, err := s.nodes.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	nsLabels := map[string]map[string]string{}
	if nss, err := s.nss.List(labels.Everything()); err == nil {
		for _, ns := range nss {
			nsLabels[ns.Name] = ns.Labels
		}
	}
	return s.cache.snapshot(nodes, nsLabels), nil
}

// place finds the best node for pod; on failure it returns each node's
// verdict.
func place(pod *corev1.Pod, snap *snapshot) (string, map[string]*verdict) {
	verdicts := map[string]*verdict{}
	var fit []*nodeInfo
	for _, ni := range snap.nodes {
		if v := feasible(pod, ni, snap); v != nil {
			verdicts[ni.node.Name] = v
			continue
		}
		fit = append(fit, ni)
	}
	if len(fit) == 0 {
		return "", verdicts
	}
	scores := rank(pod, fit, snap)
	best := 0
	for i := range fit {
		if scores[i] > scores[best] || (scores[i] == scores[best] && fit[i].node.Name < fit[best].node.Name) {
			best = i
		}
	}
	return fit[best].node.Name, nil
}

func (s *Scheduler) schedule(ctx context.Context, key string) error {
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	pod, err := s.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil || !pending(pod) {
		return err
	}
	if s.cache.isAssumed(pod.UID) {
		return nil
	}
	snap, err := s.snapshot()
	if err != nil {
		return err
	}
	snap.volumes = s.vols.podVolumes(pod)
	node, verdicts := place(pod, snap)
	if node == "" {
		reasons := map[string]int{}
		for _, v := range verdicts {
			reasons[v.reason]++
		}
		msg := histogram(len(snap.nodes), reasons)
		if len(snap.nodes) > 0 {
			c, why := findCandidate(pod, snap, verdicts)
			if c != nil {
				if err := s.preempt(ctx, pod, c); err != nil {
					return err
				}
			} else {
				msg += " " + why
			}
		}
		s.recorder.Event(pod, corev1.EventTypeWarning, "FailedScheduling", msg)
		return s.markUnschedulable(ctx, pod, msg)
	}
	// Claims that wait for their first consumer are pointed at the node;
	// the pod is bound once they are (their update brings it back, and
	// their volumes' node affinity then holds it to that node), like
	// kube-scheduler's VolumeBinding PreBind.
	if snap.volumes != nil && len(snap.volumes.delayed) > 0 {
		for _, ni := range snap.nodes {
			if ni.node.Name == node {
				return s.selectNode(ctx, snap.volumes, ni.node)
			}
		}
		return fmt.Errorf("schedule %s/%s: node %s left the snapshot", pod.Namespace, pod.Name, node)
	}
	if snap.volumes != nil && snap.volumes.binding {
		return nil // the claim's status update brings the pod back
	}
	assumed := pod.DeepCopy()
	assumed.Spec.NodeName = node
	s.cache.assume(assumed)
	// The binding goes on beside the next placements; a failed one drops
	// the assumption and retries the pod.
	s.bindSlot <- struct{}{}
	s.binds.Add(1)
	go func() {
		defer s.binds.Done()
		defer func() { <-s.bindSlot }()
		if err := s.bind(ctx, pod, node); err != nil {
			s.cfg.Log.Info("scheduling retry", "pod", key, "err", err)
			s.queue.AddRateLimited(key)
		}
	}()
	return nil
}

// bind binds pod to node through the binding subresource.
func (s *Scheduler) bind(ctx context.Context, pod *corev1.Pod, node string) error {
	err := s.cfg.Client.CoreV1().Pods(pod.Namespace).Bind(ctx, &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: node},
	}, metav1.CreateOptions{})
	if err != nil {
		s.cache.forget(pod.UID)
	}
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil // bound or gone meanwhile
	}
	if err != nil {
		return fmt.Errorf("bind %s/%s to %s: %w", pod.Namespace, pod.Name, node, err)
	}
	s.recorder.Eventf(pod, corev1.EventTypeNormal, "Scheduled", "Successfully assigned %s/%s to %s", pod.Namespace, pod.Name, node)
	return nil
}

// markUnschedulable records PodScheduled=False like kube-scheduler; the pod
// is tried again when nodes or pods change.
func (s *Scheduler) markUnschedulable(ctx context.Context, pod *corev1.Pod, msg string) error {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Message == msg {
			return nil
		}
	}
	next := pod.DeepCopy()
	cond := corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable, Message: msg, LastTransitionTime: metav1.Now()}
	replaced := false
	for i := range next.Status.Conditions {
		if next.Status.Conditions[i].Type == corev1.PodScheduled {
			next.Status.Conditions[i], replaced = cond, true
		}
	}
	if !replaced {
		next.Status.Conditions = append(next.Status.Conditions, cond)
	}
	_, err := s.cfg.Client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// histogram is kube-scheduler's "0/3 nodes are available: 1 …, 2 …."
func histogram(total int, reasons map[string]int) string {
	if total == 0 {
		return "no nodes available to schedule pods"
	}
	var parts []string
	for r, n := range reasons {
		parts = append(parts, fmt.Sprintf("%d %s", n, r))
	}
	sort.Strings(parts)
	return fmt.Sprintf("0/%d nodes are available: %s.", total, strings.Join(parts, ", "))
}
