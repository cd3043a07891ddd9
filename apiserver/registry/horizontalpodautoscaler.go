package registry

import (
	"fmt"
	"strings"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func hpaBehaviour(r *Resource) {
	r.Default = func(obj runtime.Object) { defaultHPA(obj.(*autoscalingv2.HorizontalPodAutoscaler)) }
	r.PrepareForCreate = func(obj runtime.Object) {
		obj.(*autoscalingv2.HorizontalPodAutoscaler).Status = autoscalingv2.HorizontalPodAutoscalerStatus{}
	}
	r.Validate = func(obj runtime.Object) field.ErrorList {
		return validateHPA(obj.(*autoscalingv2.HorizontalPodAutoscaler))
	}
	r.Table = &Table{
		Columns: []metav1.TableColumnDefinition{
			nameCol,
			col("Reference", "string", autoscalingv2.HorizontalPodAutoscalerSpec{}.SwaggerDoc()["scaleTargetRef"]),
			col("Targets", "string", autoscalingv2.HorizontalPodAutoscalerSpec{}.SwaggerDoc()["metrics"]),
			col("MinPods", "string", autoscalingv2.HorizontalPodAutoscalerSpec{}.SwaggerDoc()["minReplicas"]),
			col("MaxPods", "integer", autoscalingv2.HorizontalPodAutoscalerSpec{}.SwaggerDoc()["maxReplicas"]),
			col("Replicas", "integer", autoscalingv2.HorizontalPodAutoscalerStatus{}.SwaggerDoc()["currentReplicas"]),
			ageCol,
		},
		Row: func(obj runtime.Object) ([]interface{}, error) {
			h := obj.(*autoscalingv2.HorizontalPodAutoscaler)
			minPods := "<unset>"
			if h.Spec.MinReplicas != nil {
				minPods = fmt.Sprint(*h.Spec.MinReplicas)
			}
			ref := h.Spec.ScaleTargetRef.Kind + "/" + h.Spec.ScaleTargetRef.Name
			return []interface{}{h.Name, ref, hpaTargets(h.Spec.Metrics, h.Status.CurrentMetrics), minPods, int64(h.Spec.MaxReplicas),
				int64(h.Status.CurrentReplicas), age(h.CreationTimestamp)}, nil
		},
	}
}

// defaultHPA is upstream's autoscaling/v2 SetDefaults_HorizontalPodAutoscaler:
// minReplicas 1, 80% CPU when no metric is given, and a given behavior
// filled in with the default rules.
func defaultHPA(h *autoscalingv2.HorizontalPodAutoscaler) {
	if h.Spec.MinReplicas == nil {
		h.Spec.MinReplicas = int32Ptr(1)
	}
	if len(h.Spec.Metrics) == 0 {
		h.Spec.Metrics = []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
			Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: int32Ptr(80)}}}}
	}
	b := h.Spec.Behavior
	if b == nil {
		return
	}
	maxPolicy := autoscalingv2.MaxChangePolicySelect
	fill := func(r **autoscalingv2.HPAScalingRules, window int32, policies []autoscalingv2.HPAScalingPolicy) {
		if *r == nil {
			*r = &autoscalingv2.HPAScalingRules{}
		}
		if (*r).StabilizationWindowSeconds == nil {
			(*r).StabilizationWindowSeconds = int32Ptr(window)
		}
		if (*r).SelectPolicy == nil {
			p := maxPolicy
			(*r).SelectPolicy = &p
		}
		if len((*r).Policies) == 0 {
			(*r).Policies = policies
		}
	}
	fill(&b.ScaleUp, 0, []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PodsScalingPolicy, Value: 4, PeriodSeconds: 15}, {Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15}})
	fill(&b.ScaleDown, 300, []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15}})
}

