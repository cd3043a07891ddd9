package controller

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	autoscalinglisters "k8s.io/client-go/listers/autoscaling/v2"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned/typed/metrics/v1beta1"
)

// HorizontalPodAutoscalerConfig builds the HPA controller. Zero durations
// and tolerance take kube-controller-manager's defaults.
type HorizontalPodAutoscalerConfig struct {
	Client    kubernetes.Interface
	Metrics   metricsclient.PodMetricsesGetter // the resource metrics API
	Informers informers.SharedInformerFactory
	Recorder  record.EventRecorder
	Log       *slog.Logger
	// SyncPeriod: how often each HPA is evaluated (15s).
	SyncPeriod time.Duration
	// DownscaleStabilization: the scale-down window of HPAs that set no
	// behavior (5m).
	DownscaleStabilization time.Duration
	// Tolerance: a usage ratio this close to 1 changes nothing (0.1).
	Tolerance float64
	// CPUInitializationPeriod (5m) and InitialReadinessDelay (30s) decide
	// which starting pods' CPU counts.
	CPUInitializationPeriod time.Duration
	InitialReadinessDelay   time.Duration
}

// HorizontalPodAutoscaler scales workloads through their scale
// subresource from the pods' CPU and memory in the metrics API, with
// upstream's algorithm, behaviors (stabilization windows and rate
// policies), conditions, status and events.
type HorizontalPodAutoscaler struct {
	cfg    HorizontalPodAutoscalerConfig
	hpas   autoscalinglisters.HorizontalPodAutoscalerLister
	pods   corelisters.PodLister
	synced []cache.InformerSynced
	w      *worker
	calc   replicaCalc

	mu              sync.Mutex
	due             map[string]time.Time // next periodic evaluation
	recommendations map[string][]timedRecommendation
	scaleUps        map[string][]scaleEvent
	scaleDowns      map[string][]scaleEvent
}

type timedRecommendation struct {
	replicas int32
	at       time.Time
}

type scaleEvent struct {
	change int32
	at     time.Time
}

// NewHorizontalPodAutoscaler builds the controller.
func NewHorizontalPodAutoscaler(cfg HorizontalPodAutoscalerConfig) (*HorizontalPodAutoscaler, error) {
	if cfg.SyncPeriod == 0 {
		cfg.SyncPeriod = 15 * time.Second
	}
	if cfg.DownscaleStabilization == 0 {
		cfg.DownscaleStabilization = 5 * time.Minute
	}
	if cfg.Tolerance == 0 {
		cfg.Tolerance = 0.1
	}
	if cfg.CPUInitializationPeriod == 0 {
		cfg.CPUInitializationPeriod = 5 * time.Minute
	}
	if cfg.InitialReadinessDelay == 0 {
		cfg.InitialReadinessDelay = 30 * time.Second
	}
	inf := cfg.Informers.Autoscaling().V2().HorizontalPodAutoscalers()
	podInf := cfg.Informers.Core().V1().Pods()
	c := &HorizontalPodAutoscaler{
		cfg: cfg, hpas: inf.Lister(), pods: podInf.Lister(),
		calc: replicaCalc{tolerance: cfg.Tolerance, cpuInitPeriod: cfg.CPUInitializationPeriod, initialReadinessDelay: cfg.InitialReadinessDelay},
		due:  map[string]time.Time{}, recommendations: map[string][]timedRecommendation{}, scaleUps: map[string][]scaleEvent{}, scaleDowns: map[string][]scaleEvent{},
	}
	c.w = newWorker("horizontalpodautoscaler", cfg.Log, c.sync)
	// New HPAs and spec changes are evaluated at once; otherwise every
	// SyncPeriod (the controller's own status writes trigger nothing).
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: c.w.enqueue,
		UpdateFunc: func(old, cur any) {
			o, n := old.(*autoscalingv2.HorizontalPodAutoscaler), cur.(*autoscalingv2.HorizontalPodAutoscaler)
			if !equality.Semantic.DeepEqual(o.Spec, n.Spec) {
				c.w.enqueue(cur)
			}
		},
		DeleteFunc: c.w.enqueue,
	}); err != nil {
		return nil, err
	}
	c.synced = []cache.InformerSynced{inf.Informer().HasSynced, podInf.Informer().HasSynced}
	return c, nil
}

// Run works until ctx ends.
func (c *HorizontalPodAutoscaler) Run(ctx context.Context) error { return c.w.run(ctx, c.synced...) }

