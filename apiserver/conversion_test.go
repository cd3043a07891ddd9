package apiserver

import (
	"strings"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
)

func TestEventsAndHPAVersionsShareStorage(t *testing.T) {
	cs := newTestServer(t)
	ctx := t.Context()

	// A core event is an events.k8s.io event and the other way round.
	w, err := cs.EventsV1().Events("default").Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	_, err = cs.CoreV1().Events("default").Create(ctx, &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "e1"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "p", Namespace: "default"}, Reason: "Started", Message: "Started container app",
		Type: corev1.EventTypeNormal, Count: 2, Source: corev1.EventSource{Component: "kubelet"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-w.ResultChan():
		e, ok := ev.Object.(*eventsv1.Event)
		if ev.Type != watch.Added || !ok || e.Note != "Started container app" || e.Regarding.Name != "p" || e.DeprecatedCount != 2 || e.DeprecatedSource.Component != "kubelet" {
			t.Errorf("events.k8s.io watch event = %v %+v", ev.Type, ev.Object)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no events.k8s.io watch event for a core event")
	}
	_, err = cs.EventsV1().Events("default").Create(ctx, &eventsv1.Event{ObjectMeta: metav1.ObjectMeta{Name: "e2"},
		EventTime: metav1.NowMicro(), ReportingController: "nanokube.io/test", ReportingInstance: "t", Action: "Testing",
		Regarding: corev1.ObjectReference{Kind: "Node", Name: "n"}, Reason: "Tested", Note: "tested it", Type: corev1.EventTypeWarning}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	core, err := cs.CoreV1().Events("default").Get(ctx, "e2", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if core.Message != "tested it" || core.InvolvedObject.Name != "n" || core.ReportingController != "nanokube.io/test" {
		t.Errorf("core view of an events.k8s.io event = %+v", core)
	}
	list, err := cs.EventsV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "regarding.kind=Pod"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].Name != "e1" {
		t.Errorf("events.k8s.io list by regarding.kind = %d items", len(list.Items))
	}

	// autoscaling/v1 and v2 are one HorizontalPodAutoscaler.
	_, err = cs.AutoscalingV1().HorizontalPodAutoscalers("default").Create(ctx, &autoscalingv1.HorizontalPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: autoscalingv1.HorizontalPodAutoscalerSpec{ScaleTargetRef: autoscalingv1.CrossVersionObjectReference{Kind: "Deployment", Name: "web", APIVersion: "apps/v1"},
			MinReplicas: ptr.To(int32(1)), MaxReplicas: 5, TargetCPUUtilizationPercentage: ptr.To(int32(60))}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	v2, err := cs.AutoscalingV2().HorizontalPodAutoscalers("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(v2.Spec.Metrics) != 1 || v2.Spec.Metrics[0].Resource == nil || *v2.Spec.Metrics[0].Resource.Target.AverageUtilization != 60 || v2.Spec.MaxReplicas != 5 {
		t.Errorf("v2 view = %+v", v2.Spec)
	}
	v2.Spec.Metrics = append(v2.Spec.Metrics, autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
		Name: corev1.ResourceMemory, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: ptr.To(resource.MustParse("100Mi"))}}})
	if _, err := cs.AutoscalingV2().HorizontalPodAutoscalers("default").Update(ctx, v2, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	v1, err := cs.AutoscalingV1().HorizontalPodAutoscalers("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v1.Spec.TargetCPUUtilizationPercentage == nil || *v1.Spec.TargetCPUUtilizationPercentage != 60 || !strings.Contains(v1.Annotations["autoscaling.alpha.kubernetes.io/metrics"], "memory") {
		t.Errorf("v1 view = %+v %v", v1.Spec, v1.Annotations)
	}
	// A v1 update keeps the v2-only metric.
	v1.Spec.MaxReplicas = 7
	if _, err := cs.AutoscalingV1().HorizontalPodAutoscalers("default").Update(ctx, v1, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	v2, _ = cs.AutoscalingV2().HorizontalPodAutoscalers("default").Get(ctx, "web", metav1.GetOptions{})
	if len(v2.Spec.Metrics) != 2 || v2.Spec.MaxReplicas != 7 || len(v2.Annotations) != 0 {
		t.Errorf("v2 after a v1 update = %+v %v", v2.Spec, v2.Annotations)
	}
}