func validateHPA(h *autoscalingv2.HorizontalPodAutoscaler) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	ref := spec.Child("scaleTargetRef")
	if h.Spec.ScaleTargetRef.Kind == "" {
		errs = append(errs, field.Required(ref.Child("kind"), ""))
	}
	if h.Spec.ScaleTargetRef.Name == "" {
		errs = append(errs, field.Required(ref.Child("name"), ""))
	}
	if h.Spec.MinReplicas != nil && *h.Spec.MinReplicas < 1 {
		errs = append(errs, field.Invalid(spec.Child("minReplicas"), *h.Spec.MinReplicas, "must be greater than or equal to 1"))
	}
	if h.Spec.MaxReplicas < 1 {
		errs = append(errs, field.Invalid(spec.Child("maxReplicas"), h.Spec.MaxReplicas, "must be greater than 0"))
	}
	if h.Spec.MinReplicas != nil && h.Spec.MaxReplicas < *h.Spec.MinReplicas {
		errs = append(errs, field.Invalid(spec.Child("maxReplicas"), h.Spec.MaxReplicas, "must be greater than or equal to `minReplicas`"))
	}
	for i, m := range h.Spec.Metrics {
		p := spec.Child("metrics").Index(i)
		var target *autoscalingv2.MetricTarget
		switch m.Type {
		case autoscalingv2.ResourceMetricSourceType:
			if m.Resource == nil {
				errs = append(errs, field.Required(p.Child("resource"), "must populate information for the given metric source"))
				continue
			}
			if m.Resource.Name == "" {
				errs = append(errs, field.Required(p.Child("resource", "name"), "must specify a resource name"))
			}
			target = &m.Resource.Target
			p = p.Child("resource")
		case autoscalingv2.ContainerResourceMetricSourceType:
			if m.ContainerResource == nil {
				errs = append(errs, field.Required(p.Child("containerResource"), "must populate information for the given metric source"))
				continue
			}
			if m.ContainerResource.Container == "" {
				errs = append(errs, field.Required(p.Child("containerResource", "container"), "must specify a container"))
			}
			target = &m.ContainerResource.Target
			p = p.Child("containerResource")
		case autoscalingv2.PodsMetricSourceType, autoscalingv2.ObjectMetricSourceType, autoscalingv2.ExternalMetricSourceType:
			continue
		case "":
			errs = append(errs, field.Required(p.Child("type"), "must specify a metric source type"))
			continue
		default:
			errs = append(errs, field.NotSupported(p.Child("type"), m.Type, []string{"ContainerResource", "External", "Object", "Pods", "Resource"}))
			continue
		}
		tp := p.Child("target")
		switch target.Type {
		case autoscalingv2.UtilizationMetricType:
			if target.AverageUtilization == nil {
				errs = append(errs, field.Required(tp.Child("averageUtilization"), "must set averageUtilization when type is Utilization"))
			} else if *target.AverageUtilization < 1 {
				errs = append(errs, field.Invalid(tp.Child("averageUtilization"), *target.AverageUtilization, "must be greater than 0"))
			}
		case autoscalingv2.AverageValueMetricType:
			if target.AverageValue == nil {
				errs = append(errs, field.Required(tp.Child("averageValue"), "must set averageValue when type is AverageValue"))
			} else if target.AverageValue.Sign() <= 0 {
				errs = append(errs, field.Invalid(tp.Child("averageValue"), target.AverageValue.String(), "must be positive"))
			}
		default:
			errs = append(errs, field.NotSupported(tp.Child("type"), target.Type, []string{"AverageValue", "Utilization"}))
		}
	}
	if b := h.Spec.Behavior; b != nil {
		for name, rules := range map[string]*autoscalingv2.HPAScalingRules{"scaleUp": b.ScaleUp, "scaleDown": b.ScaleDown} {
			if rules == nil {
				continue
			}
			p := spec.Child("behavior", name)
			if w := rules.StabilizationWindowSeconds; w != nil && (*w < 0 || *w > 3600) {
				errs = append(errs, field.Invalid(p.Child("stabilizationWindowSeconds"), *w, "must be less than or equal to 3600 and greater than or equal to 0"))
			}
			for i, pol := range rules.Policies {
				pp := p.Child("policies").Index(i)
				if pol.Value <= 0 {
					errs = append(errs, field.Invalid(pp.Child("value"), pol.Value, "must be greater than zero"))
				}
				if pol.PeriodSeconds <= 0 || pol.PeriodSeconds > 1800 {
					errs = append(errs, field.Invalid(pp.Child("periodSeconds"), pol.PeriodSeconds, "must be greater than zero and less than or equal to 1800"))
				}
			}
		}
	}
	return errs
}

