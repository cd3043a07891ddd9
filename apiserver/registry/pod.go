package registry

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func podBehaviour(r *Resource) {
	r.Default = func(obj runtime.Object) {
		pod := obj.(*corev1.Pod)
		defaultPodSpec(&pod.Spec)
		if pod.Spec.EnableServiceLinks == nil {
			pod.Spec.EnableServiceLinks = boolPtr(true)
		}
	}
	r.PrepareForCreate = func(obj runtime.Object) {
		pod := obj.(*corev1.Pod)
		pod.Status = corev1.PodStatus{Phase: corev1.PodPending, QOSClass: qosClass(&pod.Spec)}
		// ServiceAccount admission: every pod runs as an account.
		if pod.Spec.ServiceAccountName == "" {
			pod.Spec.ServiceAccountName = "default"
		}
		// Priority admission and DefaultTolerationSeconds admission.
		if pod.Spec.Priority == nil {
			pod.Spec.Priority = int32Ptr(0)
		}
		if pod.Spec.PreemptionPolicy == nil {
			p := corev1.PreemptLowerPriority
			pod.Spec.PreemptionPolicy = &p
		}
		addDefaultToleration(&pod.Spec, corev1.TaintNodeNotReady)
		addDefaultToleration(&pod.Spec, corev1.TaintNodeUnreachable)
	}
	r.Validate = func(obj runtime.Object) field.ErrorList {
		return validatePodSpec(&obj.(*corev1.Pod).Spec, field.NewPath("spec"))
	}
	r.FieldSet = func(obj runtime.Object) fields.Set {
		pod := obj.(*corev1.Pod)
		return fields.Set{
			"spec.nodeName":            pod.Spec.NodeName,
			"spec.restartPolicy":       string(pod.Spec.RestartPolicy),
			"spec.schedulerName":       pod.Spec.SchedulerName,
			"spec.serviceAccountName":  pod.Spec.ServiceAccountName,
			"spec.hostNetwork":         fmt.Sprint(pod.Spec.HostNetwork),
			"status.phase":             string(pod.Status.Phase),
			"status.podIP":             pod.Status.PodIP,
			"status.nominatedNodeName": pod.Status.NominatedNodeName,
		}
	}
	r.Table = &Table{
		Columns: []metav1.TableColumnDefinition{
			nameCol,
			col("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
			col("Status", "string", "The aggregate status of the containers in this pod."),
			col("Restarts", "string", "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
			ageCol,
			wide(col("IP", "string", corev1.PodStatus{}.SwaggerDoc()["podIP"])),
			wide(col("Node", "string", corev1.PodSpec{}.SwaggerDoc()["nodeName"])),
			wide(col("Nominated Node", "string", corev1.PodStatus{}.SwaggerDoc()["nominatedNodeName"])),
			wide(col("Readiness Gates", "string", corev1.PodSpec{}.SwaggerDoc()["readinessGates"])),
		},
		Row: func(obj runtime.Object) ([]interface{}, error) {
			pod := obj.(*corev1.Pod)
			ready, total, restarts, lastRestart, status := podSummary(pod)
			restartsCell := fmt.Sprint(restarts)
			if restarts > 0 && !lastRestart.IsZero() {
				restartsCell = fmt.Sprintf("%d (%s ago)", restarts, age(lastRestart))
			}
			gates := "<none>"
			if n := len(pod.Spec.ReadinessGates); n > 0 {
				ok := 0
				for _, g := range pod.Spec.ReadinessGates {
					for _, c := range pod.Status.Conditions {
						if c.Type == g.ConditionType && c.Status == corev1.ConditionTrue {
							ok++
						}
					}
				}
				gates = fmt.Sprintf("%d/%d", ok, n)
			}
			return []interface{}{pod.Name, fmt.Sprintf("%d/%d", ready, total), status, restartsCell, age(pod.CreationTimestamp),
				orNone(pod.Status.PodIP), orNone(pod.Spec.NodeName), orNone(pod.Status.NominatedNodeName), gates}, nil
		},
	}
}

// podSummary is upstream's printPod: readiness, restarts and the STATUS text.
func podSummary(pod *corev1.Pod) (ready, total, restarts int, lastRestart metav1.Time, reason string) {
	total = len(pod.Spec.Containers)
	reason = string(pod.Status.Phase)
	if pod.Status.Reason != "" {
		reason = pod.Status.Reason
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Reason == corev1.PodReasonSchedulingGated {
			reason = corev1.PodReasonSchedulingGated
		}
	}
	noteRestart := func(cs corev1.ContainerStatus) {
		restarts += int(cs.RestartCount)
		if t := cs.LastTerminationState.Terminated; t != nil && t.FinishedAt.After(lastRestart.Time) {
			lastRestart = t.FinishedAt
		}
	}
	initializing := false
	for i, c := range pod.Status.InitContainerStatuses {
		noteRestart(c)
		switch {
		case c.State.Terminated != nil && c.State.Terminated.ExitCode == 0:
			continue
		case c.State.Terminated != nil:
			if c.State.Terminated.Reason == "" {
				if c.State.Terminated.Signal != 0 {
					reason = fmt.Sprintf("Init:Signal:%d", c.State.Terminated.Signal)
				} else {
					reason = fmt.Sprintf("Init:ExitCode:%d", c.State.Terminated.ExitCode)
				}
			} else {
				reason = "Init:" + c.State.Terminated.Reason
			}
			initializing = true
		case c.State.Waiting != nil && c.State.Waiting.Reason != "" && c.State.Waiting.Reason != "PodInitializing":
			reason = "Init:" + c.State.Waiting.Reason
			initializing = true
		default:
			reason = fmt.Sprintf("Init:%d/%d", i, len(pod.Spec.InitContainers))
			initializing = true
		}
		break
	}
	if !initializing {
		hasRunning := false
		for i := len(pod.Status.ContainerStatuses) - 1; i >= 0; i-- {
			c := pod.Status.ContainerStatuses[i]
			noteRestart(c)
			switch {
			case c.State.Waiting != nil && c.State.Waiting.Reason != "":
				reason = c.State.Waiting.Reason
			case c.State.Terminated != nil && c.State.Terminated.Reason != "":
				reason = c.State.Terminated.Reason
			case c.State.Terminated != nil && c.State.Terminated.Signal != 0:
				reason = fmt.Sprintf("Signal:%d", c.State.Terminated.Signal)
			case c.State.Terminated != nil:
				reason = fmt.Sprintf("ExitCode:%d", c.State.Terminated.ExitCode)
			case c.Ready && c.State.Running != nil:
				hasRunning = true
				ready++
			}
		}
		if reason == "Completed" && hasRunning {
			reason = "NotReady"
			for _, c := range pod.Status.Conditions {
				if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
					reason = "Running"
				}
			}
		}
	}
	if pod.DeletionTimestamp != nil {
		if pod.Status.Reason == "NodeLost" {
			reason = "Unknown"
		} else if reason != "Completed" {
			reason = "Terminating"
		}
	}
	return ready, total, restarts, lastRestart, reason
}

// qosClass is upstream's GetPodQOS.
func qosClass(s *corev1.PodSpec) corev1.PodQOSClass {
	requests, limits := map[corev1.ResourceName]bool{}, map[corev1.ResourceName]bool{}
	guaranteed := true
	any := false
	for _, c := range append(append([]corev1.Container{}, s.InitContainers...), s.Containers...) {
		for name, q := range c.Resources.Requests {
			if (name == corev1.ResourceCPU || name == corev1.ResourceMemory) && !q.IsZero() {
				requests[name], any = true, true
			}
		}
		has := map[corev1.ResourceName]bool{}
		for name, q := range c.Resources.Limits {
			if (name == corev1.ResourceCPU || name == corev1.ResourceMemory) && !q.IsZero() {
				limits[name], has[name], any = true, true, true
				if r, ok := c.Resources.Requests[name]; ok && r.Cmp(q) != 0 {
					guaranteed = false
				}
			}
		}
		if !has[corev1.ResourceCPU] || !has[corev1.ResourceMemory] {
			guaranteed = false
		}
	}
	switch {
	case !any:
		return corev1.PodQOSBestEffort
	case guaranteed && len(limits) == 2:
		return corev1.PodQOSGuaranteed
	}
	return corev1.PodQOSBurstable
}

func addDefaultToleration(s *corev1.PodSpec, key string) {
	for _, t := range s.Tolerations {
		if t.Key == key && (t.Effect == "" || t.Effect == corev1.TaintEffectNoExecute) {
			return
		}
	}
	s.Tolerations = append(s.Tolerations, corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: int64Ptr(300)})
}