func (c *HorizontalPodAutoscaler) sync(ctx context.Context, key string) error {
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	hpa, err := c.hpas.HorizontalPodAutoscalers(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.mu.Lock()
		delete(c.due, key)
		delete(c.recommendations, key)
		delete(c.scaleUps, key)
		delete(c.scaleDowns, key)
		c.mu.Unlock()
		return nil
	}
	if err != nil {
		return err
	}
	now := time.Now()
	c.mu.Lock()
	due, ok := c.due[key]
	periodic := !ok || !now.Before(due)
	if periodic {
		c.due[key] = now.Add(c.cfg.SyncPeriod)
	}
	c.mu.Unlock()
	if periodic {
		defer c.w.queue.AddAfter(key, c.cfg.SyncPeriod)
	}
	if err := c.reconcile(ctx, key, hpa.DeepCopy()); err != nil && ctx.Err() == nil {
		c.cfg.Log.Info("horizontal pod autoscaler", "hpa", key, "err", err)
	}
	return nil
}

func (c *HorizontalPodAutoscaler) reconcile(ctx context.Context, key string, hpa *autoscalingv2.HorizontalPodAutoscaler) error {
	original := hpa.Status.DeepCopy()
	ref := hpa.Spec.ScaleTargetRef
	reference := ref.Kind + "/" + ref.Name
	scale, err := c.getScale(ctx, hpa.Namespace, ref)
	if err != nil {
		c.cfg.Recorder.Event(hpa, corev1.EventTypeWarning, "FailedGetScale", err.Error())
		setHPACondition(hpa, autoscalingv2.AbleToScale, corev1.ConditionFalse, "FailedGetScale", "the HPA controller was unable to get the target's current scale: %v", err)
		c.updateStatus(ctx, original, hpa)
		return fmt.Errorf("failed to query scale subresource for %s: %w", reference, err)
	}
	setHPACondition(hpa, autoscalingv2.AbleToScale, corev1.ConditionTrue, "SucceededGetScale", "the HPA controller was able to get the target's current scale")
	current := scale.Spec.Replicas
	c.mu.Lock()
	if c.recommendations[key] == nil {
		c.recommendations[key] = []timedRecommendation{{current, time.Now()}}
	}
	c.mu.Unlock()
	minReplicas := int32(1)
	if hpa.Spec.MinReplicas != nil {
		minReplicas = *hpa.Spec.MinReplicas
	}
	var statuses []autoscalingv2.MetricStatus
	desired, reason, rescale := int32(0), "", true
	switch {
	case scale.Spec.Replicas == 0 && minReplicas != 0:
		rescale = false
		setHPACondition(hpa, autoscalingv2.ScalingActive, corev1.ConditionFalse, "ScalingDisabled", "scaling is disabled since the replica count of the target is zero")
	case current > hpa.Spec.MaxReplicas:
		reason, desired = "Current number of replicas above Spec.MaxReplicas", hpa.Spec.MaxReplicas
	case current < minReplicas:
		reason, desired = "Current number of replicas below Spec.MinReplicas", minReplicas
	default:
		proposal, metricName, st, err := c.computeReplicas(ctx, hpa, scale)
		statuses = st
		if err != nil && proposal == -1 {
			hpa.Status.CurrentReplicas, hpa.Status.CurrentMetrics = current, statuses
			c.updateStatus(ctx, original, hpa)
			c.cfg.Recorder.Event(hpa, corev1.EventTypeWarning, "FailedComputeMetricsReplicas", err.Error())
			return fmt.Errorf("failed to compute desired number of replicas based on listed metrics for %s: %w", reference, err)
		}
		rescaleMetric := ""
		if proposal > desired {
			desired, rescaleMetric = proposal, metricName
		}
		if desired > current {
			reason = rescaleMetric + " above target"
		}
		if desired < current {
			reason = "All metrics below target"
		}
		if hpa.Spec.Behavior == nil {
			desired = c.normalize(hpa, key, current, desired, minReplicas)
		} else {
			desired = c.normalizeWithBehaviors(hpa, key, current, desired, minReplicas)
		}
		rescale = desired != current
	}
	if rescale {
		scale.Spec.Replicas = desired
		if err := c.updateScale(ctx, hpa.Namespace, ref, scale); err != nil {
			c.cfg.Recorder.Eventf(hpa, corev1.EventTypeWarning, "FailedRescale", "New size: %d; reason: %s; error: %v", desired, reason, err)
			setHPACondition(hpa, autoscalingv2.AbleToScale, corev1.ConditionFalse, "FailedUpdateScale", "the HPA controller was unable to update the target scale: %v", err)
			hpa.Status.CurrentReplicas, hpa.Status.CurrentMetrics = current, statuses
			c.updateStatus(ctx, original, hpa)
			return fmt.Errorf("failed to rescale %s: %w", reference, err)
		}
		setHPACondition(hpa, autoscalingv2.AbleToScale, corev1.ConditionTrue, "SucceededRescale", "the HPA controller was able to update the target scale to %d", desired)
		c.cfg.Recorder.Eventf(hpa, corev1.EventTypeNormal, "SuccessfulRescale", "New size: %d; reason: %s", desired, reason)
		c.storeScaleEvent(hpa.Spec.Behavior, key, current, desired)
		now := metav1.NewTime(time.Now())
		hpa.Status.LastScaleTime = &now
	} else {
		desired = current
	}
	hpa.Status.CurrentReplicas, hpa.Status.DesiredReplicas, hpa.Status.CurrentMetrics = current, desired, statuses
	gen := hpa.Generation
	hpa.Status.ObservedGeneration = &gen
	c.updateStatus(ctx, original, hpa)
	return nil
}

