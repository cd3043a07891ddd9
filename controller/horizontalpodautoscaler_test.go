package controller

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clienttesting "k8s.io/client-go/testing"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
	metricsfake "k8s.io/metrics/pkg/client/clientset/versioned/fake"
)

var calc = replicaCalc{tolerance: 0.1, cpuInitPeriod: 5 * time.Minute, initialReadinessDelay: 30 * time.Second}

// cpuPods makes n running pods requesting 100m each, started long ago.
func cpuPods(n int) []*corev1.Pod {
	var out []*corev1.Pod
	for i := range n {
		p := readyPod("default", "p"+string(rune('a'+i)), map[string]string{"app": "x"}, "node", time.Now().Add(-time.Hour))
		p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}
		out = append(out, p)
	}
	return out
}

func usageFor(pods []*corev1.Pod, milli ...int64) map[string]podUsage {
	out := map[string]podUsage{}
	for i, m := range milli {
		out[pods[i].Name] = podUsage{value: m, timestamp: time.Now(), window: 15 * time.Second}
	}
	return out
}

func TestResourceReplicas(t *testing.T) {
	now := time.Now()
	cases := []struct {
		name    string
		current int32
		usage   []int64 // per pod, milli; fewer than pods = missing metrics
		pods    int
		target  int32
		want    int32
		util    int32
	}{
		{"scale up: 200% of a 50% target", 1, []int64{200}, 1, 50, 4, 200},
		{"within the 10% tolerance", 2, []int64{52, 54}, 2, 50, 2, 53},
		{"scale down", 4, []int64{10, 10, 10, 10}, 4, 50, 1, 10},
		// A pod without metrics counts at its full request on the way
		// down: 3 pods at 10% plus one at 100% → 32.5% of 50% → 3.
		{"missing pod dampens the scale-down", 4, []int64{10, 10, 10}, 4, 50, 3, 10},
		// On the way up a missing pod counts as 0: (90+90)/3 = 60% of 50% → 4.
		{"missing pod dampens the scale-up", 3, []int64{90, 90}, 3, 50, 4, 90},
		// Dampening that flips the direction cancels the change.
		{"missing pod flips the direction", 2, []int64{60}, 2, 50, 2, 60},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pods := cpuPods(c.pods)
			got, util, _, err := calc.resourceReplicas(c.current, c.target, corev1.ResourceCPU, "", usageFor(pods, c.usage...), pods, now)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want || util != c.util {
				t.Errorf("replicas, utilization = %d, %d%%; want %d, %d%%", got, util, c.want, c.util)
			}
		})
	}
}

func TestResourceReplicasUnreadyAndIgnoredPods(t *testing.T) {
	now := time.Now()
	pods := cpuPods(3)
	// pa: just started and its readiness is younger than the metric window.
	pods[0].Status.StartTime = &metav1.Time{Time: now.Add(-10 * time.Second)}
	pods[0].Status.Conditions[0].LastTransitionTime = metav1.NewTime(now.Add(-5 * time.Second))
	// pb: being deleted.
	del := metav1.NewTime(now)
	pods[1].DeletionTimestamp = &del
	usage := usageFor(pods, 500, 500, 100)
	// Ignoring pa (unready) and pb (deleted): 100% of 50% with one ready
	// pod; the unready pod counts as 0 on the way up: (0+100)/2 = 50% → no change.
	got, util, _, err := calc.resourceReplicas(3, 50, corev1.ResourceCPU, "", usage, pods, now)
	if err != nil {
		t.Fatal(err)
	}
	if got != 3 || util != 100 {
		t.Errorf("replicas, utilization = %d, %d%%; want 3, 100%%", got, util)
	}
	// No ready pod with metrics at all is an error, like upstream.
	pending := cpuPods(1)
	pending[0].Status.Phase = corev1.PodPending
	if _, _, _, err := calc.resourceReplicas(1, 50, corev1.ResourceCPU, "", usageFor(pending, 100), pending, now); err == nil || !strings.Contains(err.Error(), "did not receive metrics for targeted pods") {
		t.Errorf("only unready pods: err = %v", err)
	}
	noReq := cpuPods(1)
	noReq[0].Spec.Containers[0].Resources.Requests = nil
	if _, _, _, err := calc.resourceReplicas(1, 50, corev1.ResourceCPU, "", usageFor(noReq, 100), noReq, now); err == nil || !strings.Contains(err.Error(), "missing request for cpu in container c of Pod pa") {
		t.Errorf("pod without a request: err = %v", err)
	}
}

