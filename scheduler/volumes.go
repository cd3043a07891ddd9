package scheduler

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
)

// annSelectedNode tells the provisioner of a WaitForFirstConsumer claim
// where its first pod goes.
const annSelectedNode = "volume.kubernetes.io/selected-node"

// podVolumes is kube-scheduler's VolumeBinding state for one pod: the
// volumes its bound claims hold (their node affinity filters nodes) and
// the WaitForFirstConsumer claims to point at the chosen node.
type podVolumes struct {
	unresolvable string
	bound        []*corev1.PersistentVolume
	delayed      []*corev1.PersistentVolumeClaim
}

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
		pv.delayed = append(pv.delayed, pvc)
	}
	return pv
}

// filterVolumes is VolumeBinding's filter: the volumes of bound claims
// must be reachable from the node.
func filterVolumes(_ *corev1.Pod, ni *nodeInfo, s *snapshot) *verdict {
	if s.volumes == nil {
		return nil
	}
	if s.volumes.unresolvable != "" {
		return fail(s.volumes.unresolvable)
	}
	for _, vol := range s.volumes.bound {
		if vol.Spec.NodeAffinity == nil || vol.Spec.NodeAffinity.Required == nil {
			continue
		}
		ok := false
		for _, t := range vol.Spec.NodeAffinity.Required.NodeSelectorTerms {
			ok = ok || termMatches(t, ni.node)
		}
		if !ok {
			return fail("node(s) had volume node affinity conflict")
		}
	}
	return nil
}

// selectNode is VolumeBinding's PreBind for delayed claims: each gets the
// selected-node annotation the provisioner waits for.
func (s *Scheduler) selectNode(ctx context.Context, vols *podVolumes, node string) error {
	if vols == nil {
		return nil
	}
	for _, pvc := range vols.delayed {
		if pvc.Annotations[annSelectedNode] == node {
			continue
		}
		patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{annSelectedNode: node}}})
		_, err := s.cfg.Client.CoreV1().PersistentVolumeClaims(pvc.Namespace).Patch(ctx, pvc.Name, types.MergePatchType, patch, metav1.PatchOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("select node %s for claim %s/%s: %w", node, pvc.Namespace, pvc.Name, err)
		}
	}
	return nil
}
