package registry

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func limitRangeBehaviour(r *Resource) {
	r.Default = func(obj runtime.Object) {
		lr := obj.(*corev1.LimitRange)
		for i := range lr.Spec.Limits {
			defaultLimitRangeItem(&lr.Spec.Limits[i])
		}
	}
	r.Validate = func(obj runtime.Object) field.ErrorList {
		lr := obj.(*corev1.LimitRange)
		var errs field.ErrorList
		for i, it := range lr.Spec.Limits {
			p := field.NewPath("spec", "limits").Index(i)
			switch it.Type {
			case corev1.LimitTypePod, corev1.LimitTypeContainer, corev1.LimitTypePersistentVolumeClaim:
			default:
				errs = append(errs, field.NotSupported(p.Child("type"), it.Type, []string{string(corev1.LimitTypePod), string(corev1.LimitTypeContainer), string(corev1.LimitTypePersistentVolumeClaim)}))
			}
			for name, min := range it.Min {
				if max, ok := it.Max[name]; ok && min.Cmp(max) > 0 {
					errs = append(errs, field.Invalid(p.Child("min").Key(string(name)), min.String(), fmt.Sprintf("min value %s is greater than max value %s", min.String(), max.String())))
				}
				if d, ok := it.DefaultRequest[name]; ok && min.Cmp(d) > 0 {
					errs = append(errs, field.Invalid(p.Child("defaultRequest").Key(string(name)), d.String(), fmt.Sprintf("min value %s is greater than default request value %s", min.String(), d.String())))
				}
			}
			for name, d := range it.Default {
				if max, ok := it.Max[name]; ok && d.Cmp(max) > 0 {
					errs = append(errs, field.Invalid(p.Child("default").Key(string(name)), d.String(), fmt.Sprintf("default value %s is greater than max value %s", d.String(), max.String())))
				}
				if req, ok := it.DefaultRequest[name]; ok && req.Cmp(d) > 0 {
					errs = append(errs, field.Invalid(p.Child("defaultRequest").Key(string(name)), req.String(), fmt.Sprintf("default request value %s is greater than default limit value %s", req.String(), d.String())))
				}
			}
			if it.Type == corev1.LimitTypePod && (len(it.Default) > 0 || len(it.DefaultRequest) > 0) {
				errs = append(errs, field.Forbidden(p.Child("default"), "may not be specified when `type` is 'Pod'"))
			}
		}
		return errs
	}
}

// defaultLimitRangeItem is SetDefaults_LimitRangeItem: container defaults
// come from max, default requests from the default limit or min.
func defaultLimitRangeItem(it *corev1.LimitRangeItem) {
	if it.Type != corev1.LimitTypeContainer {
		return
	}
	if it.Default == nil {
		it.Default = corev1.ResourceList{}
	}
	if it.DefaultRequest == nil {
		it.DefaultRequest = corev1.ResourceList{}
	}
	for k, v := range it.Max {
		if _, ok := it.Default[k]; !ok {
			it.Default[k] = v.DeepCopy()
		}
	}
	for k, v := range it.Default {
		if _, ok := it.DefaultRequest[k]; !ok {
			it.DefaultRequest[k] = v.DeepCopy()
		}
	}
	for k, v := range it.Min {
		if _, ok := it.DefaultRequest[k]; !ok {
			it.DefaultRequest[k] = v.DeepCopy()
		}
	}
}

// HighestUserDefinablePriority is the highest value a user's PriorityClass may have.
const HighestUserDefinablePriority = 1000000000

// SystemPriorityClasses exist in every cluster.
func SystemPriorityClasses() []*schedulingv1.PriorityClass {
	return []*schedulingv1.PriorityClass{
		{ObjectMeta: metav1.ObjectMeta{Name: "system-node-critical"}, Value: 2000001000, Description: "Used for system critical pods that must not be moved from their current node."},
		{ObjectMeta: metav1.ObjectMeta{Name: "system-cluster-critical"}, Value: 2000000000, Description: "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary."},
	}
}

func priorityClassBehaviour(r *Resource) {
	r.Default = func(obj runtime.Object) {
		pc := obj.(*schedulingv1.PriorityClass)
		if pc.PreemptionPolicy == nil {
			p := corev1.PreemptLowerPriority
			pc.PreemptionPolicy = &p
		}
	}
	r.Validate = func(obj runtime.Object) field.ErrorList {
		pc := obj.(*schedulingv1.PriorityClass)
		var errs field.ErrorList
		system := false
		for _, s := range SystemPriorityClasses() {
			if s.Name == pc.Name {
				system = true
				if s.Value != pc.Value {
					errs = append(errs, field.Invalid(field.NewPath("value"), pc.Value, fmt.Sprintf("value of %s PriorityClass must be %d", s.Name, s.Value)))
				}
			}
		}
		if !system {
			if strings.HasPrefix(pc.Name, "system-") {
				errs = append(errs, field.Invalid(field.NewPath("metadata", "name"), pc.Name, "priority class names with 'system-' prefix are reserved"))
			}
			if pc.Value > HighestUserDefinablePriority {
				errs = append(errs, field.Forbidden(field.NewPath("value"), fmt.Sprintf("maximum allowed value of a user defined priority is %v", HighestUserDefinablePriority)))
			}
		}
		return errs
	}
	r.ValidateUpdate = func(obj, old runtime.Object) field.ErrorList {
		if obj.(*schedulingv1.PriorityClass).Value != old.(*schedulingv1.PriorityClass).Value {
			return field.ErrorList{field.Forbidden(field.NewPath("value"), "may not be changed in an update.")}
		}
		return nil
	}
	r.Table = &Table{
		Columns: []metav1.TableColumnDefinition{nameCol,
			col("Value", "integer", schedulingv1.PriorityClass{}.SwaggerDoc()["value"]),
			col("Global-Default", "boolean", schedulingv1.PriorityClass{}.SwaggerDoc()["globalDefault"]),
			ageCol,
			col("PreemptionPolicy", "string", schedulingv1.PriorityClass{}.SwaggerDoc()["preemptionPolicy"])},
		Row: func(obj runtime.Object) ([]interface{}, error) {
			pc := obj.(*schedulingv1.PriorityClass)
			pp := ""
			if pc.PreemptionPolicy != nil {
				pp = string(*pc.PreemptionPolicy)
			}
			return []interface{}{pc.Name, int64(pc.Value), pc.GlobalDefault, age(pc.CreationTimestamp), pp}, nil
		},
	}
}
