package scheduler

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"

	"github.com/nanokube/nanokube/internal/volumematch"
)

// annSelectedNode tells the provisioner of a WaitForFirstConsumer claim
// where its first pod goes.
const annSelectedNode = "volume.kubernetes.io/selected-node"

// annBoundByController marks a volume the binder (here the scheduler)
// bound, not the user.
const annBoundByController = "pv.kubernetes.io/bound-by-controller"

// podVolumes is kube-scheduler's VolumeBinding state for one pod: the
// volumes its bound claims hold (their node affinity filters nodes) and
// the WaitForFirstConsumer claims still to bind, with every volume they
// may take.
type podVolumes struct {
	unresolvable string
	bound        []*corev1.PersistentVolume
	delayed      []delayedClaim
	volumes      []*corev1.PersistentVolume
	// binding is set while a claim has its volume but is still Pending:
	// the binder's second write (the claim's status) is on its way, and
	// the pod is bound only after it, so the node agent finds the claim
	// Bound.
	binding bool
}

// delayedClaim is an unbound WaitForFirstConsumer claim and its class.
type delayedClaim struct {
	pvc   *corev1.PersistentVolumeClaim
	class *storagev1.StorageClass
}

// Upstream's VolumeBinding reasons.
const (
	reasonBindConflict = "node(s) didn't find available persistent volumes to bind"
	reasonNodeConflict = "node(s) had volume node affinity conflict"
)

// volumeListers are the caches the volume binding reads.
type volumeListers struct {
	claims  corelisters.PersistentVolumeClaimLister
	volumes corelisters.PersistentVolumeLister
	classes storagelisters.StorageClassLister
}

// podVolumes resolves the pod's claims (nil when it has none).
func (l volumeListers) podVolumes(pod *corev1.Pod) *podVolumes {
	var pv *podVolumes
	for _, v := range pod.Spec.Volumes {
		if v.PersistentVolumeClaim == nil {
			continue
		}
		if pv == nil {
			pv = &podVolumes{}
		}
		name := v.PersistentVolumeClaim.ClaimName
		pvc, err := l.claims.PersistentVolumeClaims(pod.Namespace).Get(name)
		if err != nil {
			pv.unresolvable = fmt.Sprintf("persistentvolumeclaim %q not found", name)
			return pv
		}
		if pvc.DeletionTimestamp != nil {
			pv.unresolvable = fmt.Sprintf("persistentvolumeclaim %q is being deleted", name)
			return pv
		}
		if pvc.Spec.VolumeName != "" {
			vol, err := l.volumes.Get(pvc.Spec.VolumeName)
			if err != nil {
				pv.unresolvable = "pvc(s) bound to non-existent pv(s)"
				return pv
			}
			pv.bound = append(pv.bound, vol)
			pv.binding = pv.binding || pvc.Status.Phase == corev1.ClaimPending
			continue
		}
		class := ""
		if pvc.Spec.StorageClassName != nil {
			class = *pvc.Spec.StorageClassName
		}
		sc, err := l.classes.Get(class)
		if err != nil || sc.VolumeBindingMode == nil || *sc.VolumeBindingMode != storagev1.VolumeBindingWaitForFirstConsumer {
			pv.unresolvable = "pod has unbound immediate PersistentVolumeClaims"
			return pv
		}
		pv.delayed = append(pv.delayed, delayedClaim{pvc: pvc, class: sc})
	}
	if pv != nil && len(pv.delayed) > 0 {
		all, err := l.volumes.List(labels.Everything())
		if err != nil {
			pv.unresolvable = fmt.Sprintf("list persistent volumes: %v", err)
			return pv
		}
		pv.volumes = all
	}
	return pv
}

// bindings is upstream's FindPodVolumes for one node: each delayed claim
// gets the smallest available volume that fits it and that the node
// reaches (no volume twice), or else is provisioned there, which its
// class must allow; a claim whose node was already selected binds only
// there. ok is false when the node cannot host the claims.
func (v *podVolumes) bindings(n *corev1.Node) (binds map[*corev1.PersistentVolumeClaim]*corev1.PersistentVolume, provision []*corev1.PersistentVolumeClaim, ok bool) {
	binds = map[*corev1.PersistentVolumeClaim]*corev1.PersistentVolume{}
	taken := map[string]bool{}
	for _, d := range v.delayed {
		if sel, has := d.pvc.Annotations[annSelectedNode]; has {
			if sel != n.Name || !volumematch.CanProvision(d.class, n) {
				return nil, nil, false
			}
			provision = append(provision, d.pvc)
			continue
		}
		pv := volumematch.Smallest(d.pvc, v.volumes, func(pv *corev1.PersistentVolume) bool {
			return !taken[pv.Name] && volumematch.Reachable(pv, n)
		})
		if pv != nil {
			taken[pv.Name] = true
			binds[d.pvc] = pv
			continue
		}
		if !volumematch.CanProvision(d.class, n) {
			return nil, nil, false
		}
		provision = append(provision, d.pvc)
	}
	return binds, provision, true
}

// filterVolumes is VolumeBinding's filter: the volumes of bound claims
// must be reachable from the node, and each WaitForFirstConsumer claim
// needs a volume the node reaches or a class that provisions there.
func filterVolumes(_ *corev1.Pod, ni *nodeInfo, s *snapshot) *verdict {
	if s.volumes == nil {
		return nil
	}
	if s.volumes.unresolvable != "" {
		return fail(s.volumes.unresolvable)
	}
	for _, vol := range s.volumes.bound {
		if !volumematch.Reachable(vol, ni.node) {
			return fail(reasonNodeConflict)
		}
	}
	if len(s.volumes.delayed) > 0 {
		if _, _, ok := s.volumes.bindings(ni.node); !ok {
			return fail(reasonBindConflict)
		}
	}
	return nil
}

// selectNode is VolumeBinding's PreBind for delayed claims on the chosen
// node: a matching volume is pre-bound to its claim (claimRef, as
// kube-scheduler does; the binder completes the binding), the others get
// the selected-node annotation the provisioner waits for.
func (s *Scheduler) selectNode(ctx context.Context, vols *podVolumes, n *corev1.Node) error {
	if vols == nil {
		return nil
	}
	binds, provision, ok := vols.bindings(n)
	if !ok {
		return fmt.Errorf("volumes of the pod no longer fit node %s", n.Name)
	}
	for pvc, pv := range binds {
		next := pv.DeepCopy()
		next.Spec.ClaimRef = &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: pvc.Namespace, Name: pvc.Name,
			UID: pvc.UID, ResourceVersion: pvc.ResourceVersion}
		metav1.SetMetaDataAnnotation(&next.ObjectMeta, annBoundByController, "yes")
		if _, err := s.cfg.Client.CoreV1().PersistentVolumes().Update(ctx, next, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("pre-bind volume %s to claim %s/%s: %w", pv.Name, pvc.Namespace, pvc.Name, err)
		}
	}
	for _, pvc := range provision {
		if pvc.Annotations[annSelectedNode] == n.Name {
			continue
		}
		patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{annSelectedNode: n.Name}}})
		_, err := s.cfg.Client.CoreV1().PersistentVolumeClaims(pvc.Namespace).Patch(ctx, pvc.Name, types.MergePatchType, patch, metav1.PatchOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("select node %s for claim %s/%s: %w", n.Name, pvc.Namespace, pvc.Name, err)
		}
	}
	return nil
}
