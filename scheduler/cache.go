package scheduler

import (
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// podCache is the pods as the scheduler sees them, kept up to date from
// the pod informer's events and the scheduler's own assumptions, like
// kube-scheduler's cache: a scheduling attempt takes a snapshot of it in
// time proportional to the nodes and the pods' pointers, without listing
// every pod and summing every pod's requests again.
type podCache struct {
	mu sync.Mutex
	// informer is the informer's latest pod per UID, assumed what this
	// scheduler bound and has not seen bound yet.
	informer map[types.UID]*corev1.Pod
	assumed  map[types.UID]*corev1.Pod
	// placed is where each pod counts now: on a node or nominated.
	placed    map[types.UID]*cachedPod
	nodes     map[string]*cachedNode
	nominated map[types.UID]*corev1.Pod
}

type cachedPod struct {
	pod       *corev1.Pod
	requested corev1.ResourceList
	nonzero   corev1.ResourceList
}

type cachedNode struct {
	pods      map[types.UID]*cachedPod
	requested corev1.ResourceList
	nonzero   corev1.ResourceList
	// list is pods as a slice, rebuilt on the first snapshot after a
	// change; snapshots share it, nobody appends to it.
	list []*corev1.Pod
}

func newPodCache() *podCache {
	return &podCache{
		informer:  map[types.UID]*corev1.Pod{},
		assumed:   map[types.UID]*corev1.Pod{},
		placed:    map[types.UID]*cachedPod{},
		nodes:     map[string]*cachedNode{},
		nominated: map[types.UID]*corev1.Pod{},
	}
}

// setPod records the informer's pod (added or updated).
func (c *podCache) setPod(p *corev1.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.informer[p.UID] = p
	if p.Spec.NodeName != "" {
		delete(c.assumed, p.UID)
	}
	c.refresh(p.UID)
}

// deletePod drops a pod the informer no longer has.
func (c *podCache) deletePod(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.informer, uid)
	delete(c.assumed, uid)
	c.refresh(uid)
}

// assume counts pod (with its node set) as bound until the informer says so.
func (c *podCache) assume(p *corev1.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.assumed[p.UID] = p
	c.refresh(p.UID)
}

// forget drops an assumption (the binding failed, or the pod is bound).
func (c *podCache) forget(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.assumed[uid]; !ok {
		return
	}
	delete(c.assumed, uid)
	c.refresh(uid)
}

func (c *podCache) isAssumed(uid types.UID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.assumed[uid]
	return ok
}

// refresh moves uid to where it counts now, with the rules newSnapshot
// applies to a pod list: an unbound pod counts as its assumption, bound
// pods count on their node, unbound nominated ones as nominated, terminal
// ones nowhere. Callers hold c.mu.
func (c *podCache) refresh(uid types.UID) {
	if old := c.placed[uid]; old != nil {
		if n := c.nodes[old.pod.Spec.NodeName]; n != nil {
			delete(n.pods, uid)
			subFrom(n.requested, old.requested)
			subFrom(n.nonzero, old.nonzero)
			n.list = nil
			if len(n.pods) == 0 {
				delete(c.nodes, old.pod.Spec.NodeName)
			}
		}
		delete(c.placed, uid)
	}
	delete(c.nominated, uid)
	p := c.informer[uid]
	if p == nil {
		return
	}
	if a := c.assumed[uid]; a != nil && p.Spec.NodeName == "" {
		p = a
	}
	if terminal(p) {
		return
	}
	if p.Spec.NodeName == "" {
		if p.Status.NominatedNodeName != "" && p.DeletionTimestamp == nil {
			c.nominated[uid] = p
		}
		return
	}
	cp := &cachedPod{pod: p, requested: requests(p), nonzero: nonzeroRequests(p)}
	n := c.nodes[p.Spec.NodeName]
	if n == nil {
		n = &cachedNode{pods: map[types.UID]*cachedPod{}, requested: corev1.ResourceList{}, nonzero: corev1.ResourceList{}}
		c.nodes[p.Spec.NodeName] = n
	}
	n.pods[uid] = cp
	addTo(n.requested, cp.requested)
	addTo(n.nonzero, cp.nonzero)
	n.list = nil
	c.placed[uid] = cp
}

// snapshot is the cache on the given nodes. The node infos are the
// snapshot's own (preemption copies them; nothing adds to them).
func (c *podCache) snapshot(nodes []*corev1.Node, nsLabels map[string]map[string]string) *snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &snapshot{byName: map[string]*nodeInfo{}, nsLabels: nsLabels}
	for _, node := range nodes {
		ni := newNodeInfo(node)
		if n := c.nodes[node.Name]; n != nil {
			if n.list == nil {
				n.list = make([]*corev1.Pod, 0, len(n.pods))
				for _, cp := range n.pods {
					n.list = append(n.list, cp.pod)
				}
			}
			// A full slice: an append by a reader copies it.
			ni.pods = n.list[:len(n.list):len(n.list)]
			addTo(ni.requested, n.requested)
			addTo(ni.nonzero, n.nonzero)
		}
		s.nodes = append(s.nodes, ni)
		s.byName[node.Name] = ni
	}
	for _, p := range c.nominated {
		s.nominated = append(s.nominated, p)
	}
	return s
}

func subFrom(sum, l corev1.ResourceList) {
	for k, v := range l {
		q := sum[k]
		q.Sub(v)
		sum[k] = q
	}
}