func (c *HorizontalPodAutoscaler) updateStatus(ctx context.Context, original *autoscalingv2.HorizontalPodAutoscalerStatus, hpa *autoscalingv2.HorizontalPodAutoscaler) {
	if equality.Semantic.DeepEqual(original, &hpa.Status) {
		return
	}
	if _, err := c.cfg.Client.AutoscalingV2().HorizontalPodAutoscalers(hpa.Namespace).UpdateStatus(ctx, hpa, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) && ctx.Err() == nil {
		c.cfg.Log.Info("update hpa status", "hpa", hpa.Namespace+"/"+hpa.Name, "err", err)
	}
}

// targetGroupKind is the scale target's group and kind.
func targetGroupKind(ref autoscalingv2.CrossVersionObjectReference) schema.GroupKind {
	gv, _ := schema.ParseGroupVersion(ref.APIVersion)
	return schema.GroupKind{Group: gv.Group, Kind: ref.Kind}
}

func (c *HorizontalPodAutoscaler) getScale(ctx context.Context, ns string, ref autoscalingv2.CrossVersionObjectReference) (*autoscalingv1.Scale, error) {
	opts := metav1.GetOptions{}
	switch gk := targetGroupKind(ref); gk {
	case schema.GroupKind{Group: "apps", Kind: "Deployment"}:
		return c.cfg.Client.AppsV1().Deployments(ns).GetScale(ctx, ref.Name, opts)
	case schema.GroupKind{Group: "apps", Kind: "ReplicaSet"}:
		return c.cfg.Client.AppsV1().ReplicaSets(ns).GetScale(ctx, ref.Name, opts)
	case schema.GroupKind{Group: "apps", Kind: "StatefulSet"}:
		return c.cfg.Client.AppsV1().StatefulSets(ns).GetScale(ctx, ref.Name, opts)
	case schema.GroupKind{Kind: "ReplicationController"}:
		return c.cfg.Client.CoreV1().ReplicationControllers(ns).GetScale(ctx, ref.Name, opts)
	default:
		return nil, fmt.Errorf("unable to get the scale of %s: no matches for kind %q in group %q", ref.Name, gk.Kind, gk.Group)
	}
}

func (c *HorizontalPodAutoscaler) updateScale(ctx context.Context, ns string, ref autoscalingv2.CrossVersionObjectReference, s *autoscalingv1.Scale) error {
	opts := metav1.UpdateOptions{}
	var err error
	switch targetGroupKind(ref) {
	case schema.GroupKind{Group: "apps", Kind: "Deployment"}:
		_, err = c.cfg.Client.AppsV1().Deployments(ns).UpdateScale(ctx, ref.Name, s, opts)
	case schema.GroupKind{Group: "apps", Kind: "ReplicaSet"}:
		_, err = c.cfg.Client.AppsV1().ReplicaSets(ns).UpdateScale(ctx, ref.Name, s, opts)
	case schema.GroupKind{Group: "apps", Kind: "StatefulSet"}:
		_, err = c.cfg.Client.AppsV1().StatefulSets(ns).UpdateScale(ctx, ref.Name, s, opts)
	case schema.GroupKind{Kind: "ReplicationController"}:
		_, err = c.cfg.Client.CoreV1().ReplicationControllers(ns).UpdateScale(ctx, ref.Name, s, opts)
	default:
		err = fmt.Errorf("no matches for kind %q", ref.Kind)
	}
	return err
}

