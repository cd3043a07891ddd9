package scheduler

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// labelSelector turns a LabelSelector plus match/mismatch label keys (which
// copy the owner's values of those labels) into a selector. A nil selector
// matches nothing, like upstream.
func labelSelector(ls *metav1.LabelSelector, owner *corev1.Pod, matchKeys, mismatchKeys []string) labels.Selector {
	if ls == nil {
		return labels.Nothing()
	}
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		return labels.Nothing()
	}
	for _, k := range matchKeys {
		if v, ok := owner.Labels[k]; ok {
			if r, err := labels.NewRequirement(k, selection.In, []string{v}); err == nil {
				sel = sel.Add(*r)
			}
		}
	}
	for _, k := range mismatchKeys {
		if v, ok := owner.Labels[k]; ok {
			if r, err := labels.NewRequirement(k, selection.NotIn, []string{v}); err == nil {
				sel = sel.Add(*r)
			}
		}
	}
	return sel
}

// affinityTerm is a PodAffinityTerm resolved against the pod that owns it.
type affinityTerm struct {
	topologyKey string
	selector    labels.Selector
	namespaces  map[string]bool
	nsSelector  labels.Selector // nil: only namespaces
	weight      int32
}

func newAffinityTerm(t corev1.PodAffinityTerm, owner *corev1.Pod, weight int32) affinityTerm {
	at := affinityTerm{topologyKey: t.TopologyKey, weight: weight, namespaces: map[string]bool{},
		selector: labelSelector(t.LabelSelector, owner, t.MatchLabelKeys, t.MismatchLabelKeys)}
	for _, ns := range t.Namespaces {
		at.namespaces[ns] = true
	}
	if t.NamespaceSelector != nil {
		if sel, err := metav1.LabelSelectorAsSelector(t.NamespaceSelector); err == nil {
			at.nsSelector = sel
		}
	} else if len(t.Namespaces) == 0 {
		at.namespaces[owner.Namespace] = true
	}
	return at
}

func (t affinityTerm) matches(p *corev1.Pod, s *snapshot) bool {
	nsOK := t.namespaces[p.Namespace] || (t.nsSelector != nil && t.nsSelector.Matches(labels.Set(s.nsLabels[p.Namespace])))
	return nsOK && t.selector.Matches(labels.Set(p.Labels))
}

// sameTopology reports whether a and b share the term's topology domain.
func (t affinityTerm) sameTopology(a, b *corev1.Node) bool {
	va, ok := a.Labels[t.topologyKey]
	if !ok {
		return false
	}
	vb, ok := b.Labels[t.topologyKey]
	return ok && va == vb
}

func requiredAffinity(p *corev1.Pod) []affinityTerm {
	var out []affinityTerm
	if a := p.Spec.Affinity; a != nil && a.PodAffinity != nil {
		for _, t := range a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
			out = append(out, newAffinityTerm(t, p, 1))
		}
	}
	return out
}

func requiredAntiAffinity(p *corev1.Pod) []affinityTerm {
	var out []affinityTerm
	if a := p.Spec.Affinity; a != nil && a.PodAntiAffinity != nil {
		for _, t := range a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
			out = append(out, newAffinityTerm(t, p, 1))
		}
	}
	return out
}

func preferredTerms(p *corev1.Pod) (affinity, anti []affinityTerm) {
	a := p.Spec.Affinity
	if a == nil {
		return nil, nil
	}
	if a.PodAffinity != nil {
		for _, w := range a.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
			affinity = append(affinity, newAffinityTerm(w.PodAffinityTerm, p, w.Weight))
		}
	}
	if a.PodAntiAffinity != nil {
		for _, w := range a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
			anti = append(anti, newAffinityTerm(w.PodAffinityTerm, p, w.Weight))
		}
	}
	return affinity, anti
}

// filterInterPodAffinity is kube-scheduler's InterPodAffinity filter, in
// its order: the pod's required affinity, its required anti-affinity, then
// the existing pods' required anti-affinity.
func filterInterPodAffinity(pod *corev1.Pod, ni *nodeInfo, s *snapshot) *verdict {
	for _, t := range requiredAffinity(pod) {
		if _, ok := ni.node.Labels[t.topologyKey]; !ok {
			return fail("node(s) didn't match pod affinity rules")
		}
		found, anyMatch := false, false
		s.allPods(func(e *corev1.Pod, en *nodeInfo) {
			if e.UID == pod.UID || !t.matches(e, s) {
				return
			}
			anyMatch = true
			if t.sameTopology(en.node, ni.node) {
				found = true
			}
		})
		// The first pod of a group that asks to be near its own kind
		// may go anywhere.
		if !found && !(!anyMatch && t.matches(pod, s)) {
			return fail("node(s) didn't match pod affinity rules")
		}
	}
	for _, t := range requiredAntiAffinity(pod) {
		conflict := false
		s.allPods(func(e *corev1.Pod, en *nodeInfo) {
			if !conflict && e.UID != pod.UID && t.sameTopology(en.node, ni.node) && t.matches(e, s) {
				conflict = true
			}
		})
		if conflict {
			return resolvable("node(s) didn't match pod anti-affinity rules")
		}
	}
	var existingConflict bool
	s.allPods(func(e *corev1.Pod, en *nodeInfo) {
		if existingConflict || e.UID == pod.UID {
			return
		}
		for _, t := range requiredAntiAffinity(e) {
			if t.sameTopology(en.node, ni.node) && t.matches(pod, s) {
				existingConflict = true
				return
			}
		}
	})
	if existingConflict {
		return resolvable("node(s) didn't satisfy existing pods anti-affinity rules")
	}
	return nil
}

// interPodAffinityScore sums the weights of the pod's preferred terms that
// pods in the node's topology satisfy (anti-affinity subtracts), plus the
// existing pods' preferred terms that the incoming pod satisfies.
func interPodAffinityScore(pod *corev1.Pod, ni *nodeInfo, s *snapshot) int64 {
	aff, anti := preferredTerms(pod)
	var score int64
	s.allPods(func(e *corev1.Pod, en *nodeInfo) {
		if e.UID == pod.UID {
			return
		}
		for _, t := range aff {
			if t.sameTopology(en.node, ni.node) && t.matches(e, s) {
				score += int64(t.weight)
			}
		}
		for _, t := range anti {
			if t.sameTopology(en.node, ni.node) && t.matches(e, s) {
				score -= int64(t.weight)
			}
		}
		eAff, eAnti := preferredTerms(e)
		for _, t := range eAff {
			if t.sameTopology(en.node, ni.node) && t.matches(pod, s) {
				score += int64(t.weight)
			}
		}
		for _, t := range eAnti {
			if t.sameTopology(en.node, ni.node) && t.matches(pod, s) {
				score -= int64(t.weight)
			}
		}
	})
	return score
}
