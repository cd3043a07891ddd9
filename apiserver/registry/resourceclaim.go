package registry

import (
	"strings"

	resourcev1 "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Dynamic Resource Allocation objects (resource.k8s.io/v1) are stored and
// shown; no driver allocates them.

func resourceClaimBehaviour(r *Resource) {
	r.PrepareForCreate = func(obj runtime.Object) { obj.(*resourcev1.ResourceClaim).Status = resourcev1.ResourceClaimStatus{} }
	r.Table = &Table{
		Columns: []metav1.TableColumnDefinition{
			nameCol,
			col("State", "string", "A summary of the current state (allocated, pending, reserved, etc.)."),
			ageCol,
		},
		Row: func(obj runtime.Object) ([]interface{}, error) {
			c := obj.(*resourcev1.ResourceClaim)
			var states []string
			if c.DeletionTimestamp != nil {
				states = append(states, "deleted")
			}
			switch {
			case c.Status.Allocation == nil:
				if c.DeletionTimestamp == nil {
					states = append(states, "pending")
				}
			default:
				states = append(states, "allocated")
				if len(c.Status.ReservedFor) > 0 {
					states = append(states, "reserved")
				} else if c.DeletionTimestamp != nil {
					states = append(states, "deallocating")
				}
			}
			return []interface{}{c.Name, strings.Join(states, ","), age(c.CreationTimestamp)}, nil
		},
	}
}

func resourceSliceBehaviour(r *Resource) {
	r.Table = &Table{
		Columns: []metav1.TableColumnDefinition{
			nameCol,
			col("Node", "string", resourcev1.ResourceSliceSpec{}.SwaggerDoc()["nodeName"]),
			col("Driver", "string", resourcev1.ResourceSliceSpec{}.SwaggerDoc()["driver"]),
			col("Pool", "string", resourcev1.ResourcePool{}.SwaggerDoc()["name"]),
			ageCol,
		},
		Row: func(obj runtime.Object) ([]interface{}, error) {
			s := obj.(*resourcev1.ResourceSlice)
			node := ""
			if s.Spec.NodeName != nil {
				node = *s.Spec.NodeName
			}
			return []interface{}{s.Name, node, s.Spec.Driver, s.Spec.Pool.Name, age(s.CreationTimestamp)}, nil
		},
	}
}

// nameAgeTable is the table of kinds upstream prints with NAME and AGE only.
func nameAgeTable(r *Resource) {
	r.Table = &Table{
		Columns: []metav1.TableColumnDefinition{nameCol, ageCol},
		Row: func(obj runtime.Object) ([]interface{}, error) {
			m := obj.(metav1.Object)
			return []interface{}{m.GetName(), age(m.GetCreationTimestamp())}, nil
		},
	}
}
