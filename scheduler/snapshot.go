package scheduler

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// nodeInfo is one node with the pods that occupy it: bound ones from the
// informer and the ones this scheduler assumed but has not seen bound yet.
type nodeInfo struct {
	node      *corev1.Node
	pods      []*corev1.Pod
	requested corev1.ResourceList
	// nonzero is requested with kube-scheduler's defaults (100m CPU,
	// 200Mi memory) for containers that ask for nothing; scores use it.
	nonzero corev1.ResourceList
}

func newNodeInfo(n *corev1.Node) *nodeInfo {
	return &nodeInfo{node: n, requested: corev1.ResourceList{}, nonzero: corev1.ResourceList{}}
}

func (ni *nodeInfo) add(p *corev1.Pod) {
	ni.pods = append(ni.pods, p)
	addTo(ni.requested, requests(p))
	addTo(ni.nonzero, nonzeroRequests(p))
}

// clone copies the node info so preemption can remove pods from it.
func (ni *nodeInfo) clone() *nodeInfo {
	c := newNodeInfo(ni.node)
	for _, p := range ni.pods {
		c.add(p)
	}
	return c
}

// without returns a copy without the given pods.
func (ni *nodeInfo) without(drop map[*corev1.Pod]bool) *nodeInfo {
	c := newNodeInfo(ni.node)
	for _, p := range ni.pods {
		if !drop[p] {
			c.add(p)
		}
	}
	return c
}

// snapshot is the cluster as one scheduling attempt sees it.
type snapshot struct {
	nodes  []*nodeInfo
	byName map[string]*nodeInfo
	// nsLabels are the namespaces' labels, for namespaceSelector terms.
	nsLabels map[string]map[string]string
	// nominated are pods that preempted others and wait for their room.
	nominated []*corev1.Pod
	// volumes are the claims of the pod being scheduled.
	volumes *podVolumes
}

func newSnapshot(nodes []*corev1.Node, pods []*corev1.Pod, nsLabels map[string]map[string]string) *snapshot {
	s := &snapshot{byName: map[string]*nodeInfo{}, nsLabels: nsLabels}
	for _, n := range nodes {
		ni := newNodeInfo(n)
		s.nodes = append(s.nodes, ni)
		s.byName[n.Name] = ni
	}
	for _, p := range pods {
		if terminal(p) {
			continue
		}
		if p.Spec.NodeName == "" {
			if p.Status.NominatedNodeName != "" && p.DeletionTimestamp == nil {
				s.nominated = append(s.nominated, p)
			}
			continue
		}
		if ni := s.byName[p.Spec.NodeName]; ni != nil {
			ni.add(p)
		}
	}
	return s
}

// allPods lists every pod placed on a node of the snapshot.
func (s *snapshot) allPods(fn func(p *corev1.Pod, ni *nodeInfo)) {
	for _, ni := range s.nodes {
		for _, p := range ni.pods {
			fn(p, ni)
		}
	}
}

func terminal(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

func addTo(sum, l corev1.ResourceList) {
	for k, v := range l {
		q := sum[k]
		q.Add(v)
		sum[k] = q
	}
}

// requests is what a pod asks for, as kube-scheduler computes it: the sum
// of its containers and restartable (sidecar) init containers, at least
// the largest regular init container, plus the pod overhead.
func requests(pod *corev1.Pod) corev1.ResourceList {
	return podRequests(pod, false)
}

func nonzeroRequests(pod *corev1.Pod) corev1.ResourceList {
	return podRequests(pod, true)
}

var (
	defaultMilliCPU = resource.MustParse("100m")
	defaultMemory   = resource.MustParse("200Mi")
)

func containerRequests(c *corev1.Container, nonzero bool) corev1.ResourceList {
	out := corev1.ResourceList{}
	for k, v := range c.Resources.Requests {
		out[k] = v.DeepCopy()
	}
	if nonzero {
		if _, ok := out[corev1.ResourceCPU]; !ok {
			out[corev1.ResourceCPU] = defaultMilliCPU.DeepCopy()
		}
		if _, ok := out[corev1.ResourceMemory]; !ok {
			out[corev1.ResourceMemory] = defaultMemory.DeepCopy()
		}
	}
	return out
}

func podRequests(pod *corev1.Pod, nonzero bool) corev1.ResourceList {
	sum := corev1.ResourceList{}
	for i := range pod.Spec.Containers {
		addTo(sum, containerRequests(&pod.Spec.Containers[i], nonzero))
	}
	sidecars := corev1.ResourceList{}
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		r := containerRequests(c, nonzero)
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			addTo(sum, r)
			addTo(sidecars, r)
			continue
		}
		// A regular init container runs next to the sidecars started
		// before it.
		withSidecars := corev1.ResourceList{}
		addTo(withSidecars, sidecars)
		addTo(withSidecars, r)
		for k, v := range withSidecars {
			if q, ok := sum[k]; !ok || v.Cmp(q) > 0 {
				sum[k] = v.DeepCopy()
			}
		}
	}
	addTo(sum, pod.Spec.Overhead)
	return sum
}
