package registry

import (
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func podDisruptionBudgetBehaviour(r *Resource) {
	r.PrepareForCreate = func(obj runtime.Object) {
		obj.(*policyv1.PodDisruptionBudget).Status = policyv1.PodDisruptionBudgetStatus{}
	}
	r.Validate = func(obj runtime.Object) field.ErrorList {
		p := obj.(*policyv1.PodDisruptionBudget)
		spec := field.NewPath("spec")
		var errs field.ErrorList
		if p.Spec.MinAvailable != nil && p.Spec.MaxUnavailable != nil {
			errs = append(errs, field.Invalid(spec, p.Spec, "minAvailable and maxUnavailable cannot be both set"))
		}
		for name, v := range map[string]*intstr.IntOrString{"minAvailable": p.Spec.MinAvailable, "maxUnavailable": p.Spec.MaxUnavailable} {
			if v == nil {
				continue
			}
			if v.Type == intstr.Int && v.IntVal < 0 {
				errs = append(errs, field.Invalid(spec.Child(name), v.IntVal, "must be greater than or equal to 0"))
			}
			if v.Type == intstr.String {
				if _, err := intstr.GetScaledValueFromIntOrPercent(v, 100, false); err != nil {
					errs = append(errs, field.Invalid(spec.Child(name), v.StrVal, "must be an integer or percentage (e.g '5%')"))
				}
			}
		}
		if pol := p.Spec.UnhealthyPodEvictionPolicy; pol != nil && *pol != policyv1.IfHealthyBudget && *pol != policyv1.AlwaysAllow {
			errs = append(errs, field.NotSupported(spec.Child("unhealthyPodEvictionPolicy"), *pol, []string{string(policyv1.AlwaysAllow), string(policyv1.IfHealthyBudget)}))
		}
		return errs
	}
	r.Table = &Table{
		Columns: []metav1.TableColumnDefinition{
			nameCol,
			col("Min Available", "string", "The minimum number of pods that must be available."),
			col("Max Unavailable", "string", "The maximum number of pods that may be unavailable."),
			col("Allowed Disruptions", "integer", "Calculated number of pods that may be disrupted at this time."),
			ageCol,
		},
		Row: func(obj runtime.Object) ([]interface{}, error) {
			p := obj.(*policyv1.PodDisruptionBudget)
			orNA := func(v *intstr.IntOrString) string {
				if v == nil {
					return "N/A"
				}
				return v.String()
			}
			return []interface{}{p.Name, orNA(p.Spec.MinAvailable), orNA(p.Spec.MaxUnavailable), int64(p.Status.DisruptionsAllowed), age(p.CreationTimestamp)}, nil
		},
	}
}