// computeReplicas is upstream's computeReplicasForMetrics: the highest
// proposal of the valid metrics; -1 with an error when every metric (or
// any, on the way down) failed.
func (c *HorizontalPodAutoscaler) computeReplicas(ctx context.Context, hpa *autoscalingv2.HorizontalPodAutoscaler, scale *autoscalingv1.Scale) (int32, string, []autoscalingv2.MetricStatus, error) {
	if scale.Status.Selector == "" {
		msg := "selector is required"
		c.cfg.Recorder.Event(hpa, corev1.EventTypeWarning, "SelectorRequired", msg)
		setHPACondition(hpa, autoscalingv2.ScalingActive, corev1.ConditionFalse, "InvalidSelector", "the HPA target's scale is missing a selector")
		return -1, "", nil, fmt.Errorf("%s", msg)
	}
	sel, err := labels.Parse(scale.Status.Selector)
	if err != nil {
		msg := fmt.Sprintf("couldn't convert selector into a corresponding internal selector object: %v", err)
		c.cfg.Recorder.Event(hpa, corev1.EventTypeWarning, "InvalidSelector", msg)
		setHPACondition(hpa, autoscalingv2.ScalingActive, corev1.ConditionFalse, "InvalidSelector", "%s", msg)
		return -1, "", nil, fmt.Errorf("%s", msg)
	}
	specs := hpa.Spec.Metrics
	statuses := make([]autoscalingv2.MetricStatus, len(specs))
	var replicas int32
	var metric string
	invalid := 0
	var firstErr error
	var firstCond autoscalingv2.HorizontalPodAutoscalerCondition
	for i, spec := range specs {
		proposal, name, cond, err := c.computeMetric(ctx, hpa, spec, scale.Spec.Replicas, sel, &statuses[i])
		if err != nil {
			if invalid == 0 {
				firstErr, firstCond = err, cond
			}
			invalid++
			continue
		}
		if replicas == 0 || proposal > replicas {
			replicas, metric = proposal, name
		}
	}
	if firstErr != nil {
		firstErr = fmt.Errorf("invalid metrics (%d invalid out of %d), first error is: %w", invalid, len(specs), firstErr)
	}
	if invalid >= len(specs) || (invalid > 0 && replicas < scale.Spec.Replicas) {
		setHPACondition(hpa, firstCond.Type, firstCond.Status, firstCond.Reason, "%s", firstCond.Message)
		return -1, "", statuses, firstErr
	}
	setHPACondition(hpa, autoscalingv2.ScalingActive, corev1.ConditionTrue, "ValidMetricFound", "the HPA was able to successfully calculate a replica count from %s", metric)
	return replicas, metric, statuses, firstErr
}

// unable records why a metric gave no replica count, as upstream does:
// a warning event and the ScalingActive=False condition it would set.
func (c *HorizontalPodAutoscaler) unable(hpa *autoscalingv2.HorizontalPodAutoscaler, reason string, err error) autoscalingv2.HorizontalPodAutoscalerCondition {
	c.cfg.Recorder.Event(hpa, corev1.EventTypeWarning, reason, err.Error())
	return autoscalingv2.HorizontalPodAutoscalerCondition{Type: autoscalingv2.ScalingActive, Status: corev1.ConditionFalse, Reason: reason,
		Message: fmt.Sprintf("the HPA was unable to compute the replica count: %v", err)}
}

