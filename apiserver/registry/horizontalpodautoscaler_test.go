package registry

import (
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestHPATargets(t *testing.T) {
	util := func(n int32) *int32 { return &n }
	cpu := autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{Name: corev1.ResourceCPU,
		Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: util(50)}}}
	mem := resource.MustParse("100Mi")
	memSpec := autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{Name: corev1.ResourceMemory,
		Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: &mem}}}
	cur := resource.MustParse("20Mi")
	cases := []struct {
		specs    []autoscalingv2.MetricSpec
		statuses []autoscalingv2.MetricStatus
		want     string
	}{
		{nil, nil, "<none>"},
		{[]autoscalingv2.MetricSpec{cpu}, nil, "cpu: <unknown>/50%"},
		{[]autoscalingv2.MetricSpec{cpu}, []autoscalingv2.MetricStatus{{Type: autoscalingv2.ResourceMetricSourceType,
			Resource: &autoscalingv2.ResourceMetricStatus{Name: corev1.ResourceCPU, Current: autoscalingv2.MetricValueStatus{AverageUtilization: util(45)}}}}, "cpu: 45%/50%"},
		{[]autoscalingv2.MetricSpec{cpu, memSpec}, []autoscalingv2.MetricStatus{{}, {Type: autoscalingv2.ResourceMetricSourceType,
			Resource: &autoscalingv2.ResourceMetricStatus{Name: corev1.ResourceMemory, Current: autoscalingv2.MetricValueStatus{AverageValue: &cur}}}}, "cpu: <unknown>/50%, memory: 20Mi/100Mi"},
		{[]autoscalingv2.MetricSpec{cpu, cpu, memSpec}, nil, "cpu: <unknown>/50%, cpu: <unknown>/50% + 1 more..."},
	}
	for _, c := range cases {
		if got := hpaTargets(c.specs, c.statuses); got != c.want {
			t.Errorf("targets = %q, want %q", got, c.want)
		}
	}
}

func TestHPADefaultsAndValidation(t *testing.T) {
	h := &autoscalingv2.HorizontalPodAutoscaler{Spec: autoscalingv2.HorizontalPodAutoscalerSpec{MaxReplicas: 5,
		ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{Kind: "Deployment", Name: "web"},
		Behavior:       &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: int32Ptr(5)}}}}
	defaultHPA(h)
	if *h.Spec.MinReplicas != 1 || *h.Spec.Metrics[0].Resource.Target.AverageUtilization != 80 {
		t.Errorf("defaults: %+v", h.Spec)
	}
	b := h.Spec.Behavior
	if *b.ScaleDown.StabilizationWindowSeconds != 5 || len(b.ScaleDown.Policies) != 1 || *b.ScaleUp.StabilizationWindowSeconds != 0 || len(b.ScaleUp.Policies) != 2 || *b.ScaleUp.SelectPolicy != autoscalingv2.MaxChangePolicySelect {
		t.Errorf("behavior defaults: %+v %+v", b.ScaleUp, b.ScaleDown)
	}
	if errs := validateHPA(h); len(errs) != 0 {
		t.Errorf("valid HPA: %v", errs)
	}
	h.Spec.MinReplicas = int32Ptr(6)
	h.Spec.ScaleTargetRef.Name = ""
	errs := validateHPA(h)
	if len(errs) != 2 || errs[0].Field != "spec.scaleTargetRef.name" || errs[1].Field != "spec.maxReplicas" || errs[1].Detail != "must be greater than or equal to `minReplicas`" {
		t.Errorf("errors = %v", errs)
	}
}
