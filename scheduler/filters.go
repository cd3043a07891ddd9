package scheduler

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/klog/v2"

	"github.com/nanokube/nanokube/internal/volumematch"
)

// verdict is why a node cannot run a pod. resolvable tells preemption
// whether removing pods from the node could help (kube-scheduler's
// Unschedulable versus UnschedulableAndUnresolvable).
type verdict struct {
	reason     string
	resolvable bool
}

func fail(reason string) *verdict       { return &verdict{reason: reason} }
func resolvable(reason string) *verdict { return &verdict{reason: reason, resolvable: true} }

// filter is one of kube-scheduler's filter plugins.
type filter func(pod *corev1.Pod, ni *nodeInfo, s *snapshot) *verdict

// filters run in kube-scheduler's order; the first failure is the reason.
var filters = []filter{
	filterNodeUnschedulable,
	filterNodeName,
	filterTaints,
	filterNodeAffinity,
	filterNodePorts,
	filterVolumes,
	filterResources,
	filterTopologySpread,
	filterInterPodAffinity,
}

// feasible runs every filter; nil means the pod fits.
func feasible(pod *corev1.Pod, ni *nodeInfo, s *snapshot) *verdict {
	for _, f := range filters {
		if v := f(pod, ni, s); v != nil {
			return v
		}
	}
	return nil
}

func filterNodeName(pod *corev1.Pod, ni *nodeInfo, _ *snapshot) *verdict {
	if pod.Spec.NodeName != "" && pod.Spec.NodeName != ni.node.Name {
		return fail("node(s) didn't match the requested node name")
	}
	return nil
}

func filterNodeUnschedulable(pod *corev1.Pod, ni *nodeInfo, _ *snapshot) *verdict {
	if ni.node.Spec.Unschedulable && !tolerates(pod, corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule}) {
		return fail("node(s) were unschedulable")
	}
	return nil
}

func filterTaints(pod *corev1.Pod, ni *nodeInfo, _ *snapshot) *verdict {
	for _, t := range ni.node.Spec.Taints {
		if (t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute) && !tolerates(pod, t) {
			return fail(fmt.Sprintf("node(s) had untolerated taint {%s: %s}", t.Key, t.Value))
		}
	}
	return nil
}

func filterNodeAffinity(pod *corev1.Pod, ni *nodeInfo, _ *snapshot) *verdict {
	if !matchesSelector(pod, ni.node) {
		return fail("node(s) didn't match Pod's node affinity/selector")
	}
	return nil
}

type hostPort struct {
	ip       string
	protocol corev1.Protocol
	port     int32
}

func podHostPorts(p *corev1.Pod) []hostPort {
	var out []hostPort
	add := func(cs []corev1.Container, sidecarsOnly bool) {
		for _, c := range cs {
			if sidecarsOnly && (c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways) {
				continue
			}
			for _, port := range c.Ports {
				if port.HostPort == 0 {
					continue
				}
				hp := hostPort{ip: port.HostIP, protocol: port.Protocol, port: port.HostPort}
				if hp.ip == "" {
					hp.ip = "0.0.0.0"
				}
				if hp.protocol == "" {
					hp.protocol = corev1.ProtocolTCP
				}
				out = append(out, hp)
			}
		}
	}
	add(p.Spec.InitContainers, true)
	add(p.Spec.Containers, false)
	return out
}

func portsConflict(a, b hostPort) bool {
	return a.port == b.port && a.protocol == b.protocol && (a.ip == b.ip || a.ip == "0.0.0.0" || b.ip == "0.0.0.0")
}

func filterNodePorts(pod *corev1.Pod, ni *nodeInfo, _ *snapshot) *verdict {
	want := podHostPorts(pod)
	if len(want) == 0 {
		return nil
	}
	for _, p := range ni.pods {
		for _, used := range podHostPorts(p) {
			for _, w := range want {
				if portsConflict(w, used) {
					return resolvable("node(s) didn't have free ports for the requested pod ports")
				}
			}
		}
	}
	return nil
}

// filterResources checks requests against the node's allocatable minus
// what its pods (and higher-priority nominated pods) request.
func filterResources(pod *corev1.Pod, ni *nodeInfo, s *snapshot) *verdict {
	count := len(ni.pods)
	used := corev1.ResourceList{}
	addTo(used, ni.requested)
	for _, n := range s.nominated {
		if n.Status.NominatedNodeName == ni.node.Name && n.UID != pod.UID && priorityOf(n) >= priorityOf(pod) {
			addTo(used, requests(n))
			count++
		}
	}
	if max, ok := ni.node.Status.Allocatable[corev1.ResourcePods]; ok && int64(count) >= max.Value() {
		return resolvable("Too many pods")
	}
	want := requests(pod)
	for name, w := range want {
		if w.IsZero() {
			continue
		}
		alloc, ok := ni.node.Status.Allocatable[name]
		if !ok {
			if isExtendedResource(name) {
				return resolvable("Insufficient " + string(name))
			}
			continue
		}
		free := alloc.DeepCopy()
		free.Sub(used[name])
		if w.Cmp(free) > 0 {
			return resolvable("Insufficient " + string(name))
		}
	}
	return nil
}

// isExtendedResource is a resource a node must advertise to run the pod
// (vendor.com/gpu and the like): everything but the native ones.
func isExtendedResource(name corev1.ResourceName) bool {
	switch name {
	case corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage, corev1.ResourcePods, corev1.ResourceStorage:
		return false
	}
	return !isHugePages(name)
}

func isHugePages(name corev1.ResourceName) bool {
	return len(name) > len(corev1.ResourceHugePagesPrefix) && string(name[:len(corev1.ResourceHugePagesPrefix)]) == corev1.ResourceHugePagesPrefix
}

func tolerates(pod *corev1.Pod, t corev1.Taint) bool {
	for _, tol := range pod.Spec.Tolerations {
		if tol.ToleratesTaint(klog.Background(), &t, false) {
			return true
		}
	}
	return false
}

func matchesSelector(pod *corev1.Pod, n *corev1.Node) bool {
	if len(pod.Spec.NodeSelector) > 0 && !labels.SelectorFromSet(pod.Spec.NodeSelector).Matches(labels.Set(n.Labels)) {
		return false
	}
	aff := pod.Spec.Affinity
	if aff == nil || aff.NodeAffinity == nil || aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return true
	}
	for _, term := range aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		if termMatches(term, n) {
			return true
		}
	}
	return false
}

// termMatches is a NodeSelectorTerm: all of its expressions and fields
// must match; an empty term matches nothing.
var termMatches = volumematch.TermMatches

func priorityOf(p *corev1.Pod) int32 {
	if p.Spec.Priority != nil {
		return *p.Spec.Priority
	}
	return 0
}
