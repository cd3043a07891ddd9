package registry

import (
	"strings"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
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
	r.ValidateUpdate = func(obj, old runtime.Object) field.ErrorList {
		return validateClaimUpdate(obj.(*corev1.PersistentVolumeClaim), old.(*corev1.PersistentVolumeClaim))
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
	r.ValidateUpdate = func(obj, old runtime.Object) field.ErrorList {
		return validateVolumeUpdate(obj.(*corev1.PersistentVolume), old.(*corev1.PersistentVolume))
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

// betaStorageClass is the claim annotation that preceded
// spec.storageClassName.
const betaStorageClass = "volume.beta.kubernetes.io/storage-class"

// validateClaimUpdate is upstream's ValidatePersistentVolumeClaimUpdate:
// the spec is immutable except volumeName (set once, by the binder),
// storageClassName set from nil (the retroactive default class, or the
// beta annotation's value), and for bound claims resources.requests
// (expansion) and volumeAttributesClassName. A request may shrink back
// only while it stays above status.capacity (recovery from a failed
// expansion); volumeMode is immutable.
func validateClaimUpdate(cur, old *corev1.PersistentVolumeClaim) field.ErrorList {
	var errs field.ErrorList
	spec, oldSpec := cur.Spec.DeepCopy(), old.Spec.DeepCopy()
	if old.Spec.VolumeName == "" {
		oldSpec.VolumeName = spec.VolumeName
	}
	oldAnn, hadAnn := old.Annotations[betaStorageClass]
	newAnn, hasAnn := cur.Annotations[betaStorageClass]
	switch {
	case hadAnn && (!hasAnn || newAnn == oldAnn) && old.Spec.StorageClassName == nil &&
		cur.Spec.StorageClassName != nil && *cur.Spec.StorageClassName == oldAnn:
		spec.StorageClassName = nil
	default:
		if newAnn != oldAnn {
			errs = append(errs, field.Invalid(field.NewPath("metadata", "annotations", betaStorageClass), newAnn, "field is immutable"))
		}
		if !hadAnn && (old.Spec.StorageClassName == nil || *old.Spec.StorageClassName == "") &&
			cur.Spec.StorageClassName != nil && *cur.Spec.StorageClassName != "" {
			spec.StorageClassName = oldSpec.StorageClassName
		}
	}
	bound := cur.Status.Phase == corev1.ClaimBound
	if bound && spec.Resources.Requests != nil {
		spec.Resources.Requests[corev1.ResourceStorage] = old.Spec.Resources.Requests[corev1.ResourceStorage]
	}
	if bound && spec.VolumeAttributesClassName != nil {
		spec.VolumeAttributesClassName = oldSpec.VolumeAttributesClassName
	}
	if !apiequality.Semantic.DeepEqual(*spec, *oldSpec) {
		errs = append(errs, field.Forbidden(field.NewPath("spec"),
			"spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n"+cmp.Diff(*oldSpec, *spec)))
	}
	oldSize := old.Spec.Resources.Requests[corev1.ResourceStorage]
	newSize := cur.Spec.Resources.Requests[corev1.ResourceStorage]
	statusSize := old.Status.Capacity[corev1.ResourceStorage]
	if newSize.Cmp(oldSize) < 0 && newSize.Cmp(statusSize) <= 0 {
		errs = append(errs, field.Forbidden(field.NewPath("spec", "resources", "requests", "storage"), "field can not be less than status.capacity"))
	}
	return append(errs, apivalidation.ValidateImmutableField(cur.Spec.VolumeMode, old.Spec.VolumeMode, field.NewPath("volumeMode"))...)
}

// validateVolumeUpdate is upstream's ValidatePersistentVolumeUpdate: the
// volume source is immutable (a CSI controllerExpandSecretRef may be
// added), so are volumeMode and a node affinity once set.
func validateVolumeUpdate(cur, old *corev1.PersistentVolume) field.ErrorList {
	var errs field.ErrorList
	src := cur.Spec.PersistentVolumeSource.DeepCopy()
	if old.Spec.CSI != nil && old.Spec.CSI.ControllerExpandSecretRef == nil && src.CSI != nil {
		src.CSI.ControllerExpandSecretRef = nil
	}
	if !apiequality.Semantic.DeepEqual(*src, old.Spec.PersistentVolumeSource) {
		errs = append(errs, field.Forbidden(field.NewPath("spec", "persistentvolumesource"),
			"spec.persistentvolumesource is immutable after creation\n"+cmp.Diff(old.Spec.PersistentVolumeSource, *src)))
	}
	errs = append(errs, apivalidation.ValidateImmutableField(cur.Spec.VolumeMode, old.Spec.VolumeMode, field.NewPath("volumeMode"))...)
	if old.Spec.NodeAffinity != nil {
		errs = append(errs, apivalidation.ValidateImmutableField(cur.Spec.NodeAffinity, old.Spec.NodeAffinity, field.NewPath("nodeAffinity"))...)
	}
	return errs
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
