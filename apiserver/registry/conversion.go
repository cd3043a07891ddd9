package registry

import (
	"encoding/json"
	"strings"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// storedAs makes r keep its objects in stored's key space and JSON form,
// converting on the way in and out (several versions, one store).
func storedAs(r, stored *Resource, to, from func(runtime.Object) runtime.Object) {
	r.StorageResource = stored
	r.ToStorage, r.FromStorage = to, from
	if stored.Table != nil {
		t := stored.Table
		r.Table = &Table{Columns: t.Columns, Row: func(obj runtime.Object) ([]interface{}, error) { return t.Row(to(obj)) }}
	}
	if stored.Validate != nil && r.Validate == nil {
		v := stored.Validate
		r.Validate = func(obj runtime.Object) field.ErrorList { return v(to(obj)) }
	}
	if stored.FieldSet != nil && r.FieldSet == nil {
		fs := stored.FieldSet
		r.FieldSet = func(obj runtime.Object) fields.Set { return fs(to(obj)) }
	}
}

// EventToCore converts an events.k8s.io/v1 Event to its core/v1 form.
func EventToCore(obj runtime.Object) runtime.Object {
	e := obj.(*eventsv1.Event)
	out := &corev1.Event{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Event"},
		ObjectMeta: *e.ObjectMeta.DeepCopy(), InvolvedObject: e.Regarding, Reason: e.Reason, Message: e.Note,
		Source: e.DeprecatedSource, FirstTimestamp: e.DeprecatedFirstTimestamp, LastTimestamp: e.DeprecatedLastTimestamp,
		Count: e.DeprecatedCount, Type: e.Type, EventTime: e.EventTime, Action: e.Action, Related: e.Related.DeepCopy(),
		ReportingController: e.ReportingController, ReportingInstance: e.ReportingInstance,
	}
	if e.Series != nil {
		out.Series = &corev1.EventSeries{Count: e.Series.Count, LastObservedTime: e.Series.LastObservedTime}
	}
	return out
}

// EventFromCore converts a core/v1 Event to events.k8s.io/v1.
func EventFromCore(obj runtime.Object) runtime.Object {
	e := obj.(*corev1.Event)
	out := &eventsv1.Event{
		TypeMeta:   metav1.TypeMeta{APIVersion: "events.k8s.io/v1", Kind: "Event"},
		ObjectMeta: *e.ObjectMeta.DeepCopy(), Regarding: e.InvolvedObject, Reason: e.Reason, Note: e.Message,
		DeprecatedSource: e.Source, DeprecatedFirstTimestamp: e.FirstTimestamp, DeprecatedLastTimestamp: e.LastTimestamp,
		DeprecatedCount: e.Count, Type: e.Type, EventTime: e.EventTime, Action: e.Action, Related: e.Related.DeepCopy(),
		ReportingController: e.ReportingController, ReportingInstance: e.ReportingInstance,
	}
	if e.Series != nil {
		out.Series = &eventsv1.EventSeries{Count: e.Series.Count, LastObservedTime: e.Series.LastObservedTime}
	}
	return out
}

// The annotations autoscaling/v1 keeps what only v2 can say in, like kube-apiserver.
const (
	hpaMetricsAnnotation        = "autoscaling.alpha.kubernetes.io/metrics"
	hpaCurrentMetricsAnnotation = "autoscaling.alpha.kubernetes.io/current-metrics"
	hpaConditionsAnnotation     = "autoscaling.alpha.kubernetes.io/conditions"
	hpaBehaviorAnnotation       = "autoscaling.alpha.kubernetes.io/behavior"
)

// HPAToV2 converts an autoscaling/v1 HorizontalPodAutoscaler to v2.
func HPAToV2(obj runtime.Object) runtime.Object {
	in := obj.(*autoscalingv1.HorizontalPodAutoscaler)
	out := &autoscalingv2.HorizontalPodAutoscaler{
		TypeMeta:   metav1.TypeMeta{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler"},
		ObjectMeta: *in.ObjectMeta.DeepCopy(),
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{Kind: in.Spec.ScaleTargetRef.Kind, Name: in.Spec.ScaleTargetRef.Name, APIVersion: in.Spec.ScaleTargetRef.APIVersion},
			MinReplicas:    in.Spec.MinReplicas, MaxReplicas: in.Spec.MaxReplicas,
		},
		Status: autoscalingv2.HorizontalPodAutoscalerStatus{ObservedGeneration: in.Status.ObservedGeneration, LastScaleTime: in.Status.LastScaleTime,
			CurrentReplicas: in.Status.CurrentReplicas, DesiredReplicas: in.Status.DesiredReplicas},
	}
	ann := out.Annotations
	take := func(key string, into any) {
		if v, ok := ann[key]; ok {
			_ = json.Unmarshal([]byte(v), into)
			delete(ann, key)
		}
	}
	take(hpaMetricsAnnotation, &out.Spec.Metrics)
	take(hpaCurrentMetricsAnnotation, &out.Status.CurrentMetrics)
	take(hpaConditionsAnnotation, &out.Status.Conditions)
	take(hpaBehaviorAnnotation, &out.Spec.Behavior)
	if len(ann) == 0 {
		out.Annotations = nil
	}
	if t := in.Spec.TargetCPUUtilizationPercentage; t != nil {
		out.Spec.Metrics = append([]autoscalingv2.MetricSpec{cpuMetric(*t)}, out.Spec.Metrics...)
	}
	if c := in.Status.CurrentCPUUtilizationPercentage; c != nil {
		out.Status.CurrentMetrics = append([]autoscalingv2.MetricStatus{{Type: autoscalingv2.ResourceMetricSourceType,
			Resource: &autoscalingv2.ResourceMetricStatus{Name: corev1.ResourceCPU, Current: autoscalingv2.MetricValueStatus{AverageUtilization: c}}}}, out.Status.CurrentMetrics...)
	}
	return out
}

func cpuMetric(pct int32) autoscalingv2.MetricSpec {
	return autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
		Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: &pct}}}
}