func TestAverageValueReplicas(t *testing.T) {
	pods := cpuPods(2)
	got, avg, err := calc.averageValueReplicas(2, 100, corev1.ResourceMemory, usageFor(pods, 300, 300), pods, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got != 6 || avg != 300 {
		t.Errorf("replicas, average = %d, %d; want 6, 300", got, avg)
	}
}

func TestBehaviorLimitsAndStabilization(t *testing.T) {
	h := &HorizontalPodAutoscaler{cfg: HorizontalPodAutoscalerConfig{DownscaleStabilization: 5 * time.Minute},
		recommendations: map[string][]timedRecommendation{}, scaleUps: map[string][]scaleEvent{}, scaleDowns: map[string][]scaleEvent{}}
	hpa := &autoscalingv2.HorizontalPodAutoscaler{Spec: autoscalingv2.HorizontalPodAutoscalerSpec{MaxReplicas: 100, Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{}}}
	// Scale up from 2 to 50: the default policies allow max(2+4, 2*2) = 6.
	if got := h.normalizeWithBehaviors(hpa, "k", 2, 50, 1); got != 6 {
		t.Errorf("scale-up limited to %d, want 6", got)
	}
	if c := hpa.Status.Conditions[len(hpa.Status.Conditions)-1]; c.Type != autoscalingv2.ScalingLimited || c.Status != corev1.ConditionTrue || c.Reason != "ScaleUpLimit" {
		t.Errorf("ScalingLimited condition = %+v", c)
	}
	// Down to 1 right after: the 300s window keeps the highest recent
	// recommendation (50 → capped by the current 6).
	if got := h.normalizeWithBehaviors(hpa, "k", 6, 1, 1); got != 6 {
		t.Errorf("scale-down inside the window went to %d, want 6", got)
	}
	// A short window lets it go.
	short := int32(0)
	hpa.Spec.Behavior.ScaleDown = &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: &short}
	if got := h.normalizeWithBehaviors(hpa, "k2", 6, 1, 1); got != 1 {
		t.Errorf("scale-down with a zero window went to %d, want 1", got)
	}
	// Without behavior: upstream's rules, at most double (min 4) per step.
	plain := &autoscalingv2.HorizontalPodAutoscaler{Spec: autoscalingv2.HorizontalPodAutoscalerSpec{MaxReplicas: 100}}
	if got := h.normalize(plain, "k3", 3, 20, 1); got != 6 {
		t.Errorf("scale-up without behavior went to %d, want 6", got)
	}
	// Down right after: the recent 20 stands (then capped at double).
	if got := h.normalize(plain, "k3", 6, 0, 2); got != 12 {
		t.Errorf("scale-down within the 5m window went to %d, want 12", got)
	}
}