func (c *HorizontalPodAutoscaler) computeMetric(ctx context.Context, hpa *autoscalingv2.HorizontalPodAutoscaler, spec autoscalingv2.MetricSpec, current int32,
	sel labels.Selector, status *autoscalingv2.MetricStatus) (int32, string, autoscalingv2.HorizontalPodAutoscalerCondition, error) {
	switch spec.Type {
	case autoscalingv2.ResourceMetricSourceType, autoscalingv2.ContainerResourceMetricSourceType:
		var res corev1.ResourceName
		var target autoscalingv2.MetricTarget
		container := ""
		if spec.Type == autoscalingv2.ResourceMetricSourceType && spec.Resource != nil {
			res, target = spec.Resource.Name, spec.Resource.Target
		} else if spec.ContainerResource != nil {
			res, target, container = spec.ContainerResource.Name, spec.ContainerResource.Target, spec.ContainerResource.Container
		} else {
			err := fmt.Errorf("invalid metric source: the %s source is not set", spec.Type)
			return 0, "", c.unable(hpa, "InvalidMetricSourceType", err), err
		}
		reason := "FailedGetResourceMetric"
		if container != "" {
			reason = "FailedGetContainerResourceMetric"
		}
		replicas, value, name, err := c.resourceMetric(ctx, hpa.Namespace, current, res, container, target, sel, spec.Type)
		if err != nil {
			err = fmt.Errorf("failed to get %s resource metric value: %w", res, err)
			return 0, "", c.unable(hpa, reason, err), err
		}
		if container != "" {
			*status = autoscalingv2.MetricStatus{Type: spec.Type, ContainerResource: &autoscalingv2.ContainerResourceMetricStatus{Name: res, Container: container, Current: value}}
		} else {
			*status = autoscalingv2.MetricStatus{Type: spec.Type, Resource: &autoscalingv2.ResourceMetricStatus{Name: res, Current: value}}
		}
		return replicas, name, autoscalingv2.HorizontalPodAutoscalerCondition{}, nil
	case autoscalingv2.PodsMetricSourceType, autoscalingv2.ObjectMetricSourceType:
		err := fmt.Errorf("unable to get metric %s: unable to fetch metrics from custom metrics API: no custom metrics API (custom.metrics.k8s.io) registered", metricNameOf(spec))
		reason := "FailedGetPodsMetric"
		if spec.Type == autoscalingv2.ObjectMetricSourceType {
			reason = "FailedGetObjectMetric"
		}
		return 0, "", c.unable(hpa, reason, err), err
	case autoscalingv2.ExternalMetricSourceType:
		err := fmt.Errorf("unable to get external metric %s/%s: unable to fetch metrics from external metrics API: no external metrics API (external.metrics.k8s.io) registered", hpa.Namespace, metricNameOf(spec))
		return 0, "", c.unable(hpa, "FailedGetExternalMetric", err), err
	}
	err := fmt.Errorf("unknown metric source type %q", spec.Type)
	return 0, "", c.unable(hpa, "InvalidMetricSourceType", err), err
}

func metricNameOf(spec autoscalingv2.MetricSpec) string {
	switch {
	case spec.Pods != nil:
		return spec.Pods.Metric.Name
	case spec.Object != nil:
		return spec.Object.Metric.Name
	case spec.External != nil:
		return spec.External.Metric.Name
	}
	return ""
}

