// Package volumematch holds what the persistent-volume binder and the
// scheduler's volume binding both decide: whether a volume can hold a
// claim, whether a node reaches a volume, and whether a class may
// provision on a node.
package volumematch

import (
	"sort"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// NoProvisioner is the provisioner of classes for pre-created volumes
// only (local volumes).
const NoProvisioner = "kubernetes.io/no-provisioner"

// ClaimClass is the claim's storage class name ("" for none).
func ClaimClass(pvc *corev1.PersistentVolumeClaim) string {
	if pvc.Spec.StorageClassName != nil {
		return *pvc.Spec.StorageClassName
	}
	return ""
}

// Fits reports whether pv can hold pvc: class, access modes, volume mode,
// selector and capacity.
func Fits(pvc *corev1.PersistentVolumeClaim, pv *corev1.PersistentVolume) bool {
	if pv.Spec.StorageClassName != ClaimClass(pvc) {
		return false
	}
	modes := map[corev1.PersistentVolumeAccessMode]bool{}
	for _, m := range pv.Spec.AccessModes {
		modes[m] = true
	}
	for _, m := range pvc.Spec.AccessModes {
		if !modes[m] {
			return false
		}
	}
	mode := func(m *corev1.PersistentVolumeMode) corev1.PersistentVolumeMode {
		if m == nil {
			return corev1.PersistentVolumeFilesystem
		}
		return *m
	}
	if mode(pv.Spec.VolumeMode) != mode(pvc.Spec.VolumeMode) {
		return false
	}
	if pvc.Spec.Selector != nil {
		sel, err := metav1.LabelSelectorAsSelector(pvc.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(pv.Labels)) {
			return false
		}
	}
	want := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	have := pv.Spec.Capacity[corev1.ResourceStorage]
	return have.Cmp(want) >= 0
}

// Available reports whether pv is free to bind: not being deleted, not
// claimed, Available (or not yet given a phase).
func Available(pv *corev1.PersistentVolume) bool {
	return pv.DeletionTimestamp == nil && pv.Spec.ClaimRef == nil &&
		(pv.Status.Phase == corev1.VolumeAvailable || pv.Status.Phase == corev1.VolumePending || pv.Status.Phase == "")
}

// Smallest is the smallest available volume that fits pvc and that keep
// accepts (nil for none), ties broken by name, like the binder's choice.
func Smallest(pvc *corev1.PersistentVolumeClaim, pvs []*corev1.PersistentVolume, keep func(*corev1.PersistentVolume) bool) *corev1.PersistentVolume {
	var fit []*corev1.PersistentVolume
	for _, pv := range pvs {
		if Available(pv) && Fits(pvc, pv) && (keep == nil || keep(pv)) {
			fit = append(fit, pv)
		}
	}
	sort.Slice(fit, func(i, j int) bool {
		a, b := fit[i].Spec.Capacity[corev1.ResourceStorage], fit[j].Spec.Capacity[corev1.ResourceStorage]
		if d := a.Cmp(b); d != 0 {
			return d < 0
		}
		return fit[i].Name < fit[j].Name
	})
	if len(fit) == 0 {
		return nil
	}
	return fit[0]
}

// Reachable reports whether the node satisfies the volume's required node
// affinity (a volume without one is reachable everywhere).
func Reachable(pv *corev1.PersistentVolume, n *corev1.Node) bool {
	if pv.Spec.NodeAffinity == nil || pv.Spec.NodeAffinity.Required == nil {
		return true
	}
	for _, t := range pv.Spec.NodeAffinity.Required.NodeSelectorTerms {
		if TermMatches(t, n) {
			return true
		}
	}
	return false
}

// CanProvision reports whether the class provisions dynamically on the
// node: it has a provisioner and its allowedTopologies admit the node.
func CanProvision(sc *storagev1.StorageClass, n *corev1.Node) bool {
	if sc.Provisioner == "" || sc.Provisioner == NoProvisioner {
		return false
	}
	if len(sc.AllowedTopologies) == 0 {
		return true
	}
	for _, t := range sc.AllowedTopologies {
		ok := true
		for _, e := range t.MatchLabelExpressions {
			v, has := n.Labels[e.Key]
			found := false
			for _, want := range e.Values {
				found = found || (has && v == want)
			}
			ok = ok && found
		}
		if ok {
			return true
		}
	}
	return false
}

var nodeSelectorOps = map[corev1.NodeSelectorOperator]selection.Operator{
	corev1.NodeSelectorOpIn: selection.In, corev1.NodeSelectorOpNotIn: selection.NotIn, corev1.NodeSelectorOpExists: selection.Exists,
	corev1.NodeSelectorOpDoesNotExist: selection.DoesNotExist, corev1.NodeSelectorOpGt: selection.GreaterThan, corev1.NodeSelectorOpLt: selection.LessThan,
}

// TermMatches is a NodeSelectorTerm: all of its expressions and fields
// must match; an empty term matches nothing.
func TermMatches(term corev1.NodeSelectorTerm, n *corev1.Node) bool {
	if len(term.MatchExpressions) == 0 && len(term.MatchFields) == 0 {
		return false
	}
	sel := labels.NewSelector()
	for _, e := range term.MatchExpressions {
		req, err := labels.NewRequirement(e.Key, nodeSelectorOps[e.Operator], e.Values)
		if err != nil {
			return false
		}
		sel = sel.Add(*req)
	}
	for _, f := range term.MatchFields {
		if f.Key != "metadata.name" {
			return false
		}
		req, err := labels.NewRequirement("metadata.name", nodeSelectorOps[f.Operator], f.Values)
		if err != nil || !req.Matches(labels.Set{"metadata.name": n.Name}) {
			return false
		}
	}
	return sel.Matches(labels.Set(n.Labels))
}
