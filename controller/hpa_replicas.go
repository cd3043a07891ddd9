package controller

import (
	"errors"
	"fmt"
	"math"
	"time"

	corev1 "k8s.io/api/core/v1"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
)

// The HorizontalPodAutoscaler's replica arithmetic, as upstream's
// replica_calculator.go does it: pods that are being deleted or failed are
// ignored; pending pods, and for CPU pods still starting whose readiness
// is recent, count as unready; pods without metrics count as missing.
// Missing and unready pods get the value that dampens the change (100%
// of their request when scaling down, 0 when scaling up) and a change
// that stays within the tolerance or flips direction does not happen.

// podUsage is one pod's usage of a resource, summed over its containers.
type podUsage struct {
	value     int64 // milli-units
	timestamp time.Time
	window    time.Duration
}

// usageOf sums the resource over the containers of each pod's metrics
// (only container when it is set); pods that lack it for a container are
// left out, like upstream's resource metrics client.
func usageOf(list []metricsv1beta1.PodMetrics, res corev1.ResourceName, container string) map[string]podUsage {
	out := map[string]podUsage{}
	for _, m := range list {
		var sum int64
		found, missing := false, false
		for _, c := range m.Containers {
			if container != "" && c.Name != container {
				continue
			}
			q, ok := c.Usage[res]
			if !ok {
				missing = true
				break
			}
			sum += q.MilliValue()
			found = true
		}
		if found && !missing {
			out[m.Name] = podUsage{value: sum, timestamp: m.Timestamp.Time, window: m.Window.Duration}
		}
	}
	return out
}

// replicaCalc holds the calculator's settings (upstream's flags).
type replicaCalc struct {
	tolerance             float64       // --horizontal-pod-autoscaler-tolerance (0.1)
	cpuInitPeriod         time.Duration // --horizontal-pod-autoscaler-cpu-initialization-period (5m)
	initialReadinessDelay time.Duration // --horizontal-pod-autoscaler-initial-readiness-delay (30s)
}

// groupPods sorts the target's pods like upstream's groupPods.
func (rc replicaCalc) groupPods(pods []*corev1.Pod, usage map[string]podUsage, res corev1.ResourceName, now time.Time) (ready int, unready, missing, ignored map[string]bool) {
	unready, missing, ignored = map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, pod := range pods {
		if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodFailed {
			ignored[pod.Name] = true
			continue
		}
		if pod.Status.Phase == corev1.PodPending {
			unready[pod.Name] = true
			continue
		}
		m, ok := usage[pod.Name]
		if !ok {
			missing[pod.Name] = true
			continue
		}
		if res == corev1.ResourceCPU {
			var cond *corev1.PodCondition
			for i := range pod.Status.Conditions {
				if pod.Status.Conditions[i].Type == corev1.PodReady {
					cond = &pod.Status.Conditions[i]
				}
			}
			isUnready := false
			switch {
			case cond == nil || pod.Status.StartTime == nil:
				isUnready = true
			case pod.Status.StartTime.Add(rc.cpuInitPeriod).After(now):
				// Still initializing: unready unless it has been ready for a
				// whole metric window.
				isUnready = cond.Status == corev1.ConditionFalse || m.timestamp.Before(cond.LastTransitionTime.Add(m.window))
			default:
				// Never became ready in its first moments: unready.
				isUnready = cond.Status == corev1.ConditionFalse && pod.Status.StartTime.Add(rc.initialReadinessDelay).After(cond.LastTransitionTime.Time)
			}
			if isUnready {
				unready[pod.Name] = true
				continue
			}
		}
		ready++
	}
	return ready, unready, missing, ignored
}

// podRequests is the pods' summed container requests of res (milli).
func podRequests(pods []*corev1.Pod, res corev1.ResourceName, container string) (map[string]int64, error) {
	out := map[string]int64{}
	for _, pod := range pods {
		var sum int64
		for _, c := range pod.Spec.Containers {
			if container != "" && c.Name != container {
				continue
			}
			q, ok := c.Resources.Requests[res]
			if !ok {
				return nil, fmt.Errorf("missing request for %s in container %s of Pod %s", res, c.Name, pod.Name)
			}
			sum += q.MilliValue()
		}
		out[pod.Name] = sum
	}
	return out, nil
}

// utilizationRatio is upstream's GetResourceUtilizationRatio: the pods'
// usage over their requests (percent), against the target.
func utilizationRatio(usage map[string]podUsage, requests map[string]int64, target int32) (ratio float64, utilization int32, rawAverage int64, err error) {
	var usageTotal, requestsTotal int64
	n := int64(0)
	for name, u := range usage {
		req, ok := requests[name]
		if !ok {
			continue
		}
		usageTotal += u.value
		requestsTotal += req
		n++
	}
	if requestsTotal == 0 {
		return 0, 0, 0, errors.New("no metrics returned matched known pods")
	}
	utilization = int32(usageTotal * 100 / requestsTotal)
	return float64(utilization) / float64(target), utilization, usageTotal / n, nil
}