func isCPUUtilization(m autoscalingv2.MetricSpec) bool {
	return m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil && m.Resource.Name == corev1.ResourceCPU &&
		m.Resource.Target.Type == autoscalingv2.UtilizationMetricType && m.Resource.Target.AverageUtilization != nil
}

// HPAFromV2 converts an autoscaling/v2 HorizontalPodAutoscaler to v1.
func HPAFromV2(obj runtime.Object) runtime.Object {
	in := obj.(*autoscalingv2.HorizontalPodAutoscaler)
	out := &autoscalingv1.HorizontalPodAutoscaler{
		TypeMeta:   metav1.TypeMeta{APIVersion: "autoscaling/v1", Kind: "HorizontalPodAutoscaler"},
		ObjectMeta: *in.ObjectMeta.DeepCopy(),
		Spec: autoscalingv1.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv1.CrossVersionObjectReference{Kind: in.Spec.ScaleTargetRef.Kind, Name: in.Spec.ScaleTargetRef.Name, APIVersion: in.Spec.ScaleTargetRef.APIVersion},
			MinReplicas:    in.Spec.MinReplicas, MaxReplicas: in.Spec.MaxReplicas,
		},
		Status: autoscalingv1.HorizontalPodAutoscalerStatus{ObservedGeneration: in.Status.ObservedGeneration, LastScaleTime: in.Status.LastScaleTime,
			CurrentReplicas: in.Status.CurrentReplicas, DesiredReplicas: in.Status.DesiredReplicas},
	}
	put := func(key string, v any) {
		b, err := json.Marshal(v)
		if err != nil {
			return
		}
		if out.Annotations == nil {
			out.Annotations = map[string]string{}
		}
		out.Annotations[key] = string(b)
	}
	var other []autoscalingv2.MetricSpec
	for _, m := range in.Spec.Metrics {
		if isCPUUtilization(m) && out.Spec.TargetCPUUtilizationPercentage == nil {
			v := *m.Resource.Target.AverageUtilization
			out.Spec.TargetCPUUtilizationPercentage = &v
			continue
		}
		other = append(other, m)
	}
	if len(other) > 0 {
		put(hpaMetricsAnnotation, other)
	}
	var otherCurrent []autoscalingv2.MetricStatus
	for _, m := range in.Status.CurrentMetrics {
		if m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil && m.Resource.Name == corev1.ResourceCPU &&
			m.Resource.Current.AverageUtilization != nil && out.Status.CurrentCPUUtilizationPercentage == nil {
			v := *m.Resource.Current.AverageUtilization
			out.Status.CurrentCPUUtilizationPercentage = &v
			continue
		}
		otherCurrent = append(otherCurrent, m)
	}
	if len(otherCurrent) > 0 {
		put(hpaCurrentMetricsAnnotation, otherCurrent)
	}
	if len(in.Status.Conditions) > 0 {
		put(hpaConditionsAnnotation, in.Status.Conditions)
	}
	if in.Spec.Behavior != nil {
		put(hpaBehaviorAnnotation, in.Spec.Behavior)
	}
	return out
}

// wireConversions connects the resources served in more than one version
// to the one store they share.
func wireConversions(rs []*Resource) {
	find := func(group, version, plural string) *Resource {
		for _, r := range rs {
			if r.GroupVersion.Group == group && r.GroupVersion.Version == version && r.Plural == plural {
				return r
			}
		}
		return nil
	}
	if ev, core := find("events.k8s.io", "v1", "events"), find("", "v1", "events"); ev != nil && core != nil {
		if fs := core.FieldSet; fs != nil {
			// events.k8s.io names the involved object "regarding".
			ev.FieldSet = func(obj runtime.Object) fields.Set {
				set := fs(EventToCore(obj))
				for k, v := range set {
					if rest, ok := strings.CutPrefix(k, "involvedObject."); ok {
						set["regarding."+rest] = v
					}
				}
				set["reportingController"] = set["reportingComponent"]
				return set
			}
		}
		storedAs(ev, core, EventToCore, EventFromCore)
	}
	if v1, v2 := find("autoscaling", "v1", "horizontalpodautoscalers"), find("autoscaling", "v2", "horizontalpodautoscalers"); v1 != nil && v2 != nil {
		storedAs(v1, v2, HPAToV2, HPAFromV2)
		v1.Default = func(obj runtime.Object) {
			if h := obj.(*autoscalingv1.HorizontalPodAutoscaler); h.Spec.MinReplicas == nil {
				one := int32(1)
				h.Spec.MinReplicas = &one
			}
		}
	}
}
