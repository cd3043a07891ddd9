package scheduler

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// spreadConstraint is a topologySpreadConstraint resolved for one pod.
type spreadConstraint struct {
	maxSkew       int32
	topologyKey   string
	selector      labels.Selector
	minDomains    int32
	honorAffinity bool
	honorTaints   bool
}

func constraintsOf(pod *corev1.Pod, action corev1.UnsatisfiableConstraintAction) []spreadConstraint {
	var out []spreadConstraint
	for _, c := range pod.Spec.TopologySpreadConstraints {
		if c.WhenUnsatisfiable != action {
			continue
		}
		sc := spreadConstraint{maxSkew: c.MaxSkew, topologyKey: c.TopologyKey,
			selector:      labelSelector(c.LabelSelector, pod, c.MatchLabelKeys, nil),
			honorAffinity: c.NodeAffinityPolicy == nil || *c.NodeAffinityPolicy == corev1.NodeInclusionPolicyHonor,
			honorTaints:   c.NodeTaintsPolicy != nil && *c.NodeTaintsPolicy == corev1.NodeInclusionPolicyHonor}
		if c.MinDomains != nil {
			sc.minDomains = *c.MinDomains
		}
		out = append(out, sc)
	}
	return out
}

// defaultSpread is kube-scheduler's system default for pods a controller
// owns and that bring no constraints of their own: spread over hostnames
// with maxSkew 3, as a preference. The pod's own labels stand in for the
// owner's selector.
func defaultSpread(pod *corev1.Pod) []spreadConstraint {
	if len(pod.Spec.TopologySpreadConstraints) > 0 || metav1.GetControllerOf(pod) == nil || len(pod.Labels) == 0 {
		return nil
	}
	return []spreadConstraint{{maxSkew: 3, topologyKey: corev1.LabelHostname, selector: labels.SelectorFromSet(pod.Labels), honorAffinity: true}}
}

// eligible reports whether node n counts for constraint c of pod.
func (c spreadConstraint) eligible(pod *corev1.Pod, n *corev1.Node, all []spreadConstraint) bool {
	for _, o := range all {
		if _, ok := n.Labels[o.topologyKey]; !ok {
			return false
		}
	}
	if c.honorAffinity && !matchesSelector(pod, n) {
		return false
	}
	if c.honorTaints {
		for _, t := range n.Spec.Taints {
			if (t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute) && !tolerates(pod, t) {
				return false
			}
		}
	}
	return true
}

// counts is how many matching pods each topology domain holds.
func (c spreadConstraint) counts(pod *corev1.Pod, s *snapshot, all []spreadConstraint) map[string]int {
	domains := map[string]int{}
	for _, ni := range s.nodes {
		if !c.eligible(pod, ni.node, all) {
			continue
		}
		v := ni.node.Labels[c.topologyKey]
		n := domains[v]
		for _, p := range ni.pods {
			if p.Namespace == pod.Namespace && p.DeletionTimestamp == nil && p.UID != pod.UID && c.selector.Matches(labels.Set(p.Labels)) {
				n++
			}
		}
		domains[v] = n
	}
	return domains
}

func filterTopologySpread(pod *corev1.Pod, ni *nodeInfo, s *snapshot) *verdict {
	hard := constraintsOf(pod, corev1.DoNotSchedule)
	for _, c := range hard {
		v, ok := ni.node.Labels[c.topologyKey]
		if !ok {
			return fail("node(s) didn't match pod topology spread constraints (missing required label)")
		}
		domains := c.counts(pod, s, hard)
		min := -1
		for _, n := range domains {
			if min < 0 || n < min {
				min = n
			}
		}
		if min < 0 || int32(len(domains)) < c.minDomains {
			min = 0
		}
		self := 0
		if c.selector.Matches(labels.Set(pod.Labels)) {
			self = 1
		}
		if int32(domains[v]+self-min) > c.maxSkew {
			return resolvable("node(s) didn't match pod topology spread constraints")
		}
	}
	return nil
}

// spreadScore counts matching pods in the node's domains for the soft
// constraints (lower is better); ok is false when the node lacks a key.
func spreadScore(pod *corev1.Pod, ni *nodeInfo, s *snapshot, soft []spreadConstraint, counts []map[string]int) (int64, bool) {
	var sum int64
	for i, c := range soft {
		v, ok := ni.node.Labels[c.topologyKey]
		if !ok {
			return 0, false
		}
		sum += int64(counts[i][v])
	}
	return sum, true
}
