package registry

import (
	"reflect"
	"strings"

	storagev1 "k8s.io/api/storage/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func csiDriverBehaviour(r *Resource) {
	r.Default = func(obj runtime.Object) {
		d := obj.(*storagev1.CSIDriver)
		if d.Spec.AttachRequired == nil {
			d.Spec.AttachRequired = boolPtr(true)
		}
		if d.Spec.PodInfoOnMount == nil {
			d.Spec.PodInfoOnMount = boolPtr(false)
		}
		if d.Spec.StorageCapacity == nil {
			d.Spec.StorageCapacity = boolPtr(false)
		}
		if d.Spec.FSGroupPolicy == nil {
			p := storagev1.ReadWriteOnceWithFSTypeFSGroupPolicy
			d.Spec.FSGroupPolicy = &p
		}
		if len(d.Spec.VolumeLifecycleModes) == 0 {
			d.Spec.VolumeLifecycleModes = []storagev1.VolumeLifecycleMode{storagev1.VolumeLifecyclePersistent}
		}
		if d.Spec.RequiresRepublish == nil {
			d.Spec.RequiresRepublish = boolPtr(false)
		}
		if d.Spec.SELinuxMount == nil {
			d.Spec.SELinuxMount = boolPtr(false)
		}
	}
	doc := storagev1.CSIDriverSpec{}.SwaggerDoc()
	r.Table = &Table{
		Columns: []metav1.TableColumnDefinition{
			nameCol,
			col("AttachRequired", "boolean", doc["attachRequired"]),
			col("PodInfoOnMount", "boolean", doc["podInfoOnMount"]),
			col("StorageCapacity", "boolean", doc["storageCapacity"]),
			col("TokenRequests", "string", doc["tokenRequests"]),
			col("RequiresRepublish", "boolean", doc["requiresRepublish"]),
			col("Modes", "string", doc["volumeLifecycleModes"]),
			ageCol,
		},
		Row: func(obj runtime.Object) ([]interface{}, error) {
			d := obj.(*storagev1.CSIDriver)
			tokens := "<unset>"
			if d.Spec.TokenRequests != nil {
				var auds []string
				for _, t := range d.Spec.TokenRequests {
					auds = append(auds, t.Audience)
				}
				tokens = strings.Join(auds, ",")
			}
			var modes []string
			for _, m := range d.Spec.VolumeLifecycleModes {
				modes = append(modes, string(m))
			}
			return []interface{}{d.Name, derefBool(d.Spec.AttachRequired, true), derefBool(d.Spec.PodInfoOnMount, false), derefBool(d.Spec.StorageCapacity, false),
				tokens, derefBool(d.Spec.RequiresRepublish, false), strings.Join(modes, ","), age(d.CreationTimestamp)}, nil
		},
	}
}

func derefBool(p *bool, def bool) bool {
	if p == nil {
		return def
	}
	return *p
}

func csiNodeBehaviour(r *Resource) {
	r.Table = &Table{
		Columns: []metav1.TableColumnDefinition{nameCol, col("Drivers", "integer", "Drivers indicates the number of CSI drivers registered on the node"), ageCol},
		Row: func(obj runtime.Object) ([]interface{}, error) {
			n := obj.(*storagev1.CSINode)
			return []interface{}{n.Name, int64(len(n.Spec.Drivers)), age(n.CreationTimestamp)}, nil
		},
	}
}

func csiStorageCapacityBehaviour(r *Resource) {
	doc := storagev1.CSIStorageCapacity{}.SwaggerDoc()
	r.Table = &Table{
		Columns: []metav1.TableColumnDefinition{nameCol, col("StorageClassName", "string", doc["storageClassName"]), col("Capacity", "string", doc["capacity"])},
		Row: func(obj runtime.Object) ([]interface{}, error) {
			c := obj.(*storagev1.CSIStorageCapacity)
			capacity := "<unset>"
			if c.Capacity != nil {
				capacity = c.Capacity.String()
			}
			return []interface{}{c.Name, c.StorageClassName, capacity}, nil
		},
	}
}

func volumeAttachmentBehaviour(r *Resource) {
	r.PrepareForCreate = func(obj runtime.Object) {
		obj.(*storagev1.VolumeAttachment).Status = storagev1.VolumeAttachmentStatus{}
	}
	r.Table = &Table{
		Columns: []metav1.TableColumnDefinition{
			nameCol,
			col("Attacher", "string", storagev1.VolumeAttachmentSpec{}.SwaggerDoc()["attacher"]),
			col("PV", "string", storagev1.VolumeAttachmentSource{}.SwaggerDoc()["persistentVolumeName"]),
			col("Node", "string", storagev1.VolumeAttachmentSpec{}.SwaggerDoc()["nodeName"]),
			col("Attached", "boolean", storagev1.VolumeAttachmentStatus{}.SwaggerDoc()["attached"]),
			ageCol,
		},
		Row: func(obj runtime.Object) ([]interface{}, error) {
			va := obj.(*storagev1.VolumeAttachment)
			pv := ""
			if va.Spec.Source.PersistentVolumeName != nil {
				pv = *va.Spec.Source.PersistentVolumeName
			}
			return []interface{}{va.Name, va.Spec.Attacher, pv, va.Spec.NodeName, va.Status.Attached, age(va.CreationTimestamp)}, nil
		},
	}
}

func volumeAttributesClassBehaviour(r *Resource) {
	r.Validate = func(obj runtime.Object) field.ErrorList {
		if obj.(*storagev1.VolumeAttributesClass).DriverName == "" {
			return field.ErrorList{field.Required(field.NewPath("driverName"), "")}
		}
		return nil
	}
	r.ValidateUpdate = func(obj, old runtime.Object) field.ErrorList {
		n, o := obj.(*storagev1.VolumeAttributesClass), old.(*storagev1.VolumeAttributesClass)
		errs := apivalidation.ValidateImmutableField(n.DriverName, o.DriverName, field.NewPath("driverName"))
		if !reflect.DeepEqual(n.Parameters, o.Parameters) {
			errs = append(errs, field.Forbidden(field.NewPath("parameters"), "updates to parameters are forbidden."))
		}
		return errs
	}
	r.Table = &Table{
		Columns: []metav1.TableColumnDefinition{nameCol, col("DriverName", "string", storagev1.VolumeAttributesClass{}.SwaggerDoc()["driverName"]), ageCol},
		Row: func(obj runtime.Object) ([]interface{}, error) {
			c := obj.(*storagev1.VolumeAttributesClass)
			return []interface{}{c.Name, c.DriverName, age(c.CreationTimestamp)}, nil
		},
	}
}