// resourceMetric is upstream's computeStatusForResourceMetricGeneric.
func (c *HorizontalPodAutoscaler) resourceMetric(ctx context.Context, ns string, current int32, res corev1.ResourceName, container string, target autoscalingv2.MetricTarget,
	sel labels.Selector, source autoscalingv2.MetricSourceType) (int32, autoscalingv2.MetricValueStatus, string, error) {
	fetch := func() (map[string]podUsage, []*corev1.Pod, error) {
		if c.cfg.Metrics == nil {
			return nil, nil, fmt.Errorf("unable to get metrics for resource %s: unable to fetch metrics from resource metrics API: the server could not find the requested resource (get pods.metrics.k8s.io)", res)
		}
		list, err := c.cfg.Metrics.PodMetricses(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
		if err != nil {
			return nil, nil, fmt.Errorf("unable to get metrics for resource %s: unable to fetch metrics from resource metrics API: %w", res, err)
		}
		if len(list.Items) == 0 {
			return nil, nil, fmt.Errorf("unable to get metrics for resource %s: no metrics returned from resource metrics API", res)
		}
		pods, err := c.pods.Pods(ns).List(sel)
		if err != nil {
			return nil, nil, err
		}
		return usageOf(list.Items, res, container), pods, nil
	}
	now := time.Now()
	if target.AverageValue != nil {
		usage, pods, err := fetch()
		if err == nil {
			var replicas int32
			var avg int64
			replicas, avg, err = c.calc.averageValueReplicas(current, target.AverageValue.MilliValue(), res, usage, pods, now)
			if err == nil {
				return replicas, autoscalingv2.MetricValueStatus{AverageValue: resource.NewMilliQuantity(avg, resource.DecimalSI)}, fmt.Sprintf("%s resource", res), nil
			}
		}
		return 0, autoscalingv2.MetricValueStatus{}, "", fmt.Errorf("failed to get %s usage: %w", res, err)
	}
	if target.AverageUtilization == nil {
		return 0, autoscalingv2.MetricValueStatus{}, "", fmt.Errorf("invalid resource metric source: neither an average utilization target nor an average value (usage) target was set")
	}
	usage, pods, err := fetch()
	if err == nil {
		var replicas, util int32
		var raw int64
		replicas, util, raw, err = c.calc.resourceReplicas(current, *target.AverageUtilization, res, container, usage, pods, now)
		if err == nil {
			name := fmt.Sprintf("%s resource utilization (percentage of request)", res)
			if source == autoscalingv2.ContainerResourceMetricSourceType {
				name = fmt.Sprintf("%s container resource utilization (percentage of request)", res)
			}
			return replicas, autoscalingv2.MetricValueStatus{AverageUtilization: &util, AverageValue: resource.NewMilliQuantity(raw, resource.DecimalSI)}, name, nil
		}
	}
	return 0, autoscalingv2.MetricValueStatus{}, "", fmt.Errorf("failed to get %s utilization: %w", res, err)
}

// normalize is upstream's path for HPAs without behavior: the highest
// recommendation of the downscale stabilization window, at most double
// (or 4) per evaluation, within min and max.
func (c *HorizontalPodAutoscaler) normalize(hpa *autoscalingv2.HorizontalPodAutoscaler, key string, current, desired, minReplicas int32) int32 {
	stabilized := c.stabilize(key, desired, 0, c.cfg.DownscaleStabilization, current, false)
	if stabilized != desired {
		setHPACondition(hpa, autoscalingv2.AbleToScale, corev1.ConditionTrue, "ScaleDownStabilized", "recent recommendations were higher than current one, applying the highest recent recommendation")
	} else {
		setHPACondition(hpa, autoscalingv2.AbleToScale, corev1.ConditionTrue, "ReadyForNewScale", "recommended size matches current size")
	}
	scaleUpLimit := max(int32(2*current), 4)
	maxAllowed, limitReason, limitMsg := hpa.Spec.MaxReplicas, "TooManyReplicas", "the desired replica count is more than the maximum replica count"
	if hpa.Spec.MaxReplicas > scaleUpLimit {
		maxAllowed, limitReason, limitMsg = scaleUpLimit, "ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate"
	}
	minAllowed := max(minReplicas, 1)
	out, reason, msg := stabilized, "DesiredWithinRange", "the desired count is within the acceptable range"
	switch {
	case stabilized < minAllowed:
		out, reason, msg = minAllowed, "TooFewReplicas", "the desired replica count is less than the minimum replica count"
	case stabilized > maxAllowed:
		out, reason, msg = maxAllowed, limitReason, limitMsg
	}
	setLimited(hpa, out != stabilized, reason, msg)
	return out
}

func setLimited(hpa *autoscalingv2.HorizontalPodAutoscaler, limited bool, reason, msg string) {
	status := corev1.ConditionFalse
	if limited {
		status = corev1.ConditionTrue
	}
	setHPACondition(hpa, autoscalingv2.ScalingLimited, status, reason, "%s", msg)
}

// stabilize records desired and returns the recommendation the windows
// allow: no higher than the lowest of the scale-up window, no lower than
// the highest of the scale-down window (behaviors); without behaviors
// only the scale-down window applies.
func (c *HorizontalPodAutoscaler) stabilize(key string, desired int32, upWindow, downWindow time.Duration, current int32, behaviors bool) int32 {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	up, down := desired, desired
	upCut, downCut := now.Add(-upWindow), now.Add(-downWindow)
	recs := c.recommendations[key]
	kept := recs[:0]
	for _, r := range recs {
		if behaviors && r.at.After(upCut) {
			up = min(up, r.replicas)
		}
		if r.at.After(downCut) {
			down = max(down, r.replicas)
		}
		if r.at.After(upCut) || r.at.After(downCut) {
			kept = append(kept, r)
		}
	}
	c.recommendations[key] = append(kept, timedRecommendation{desired, now})
	if !behaviors {
		return down
	}
	out := max(current, up)
	return min(out, down)
}

// normalizeWithBehaviors is upstream's normalizeDesiredReplicasWithBehaviors.
func (c *HorizontalPodAutoscaler) normalizeWithBehaviors(hpa *autoscalingv2.HorizontalPodAutoscaler, key string, current, desired, minReplicas int32) int32 {
	b := withBehaviorDefaults(hpa.Spec.Behavior, c.cfg.DownscaleStabilization)
	upWindow := time.Duration(*b.ScaleUp.StabilizationWindowSeconds) * time.Second
	downWindow := time.Duration(*b.ScaleDown.StabilizationWindowSeconds) * time.Second
	stabilized := c.stabilize(key, desired, upWindow, downWindow, current, true)
	switch {
	case stabilized == desired:
		setHPACondition(hpa, autoscalingv2.AbleToScale, corev1.ConditionTrue, "ReadyForNewScale", "recommended size matches current size")
	case desired >= current:
		setHPACondition(hpa, autoscalingv2.AbleToScale, corev1.ConditionTrue, "ScaleUpStabilized", "recent recommendations were lower than current one, applying the lowest recent recommendation")
	default:
		setHPACondition(hpa, autoscalingv2.AbleToScale, corev1.ConditionTrue, "ScaleDownStabilized", "recent recommendations were higher than current one, applying the highest recent recommendation")
	}
	c.mu.Lock()
	ups, downs := c.scaleUps[key], c.scaleDowns[key]
	c.mu.Unlock()
	out, reason, msg := stabilized, "DesiredWithinRange", "the desired count is within the acceptable range"
	switch {
	case stabilized > current:
		limit := max(scaleUpLimit(current, ups, downs, b.ScaleUp), current)
		maxAllowed, limitReason, limitMsg := hpa.Spec.MaxReplicas, "TooManyReplicas", "the desired replica count is more than the maximum replica count"
		if maxAllowed > limit {
			maxAllowed, limitReason, limitMsg = limit, "ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate"
		}
		if stabilized > maxAllowed {
			out, reason, msg = maxAllowed, limitReason, limitMsg
		}
	case stabilized < current:
		limit := min(scaleDownLimit(current, ups, downs, b.ScaleDown), current)
		minAllowed, limitReason, limitMsg := minReplicas, "TooFewReplicas", "the desired replica count is less than the minimum replica count"
		if minAllowed < limit {
			minAllowed, limitReason, limitMsg = limit, "ScaleDownLimit", "the desired replica count is decreasing faster than the maximum scale rate"
		}
		if stabilized < minAllowed {
			out, reason, msg = minAllowed, limitReason, limitMsg
		}
	}
	setLimited(hpa, out != stabilized, reason, msg)
	return out
}

// withBehaviorDefaults fills what the API defaults when a behavior is set
// (upstream's GenerateHPAScaleUpRules / GenerateHPAScaleDownRules).
func withBehaviorDefaults(b *autoscalingv2.HorizontalPodAutoscalerBehavior, downWindow time.Duration) *autoscalingv2.HorizontalPodAutoscalerBehavior {
	out := &autoscalingv2.HorizontalPodAutoscalerBehavior{}
	if b != nil {
		out = b.DeepCopy()
	}
	maxPolicy := autoscalingv2.MaxChangePolicySelect
	if out.ScaleUp == nil {
		out.ScaleUp = &autoscalingv2.HPAScalingRules{}
	}
	if out.ScaleUp.StabilizationWindowSeconds == nil {
		zero := int32(0)
		out.ScaleUp.StabilizationWindowSeconds = &zero
	}
	if out.ScaleUp.SelectPolicy == nil {
		out.ScaleUp.SelectPolicy = &maxPolicy
	}
	if len(out.ScaleUp.Policies) == 0 {
		out.ScaleUp.Policies = []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PodsScalingPolicy, Value: 4, PeriodSeconds: 15}, {Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15}}
	}
	if out.ScaleDown == nil {
		out.ScaleDown = &autoscalingv2.HPAScalingRules{}
	}
	if out.ScaleDown.StabilizationWindowSeconds == nil {
		w := int32(downWindow / time.Second)
		out.ScaleDown.StabilizationWindowSeconds = &w
	}
	if out.ScaleDown.SelectPolicy == nil {
		out.ScaleDown.SelectPolicy = &maxPolicy
	}
	if len(out.ScaleDown.Policies) == 0 {
		out.ScaleDown.Policies = []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15}}
	}
	return out
}

