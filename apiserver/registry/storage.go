package registry

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// accessModes is upstream's GetAccessModesAsString (RWO,ROX,RWX,RWOP).
func accessModes(modes []corev1.PersistentVolumeAccessMode) string {
	short := map[corev1.PersistentVolumeAccessMode]string{corev1.ReadWriteOnce: "RWO", corev1.ReadOnlyMany: "ROX",
		corev1.ReadWriteMany: "RWX", corev1.ReadWriteOncePod: "RWOP"}
	var out []string
	for _, m := range []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce, corev1.ReadOnlyMany, corev1.ReadWriteMany, corev1.ReadWriteOncePod} {
		for _, x := range modes {
			if x == m {
				out = append(out, short[m])
				break
			}
		}
	}
	return strings.Join(out, ",")
}

func volumeModeString(m *corev1.PersistentVolumeMode) string {
	if m == nil {
		return "<unset>"
	}
	return string(*m)
}

func attributesClass(c *string) string {
	if c == nil || *c == "" {
		return "<unset>"
	}
	return *c
}

func persistentVolumeClaimBehaviour(r *Resource) {
	r.Default = func(obj runtime.Object) {
		c := obj.(*corev1.PersistentVolumeClaim)
		if c.Spec.VolumeMode == nil {
			fs := corev1.PersistentVolumeFilesystem
			c.Spec.VolumeMode = &fs
		}
	}
	r.PrepareForCreate = func(obj runtime.Object) {
		obj.(*corev1.PersistentVolumeClaim).Status = corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending}
	}
	r.Table = &Table{
		Columns: []metav1.TableColumnDefinition{
			nameCol,
			col("Status", "string", "The phase of the claim"),
			col("Volume", "string", "The volume bound to the claim"),
			col("Capacity", "string", "The capacity of the volume"),
			col("Access Modes", "string", "The access modes of the volume"),
			col("StorageClass", "string", "The storage class of the claim"),
			col("VolumeAttributesClass", "string", "The volume attributes class of the claim"),
			ageCol,
			wide(col("VolumeMode", "string", "The volume mode of the claim")),
		},
		Row: func(obj runtime.Object) ([]interface{}, error) {
			c := obj.(*corev1.PersistentVolumeClaim)
			phase := string(c.Status.Phase)
			if c.DeletionTimestamp != nil {
				phase = "Terminating"
			}
			capacity, modes := "", ""
			if c.Spec.VolumeName != "" {
				modes = accessModes(c.Status.AccessModes)
				if q, ok := c.Status.Capacity[corev1.ResourceStorage]; ok {
					capacity = q.String()
				}
			}
			class := ""
			if c.Spec.StorageClassName != nil {
				class = *c.Spec.StorageClassName
			}
			return []interface{}{c.Name, phase, c.Spec.VolumeName, capacity, modes, class, attributesClass(c.Spec.VolumeAttributesClassName),
				age(c.CreationTimestamp), volumeModeString(c.Spec.VolumeMode)}, nil
		},
	}
}

func persistentVolumeBehaviour(r *Resource) {
	r.Default = func(obj runtime.Object) {
		v := obj.(*corev1.PersistentVolume)
		if v.Spec.PersistentVolumeReclaimPolicy == "" {
			v.Spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimRetain
		}
		if v.Spec.VolumeMode == nil {
			fs := corev1.PersistentVolumeFilesystem
			v.Spec.VolumeMode = &fs
		}
	}
	r.PrepareForCreate = func(obj runtime.Object) {
		obj.(*corev1.PersistentVolume).Status = corev1.PersistentVolumeStatus{Phase: corev1.VolumePending}
	}
	r.Table = &Table{
		Columns: []metav1.TableColumnDefinition{
			nameCol,
			col("Capacity", "string", "The capacity of the volume"),
			col("Access Modes", "string", "The access modes of the volume"),
			col("Reclaim Policy", "string", "What happens to the volume when its claim goes"),
			col("Status", "string", "The phase of the volume"),
			col("Claim", "string", "The claim bound to the volume"),
			col("StorageClass", "string", "The storage class of the volume"),
			col("VolumeAttributesClass", "string", "The volume attributes class of the volume"),
			col("Reason", "string", "Why the volume is in its phase"),
			ageCol,
			wide(col("VolumeMode", "string", "The volume mode of the volume")),
		},
		Row: func(obj runtime.Object) ([]interface{}, error) {
			v := obj.(*corev1.PersistentVolume)
			phase := string(v.Status.Phase)
			if v.DeletionTimestamp != nil {
				phase = "Terminating"
			}
			claim := ""
			if v.Spec.ClaimRef != nil {
				claim = v.Spec.ClaimRef.Namespace + "/" + v.Spec.ClaimRef.Name
			}
			capacity := ""
			if q, ok := v.Spec.Capacity[corev1.ResourceStorage]; ok {
				capacity = q.String()
			}
			return []interface{}{v.Name, capacity, accessModes(v.Spec.AccessModes), string(v.Spec.PersistentVolumeReclaimPolicy), phase, claim,
				v.Spec.StorageClassName, attributesClass(v.Spec.VolumeAttributesClassName), v.Status.Reason, age(v.CreationTimestamp), volumeModeString(v.Spec.VolumeMode)}, nil
		},
	}
}

func storageClassBehaviour(r *Resource) {
	r.Default = func(obj runtime.Object) {
		sc := obj.(*storagev1.StorageClass)
		if sc.ReclaimPolicy == nil {
			del := corev1.PersistentVolumeReclaimDelete
			sc.ReclaimPolicy = &del
		}
		if sc.VolumeBindingMode == nil {
			imm := storagev1.VolumeBindingImmediate
			sc.VolumeBindingMode = &imm
		}
	}
	r.Table = &Table{
		Columns: []metav1.TableColumnDefinition{
			nameCol,
			col("Provisioner", "string", "Indicates the type of the provisioner."),
			col("ReclaimPolicy", "string", "Indicates the type of the reclaim policy."),
			col("VolumeBindingMode", "string", "Indicates when volume binding and dynamic provisioning should occur."),
			col("AllowVolumeExpansion", "string", "Indicates whether the storage class allow volume expand."),
			ageCol,
		},
		Row: func(obj runtime.Object) ([]interface{}, error) {
			sc := obj.(*storagev1.StorageClass)
			name := sc.Name
			if sc.Annotations["storageclass.kubernetes.io/is-default-class"] == "true" || sc.Annotations["storageclass.beta.kubernetes.io/is-default-class"] == "true" {
				name += " (default)"
			}
			reclaim, mode := "Delete", "Immediate"
			if sc.ReclaimPolicy != nil {
				reclaim = string(*sc.ReclaimPolicy)
			}
			if sc.VolumeBindingMode != nil {
				mode = string(*sc.VolumeBindingMode)
			}
			expand := sc.AllowVolumeExpansion != nil && *sc.AllowVolumeExpansion
			return []interface{}{name, sc.Provisioner, reclaim, mode, expand, age(sc.CreationTimestamp)}, nil
		},
	}
}