// resourceReplicas is upstream's GetResourceReplicas (target utilization).
func (rc replicaCalc) resourceReplicas(current int32, target int32, res corev1.ResourceName, container string, usage map[string]podUsage, pods []*corev1.Pod, now time.Time) (replicas int32, utilization int32, rawAverage int64, err error) {
	if len(pods) == 0 {
		return 0, 0, 0, errors.New("no pods returned by selector while calculating replica count")
	}
	ready, unready, missing, ignored := rc.groupPods(pods, usage, res, now)
	usage = cloneUsage(usage)
	for name := range ignored {
		delete(usage, name)
	}
	for name := range unready {
		delete(usage, name)
	}
	requests, err := podRequests(pods, res, container)
	if err != nil {
		return 0, 0, 0, err
	}
	if len(usage) == 0 {
		return 0, 0, 0, errors.New("did not receive metrics for targeted pods (pods might be unready)")
	}
	ratio, utilization, rawAverage, err := utilizationRatio(usage, requests, target)
	if err != nil {
		return 0, 0, 0, err
	}
	scaleUpWithUnready := len(unready) > 0 && ratio > 1.0
	if !scaleUpWithUnready && len(missing) == 0 {
		if math.Abs(1.0-ratio) <= rc.tolerance {
			return current, utilization, rawAverage, nil
		}
		return int32(math.Ceil(ratio * float64(ready))), utilization, rawAverage, nil
	}
	if len(missing) > 0 {
		if ratio < 1.0 {
			// Scaling down: the missing pods may be busy; count them at
			// their request (or the target if that is higher).
			fallback := max(100, target)
			for name := range missing {
				usage[name] = podUsage{value: requests[name] * int64(fallback) / 100}
			}
		} else {
			for name := range missing {
				usage[name] = podUsage{}
			}
		}
	}
	if scaleUpWithUnready {
		for name := range unready {
			usage[name] = podUsage{}
		}
	}
	newRatio, _, _, err := utilizationRatio(usage, requests, target)
	if err != nil {
		return 0, 0, 0, err
	}
	if math.Abs(1.0-newRatio) <= rc.tolerance || (ratio < 1.0 && newRatio > 1.0) || (ratio > 1.0 && newRatio < 1.0) {
		return current, utilization, rawAverage, nil
	}
	next := int32(math.Ceil(newRatio * float64(len(usage))))
	if (newRatio < 1.0 && next > current) || (newRatio > 1.0 && next < current) {
		return current, utilization, rawAverage, nil
	}
	return next, utilization, rawAverage, nil
}

// averageValueReplicas is upstream's GetRawResourceReplicas (a target
// average value per pod, in milli-units).
func (rc replicaCalc) averageValueReplicas(current int32, targetMilli int64, res corev1.ResourceName, usage map[string]podUsage, pods []*corev1.Pod, now time.Time) (replicas int32, average int64, err error) {
	if len(pods) == 0 {
		return 0, 0, errors.New("no pods returned by selector while calculating replica count")
	}
	if targetMilli <= 0 {
		return 0, 0, errors.New("the target average value must be positive")
	}
	ready, unready, missing, ignored := rc.groupPods(pods, usage, res, now)
	usage = cloneUsage(usage)
	for name := range ignored {
		delete(usage, name)
	}
	for name := range unready {
		delete(usage, name)
	}
	if len(usage) == 0 {
		return 0, 0, errors.New("did not receive metrics for targeted pods (pods might be unready)")
	}
	avg := func() (float64, int64) {
		var sum int64
		for _, u := range usage {
			sum += u.value
		}
		a := sum / int64(len(usage))
		return float64(a) / float64(targetMilli), a
	}
	ratio, average := avg()
	scaleUpWithUnready := len(unready) > 0 && ratio > 1.0
	if !scaleUpWithUnready && len(missing) == 0 {
		if math.Abs(1.0-ratio) <= rc.tolerance {
			return current, average, nil
		}
		return int32(math.Ceil(ratio * float64(ready))), average, nil
	}
	for name := range missing {
		if ratio < 1.0 {
			usage[name] = podUsage{value: targetMilli}
		} else {
			usage[name] = podUsage{}
		}
	}
	if scaleUpWithUnready {
		for name := range unready {
			usage[name] = podUsage{}
		}
	}
	newRatio, _ := avg()
	if math.Abs(1.0-newRatio) <= rc.tolerance || (ratio < 1.0 && newRatio > 1.0) || (ratio > 1.0 && newRatio < 1.0) {
		return current, average, nil
	}
	next := int32(math.Ceil(newRatio * float64(len(usage))))
	if (newRatio < 1.0 && next > current) || (newRatio > 1.0 && next < current) {
		return current, average, nil
	}
	return next, average, nil
}

func cloneUsage(m map[string]podUsage) map[string]podUsage {
	out := make(map[string]podUsage, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
