package scheduler

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/klog/v2"
)

// pick returns the best node for pod, or "" with the reasons each node
// was rejected (counted per reason, as kube-scheduler reports them).
func pick(pod *corev1.Pod, nodes []*corev1.Node, pods []*corev1.Pod) (string, map[string]int) {
	reasons := map[string]int{}
	best, bestScore := "", -1.0
	for _, n := range nodes {
		onNode := podsOn(n.Name, pods)
		if r := filter(pod, n, onNode); r != "" {
			reasons[r]++
			continue
		}
		if s := score(pod, n, onNode); s > bestScore || (s == bestScore && n.Name < best) {
			best, bestScore = n.Name, s
		}
	}
	return best, reasons
}

func podsOn(node string, pods []*corev1.Pod) []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range pods {
		if p.Spec.NodeName == node && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			out = append(out, p)
		}
	}
	return out
}

// filter returns why node cannot run pod, or "".
func filter(pod *corev1.Pod, n *corev1.Node, onNode []*corev1.Pod) string {
	if pod.Spec.NodeName != "" && pod.Spec.NodeName != n.Name {
		return "node(s) didn't match the requested node name"
	}
	if n.Spec.Unschedulable && !tolerates(pod, corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule}) {
		return "node(s) were unschedulable"
	}
	if !matchesSelector(pod, n) {
		return "node(s) didn't match Pod's node affinity/selector"
	}
	for _, t := range n.Spec.Taints {
		if (t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute) && !tolerates(pod, t) {
			return fmt.Sprintf("node(s) had untolerated taint {%s: %s}", t.Key, t.Value)
		}
	}
	if r := fits(pod, n, onNode); r != "" {
		return r
	}
	used := map[int32]bool{}
	for _, p := range onNode {
		for _, c := range p.Spec.Containers {
			for _, port := range c.Ports {
				if port.HostPort != 0 {
					used[port.HostPort] = true
				}
			}
		}
	}
	for _, c := range pod.Spec.Containers {
		for _, port := range c.Ports {
			if port.HostPort != 0 && used[port.HostPort] {
				return "node(s) didn't have free ports for the requested pod ports"
			}
		}
	}
	return ""
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

func termMatches(term corev1.NodeSelectorTerm, n *corev1.Node) bool {
	if len(term.MatchExpressions) == 0 && len(term.MatchFields) == 0 {
		return false
	}
	sel := labels.NewSelector()
	for _, e := range term.MatchExpressions {
		op := map[corev1.NodeSelectorOperator]selection.Operator{
			corev1.NodeSelectorOpIn: selection.In, corev1.NodeSelectorOpNotIn: selection.NotIn, corev1.NodeSelectorOpExists: selection.Exists,
			corev1.NodeSelectorOpDoesNotExist: selection.DoesNotExist, corev1.NodeSelectorOpGt: selection.GreaterThan, corev1.NodeSelectorOpLt: selection.LessThan,
		}[e.Operator]
		req, err := labels.NewRequirement(e.Key, op, e.Values)
		if err != nil {
			return false
		}
		sel = sel.Add(*req)
	}
	for _, f := range term.MatchFields {
		if f.Key == "metadata.name" && f.Operator == corev1.NodeSelectorOpIn {
			found := false
			for _, v := range f.Values {
				found = found || v == n.Name
			}
			if !found {
				return false
			}
		}
	}
	return sel.Matches(labels.Set(n.Labels))
}

// requests sums what a pod asks for (init containers count by their max).
func requests(pod *corev1.Pod) corev1.ResourceList {
	sum := corev1.ResourceList{}
	for _, c := range pod.Spec.Containers {
		for k, v := range c.Resources.Requests {
			q := sum[k]
			q.Add(v)
			sum[k] = q
		}
	}
	for _, c := range pod.Spec.InitContainers {
		for k, v := range c.Resources.Requests {
			if q, ok := sum[k]; !ok || v.Cmp(q) > 0 {
				sum[k] = v.DeepCopy()
			}
		}
	}
	return sum
}

// fits checks requests against the node's allocatable minus what its pods use.
func fits(pod *corev1.Pod, n *corev1.Node, onNode []*corev1.Pod) string {
	if max, ok := n.Status.Allocatable[corev1.ResourcePods]; ok && int64(len(onNode)) >= max.Value() {
		return "Too many pods"
	}
	want := requests(pod)
	used := corev1.ResourceList{}
	for _, p := range onNode {
		for k, v := range requests(p) {
			q := used[k]
			q.Add(v)
			used[k] = q
		}
	}
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage} {
		w, ok := want[name]
		if !ok || w.IsZero() {
			continue
		}
		alloc, ok := n.Status.Allocatable[name]
		if !ok {
			continue
		}
		free := alloc.DeepCopy()
		u := used[name]
		free.Sub(u)
		if w.Cmp(free) > 0 {
			return "Insufficient " + string(name)
		}
	}
	return ""
}

// score prefers the least allocated node (cpu and memory fractions).
func score(pod *corev1.Pod, n *corev1.Node, onNode []*corev1.Pod) float64 {
	used := requests(pod)
	for _, p := range onNode {
		for k, v := range requests(p) {
			q := used[k]
			q.Add(v)
			used[k] = q
		}
	}
	frac := func(name corev1.ResourceName) float64 {
		alloc, ok := n.Status.Allocatable[name]
		if !ok || alloc.IsZero() {
			return 0
		}
		u := used[name]
		return float64(u.MilliValue()) / float64(alloc.MilliValue())
	}
	return 2 - frac(corev1.ResourceCPU) - frac(corev1.ResourceMemory) - float64(len(onNode))*1e-6
}