// changedWithin sums the replica changes of the events of the last period.
func changedWithin(events []scaleEvent, periodSeconds int32) int32 {
	cut := time.Now().Add(-time.Duration(periodSeconds) * time.Second)
	var n int32
	for _, e := range events {
		if e.at.After(cut) {
			n += e.change
		}
	}
	return n
}

func scaleUpLimit(current int32, ups, downs []scaleEvent, rules *autoscalingv2.HPAScalingRules) int32 {
	if *rules.SelectPolicy == autoscalingv2.DisabledPolicySelect {
		return current
	}
	pick, result := func(a, b int32) int32 { return max(a, b) }, int32(math.MinInt32)
	if *rules.SelectPolicy == autoscalingv2.MinChangePolicySelect {
		pick, result = func(a, b int32) int32 { return min(a, b) }, math.MaxInt32
	}
	for _, p := range rules.Policies {
		start := current - changedWithin(ups, p.PeriodSeconds) + changedWithin(downs, p.PeriodSeconds)
		var proposed int32
		switch p.Type {
		case autoscalingv2.PodsScalingPolicy:
			proposed = start + p.Value
		case autoscalingv2.PercentScalingPolicy:
			proposed = int32(math.Ceil(float64(start) * (1 + float64(p.Value)/100)))
		}
		result = pick(result, proposed)
	}
	return result
}