func TestHPAReconcile(t *testing.T) {
	two := int32(1)
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"}, Spec: appsv1.DeploymentSpec{Replicas: &two,
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}}}}
	pods := cpuPods(1)
	util := int32(50)
	hpa := &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", Generation: 1},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			MaxReplicas: 3, Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType,
				Resource: &autoscalingv2.ResourceMetricSource{Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: &util}}}}}}
	f := newFakeCluster(dep, pods[0], hpa)
	// The fake clientset knows no scale subresource: answer it from the
	// deployment it stores.
	scaled := make(chan int32, 4)
	f.client.PrependReactor("get", "deployments", func(a clienttesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "scale" {
			return false, nil, nil
		}
		return true, &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
			Spec: autoscalingv1.ScaleSpec{Replicas: 1}, Status: autoscalingv1.ScaleStatus{Replicas: 1, Selector: "app=x"}}, nil
	})
	f.client.PrependReactor("update", "deployments", func(a clienttesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "scale" {
			return false, nil, nil
		}
		s := a.(clienttesting.UpdateAction).GetObject().(*autoscalingv1.Scale)
		scaled <- s.Spec.Replicas
		return true, s, nil
	})
	// The fake metrics clientset stores PodMetrics under a guessed
	// resource name its List does not read: answer the list directly.
	mc := metricsfake.NewSimpleClientset()
	mc.PrependReactor("list", "pods", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, &metricsv1beta1.PodMetricsList{Items: []metricsv1beta1.PodMetrics{{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: pods[0].Name, Labels: pods[0].Labels},
			Timestamp:  metav1.Now(), Window: metav1.Duration{Duration: 15 * time.Second},
			Containers: []metricsv1beta1.ContainerMetrics{{Name: "c", Usage: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("150m")}}},
		}}}, nil
	})
	c, err := NewHorizontalPodAutoscaler(HorizontalPodAutoscalerConfig{Client: f.client, Metrics: mc.MetricsV1beta1(), Informers: f.informers, Recorder: f.recorder, Log: f.log})
	if err != nil {
		t.Fatal(err)
	}
	f.run(t, c.Run)
	select {
	case n := <-scaled:
		if n != 3 {
			t.Errorf("scaled to %d, want 3 (150%% of 50%% is 3 pods)", n)
		}
	case <-time.After(10 * time.Second):
		got, _ := f.client.AutoscalingV2().HorizontalPodAutoscalers("default").Get(context.Background(), "web", metav1.GetOptions{})
		t.Fatalf("no rescale: %+v %v", got.Status, f.events())
	}
	var got *autoscalingv2.HorizontalPodAutoscaler
	eventually(t, "hpa status", func() bool {
		got, _ = f.client.AutoscalingV2().HorizontalPodAutoscalers("default").Get(context.Background(), "web", metav1.GetOptions{})
		return got.Status.DesiredReplicas == 3
	})
	if got.Status.CurrentReplicas != 1 || got.Status.LastScaleTime == nil || len(got.Status.CurrentMetrics) != 1 ||
		*got.Status.CurrentMetrics[0].Resource.Current.AverageUtilization != 150 || got.Status.ObservedGeneration == nil {
		t.Errorf("status = %+v", got.Status)
	}
	want := map[autoscalingv2.HorizontalPodAutoscalerConditionType]string{
		autoscalingv2.AbleToScale: "SucceededRescale", autoscalingv2.ScalingActive: "ValidMetricFound", autoscalingv2.ScalingLimited: "DesiredWithinRange"}
	for _, cond := range got.Status.Conditions {
		if want[cond.Type] != cond.Reason {
			t.Errorf("condition %s reason %q, want %q", cond.Type, cond.Reason, want[cond.Type])
		}
		delete(want, cond.Type)
	}
	if len(want) > 0 {
		t.Errorf("missing conditions %v", want)
	}
	found := false
	for _, e := range f.events() {
		found = found || e == "Normal SuccessfulRescale New size: 3; reason: cpu resource utilization (percentage of request) above target"
	}
	if !found {
		t.Error("no SuccessfulRescale event with upstream's text")
	}
}

func TestHPAWithoutMetrics(t *testing.T) {
	util := int32(50)
	hpa := &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			MaxReplicas: 3, Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType,
				Resource: &autoscalingv2.ResourceMetricSource{Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: &util}}}}}}
	pods := cpuPods(1)
	f := newFakeCluster(pods[0], hpa)
	f.client.PrependReactor("get", "deployments", func(a clienttesting.Action) (bool, runtime.Object, error) {
		return true, &autoscalingv1.Scale{Spec: autoscalingv1.ScaleSpec{Replicas: 1}, Status: autoscalingv1.ScaleStatus{Replicas: 1, Selector: "app=x"}}, nil
	})
	c, err := NewHorizontalPodAutoscaler(HorizontalPodAutoscalerConfig{Client: f.client, Metrics: metricsfake.NewSimpleClientset().MetricsV1beta1(), Informers: f.informers, Recorder: f.recorder, Log: f.log})
	if err != nil {
		t.Fatal(err)
	}
	f.run(t, c.Run)
	eventually(t, "ScalingActive=False", func() bool {
		got, _ := f.client.AutoscalingV2().HorizontalPodAutoscalers("default").Get(context.Background(), "web", metav1.GetOptions{})
		for _, cond := range got.Status.Conditions {
			if cond.Type == autoscalingv2.ScalingActive && cond.Status == corev1.ConditionFalse && cond.Reason == "FailedGetResourceMetric" &&
				strings.Contains(cond.Message, "no metrics returned from resource metrics API") {
				return true
			}
		}
		return false
	})
}