// hpaTargets is kubectl's TARGETS cell (upstream's formatHPAMetrics).
func hpaTargets(specs []autoscalingv2.MetricSpec, statuses []autoscalingv2.MetricStatus) string {
	if len(specs) == 0 {
		return "<none>"
	}
	qty := func(q interface{ String() string }, ok bool) string {
		if !ok {
			return "<unknown>"
		}
		return q.String()
	}
	var list []string
	for i, s := range specs {
		var st *autoscalingv2.MetricStatus
		if i < len(statuses) {
			st = &statuses[i]
		}
		switch s.Type {
		case autoscalingv2.ResourceMetricSourceType, autoscalingv2.ContainerResourceMetricSourceType:
			name, target := corev1.ResourceName(""), autoscalingv2.MetricTarget{}
			var cur *autoscalingv2.MetricValueStatus
			if s.Resource != nil {
				name, target = s.Resource.Name, s.Resource.Target
				if st != nil && st.Resource != nil {
					cur = &st.Resource.Current
				}
			} else if s.ContainerResource != nil {
				name, target = s.ContainerResource.Name, s.ContainerResource.Target
				if st != nil && st.ContainerResource != nil {
					cur = &st.ContainerResource.Current
				}
			}
			if target.AverageValue != nil {
				list = append(list, fmt.Sprintf("%s: %s/%s", name, qty(avgValue(cur), cur != nil && cur.AverageValue != nil), target.AverageValue.String()))
				continue
			}
			current, want := "<unknown>", "<auto>"
			if cur != nil && cur.AverageUtilization != nil {
				current = fmt.Sprintf("%d%%", *cur.AverageUtilization)
			}
			if target.AverageUtilization != nil {
				want = fmt.Sprintf("%d%%", *target.AverageUtilization)
			}
			list = append(list, fmt.Sprintf("%s: %s/%s", name, current, want))
		case autoscalingv2.PodsMetricSourceType:
			current := "<unknown>"
			if st != nil && st.Pods != nil && st.Pods.Current.AverageValue != nil {
				current = st.Pods.Current.AverageValue.String()
			}
			target := ""
			if s.Pods != nil && s.Pods.Target.AverageValue != nil {
				target = s.Pods.Target.AverageValue.String()
			}
			list = append(list, current+"/"+target)
		case autoscalingv2.ObjectMetricSourceType, autoscalingv2.ExternalMetricSourceType:
			var target autoscalingv2.MetricTarget
			var cur *autoscalingv2.MetricValueStatus
			if s.Object != nil {
				target = s.Object.Target
				if st != nil && st.Object != nil {
					cur = &st.Object.Current
				}
			} else if s.External != nil {
				target = s.External.Target
				if st != nil && st.External != nil {
					cur = &st.External.Current
				}
			}
			if target.AverageValue != nil {
				list = append(list, fmt.Sprintf("%s/%s (avg)", qty(avgValue(cur), cur != nil && cur.AverageValue != nil), target.AverageValue.String()))
			} else {
				current, want := "<unknown>", ""
				if cur != nil && cur.Value != nil {
					current = cur.Value.String()
				}
				if target.Value != nil {
					want = target.Value.String()
				}
				list = append(list, current+"/"+want)
			}
		default:
			list = append(list, "<unknown type>")
		}
	}
	const shown = 2
	if len(list) > shown {
		return fmt.Sprintf("%s + %d more...", strings.Join(list[:shown], ", "), len(list)-shown)
	}
	return strings.Join(list, ", ")
}

type quantityString interface{ String() string }

func avgValue(cur *autoscalingv2.MetricValueStatus) quantityString {
	if cur == nil || cur.AverageValue == nil {
		return nil
	}
	return cur.AverageValue
}