func scaleDownLimit(current int32, ups, downs []scaleEvent, rules *autoscalingv2.HPAScalingRules) int32 {
	if *rules.SelectPolicy == autoscalingv2.DisabledPolicySelect {
		return current
	}
	pick, result := func(a, b int32) int32 { return min(a, b) }, int32(math.MaxInt32)
	if *rules.SelectPolicy == autoscalingv2.MinChangePolicySelect {
		pick, result = func(a, b int32) int32 { return max(a, b) }, math.MinInt32
	}
	for _, p := range rules.Policies {
		start := current - changedWithin(ups, p.PeriodSeconds) + changedWithin(downs, p.PeriodSeconds)
		var proposed int32
		switch p.Type {
		case autoscalingv2.PodsScalingPolicy:
			proposed = start - p.Value
		case autoscalingv2.PercentScalingPolicy:
			proposed = int32(float64(start) * (1 - float64(p.Value)/100))
		}
		result = pick(result, proposed)
	}
	return result
}

// storeScaleEvent remembers a rescale for the rate policies, dropping
// events older than the longest policy period.
func (c *HorizontalPodAutoscaler) storeScaleEvent(b *autoscalingv2.HorizontalPodAutoscalerBehavior, key string, prev, next int32) {
	if b == nil {
		return
	}
	b = withBehaviorDefaults(b, c.cfg.DownscaleStabilization)
	c.mu.Lock()
	defer c.mu.Unlock()
	store := func(m map[string][]scaleEvent, rules *autoscalingv2.HPAScalingRules, change int32) {
		longest := int32(0)
		for _, p := range rules.Policies {
			longest = max(longest, p.PeriodSeconds)
		}
		cut := time.Now().Add(-time.Duration(longest) * time.Second)
		kept := m[key][:0]
		for _, e := range m[key] {
			if e.at.After(cut) {
				kept = append(kept, e)
			}
		}
		m[key] = append(kept, scaleEvent{change: change, at: time.Now()})
	}
	if next > prev {
		store(c.scaleUps, b.ScaleUp, next-prev)
	} else {
		store(c.scaleDowns, b.ScaleDown, prev-next)
	}
}

// setHPACondition sets a condition, keeping its transition time when the
// status does not change.
func setHPACondition(hpa *autoscalingv2.HorizontalPodAutoscaler, t autoscalingv2.HorizontalPodAutoscalerConditionType, status corev1.ConditionStatus, reason, format string, args ...any) {
	var cond *autoscalingv2.HorizontalPodAutoscalerCondition
	for i := range hpa.Status.Conditions {
		if hpa.Status.Conditions[i].Type == t {
			cond = &hpa.Status.Conditions[i]
		}
	}
	if cond == nil {
		hpa.Status.Conditions = append(hpa.Status.Conditions, autoscalingv2.HorizontalPodAutoscalerCondition{Type: t})
		cond = &hpa.Status.Conditions[len(hpa.Status.Conditions)-1]
	}
	if cond.Status != status {
		cond.LastTransitionTime = metav1.Now()
	}
	cond.Status, cond.Reason, cond.Message = status, reason, fmt.Sprintf(format, args...)
}
