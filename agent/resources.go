package agent

import (
	"path"

	corev1 "k8s.io/api/core/v1"

	"github.com/nanokube/nanokube/runtime"
)

// Kubelet's cgroup arithmetic (pkg/kubelet/cm): CPU requests become shares
// (weights on cgroup v2), CPU limits a CFS quota per 100 ms period, memory
// limits the cgroup's hard limit. Pods get a cgroup of their own under
// their QoS class (kubepods, kubepods/burstable, kubepods/besteffort), the
// containers one each below it.
const (
	minShares     = 2
	maxShares     = 262144
	sharesPerCPU  = 1024
	cfsPeriod     = 100000 // µs
	minQuota      = 1000   // µs
	besteffortOOM = 1000
)

func milliCPUToShares(milli int64) uint64 {
	if milli == 0 {
		return minShares
	}
	s := milli * sharesPerCPU / 1000
	return uint64(min(max(s, minShares), maxShares))
}

func milliCPUToQuota(milli int64) int64 {
	if milli == 0 {
		return 0
	}
	return max(milli*cfsPeriod/1000, minQuota)
}

// qosClass is the pod's QoS class: the one the API server recorded, or
// upstream's GetPodQOS when it is missing.
func qosClass(pod *corev1.Pod) corev1.PodQOSClass {
	if pod.Status.QOSClass != "" {
		return pod.Status.QOSClass
	}
	requests, limits := corev1.ResourceList{}, corev1.ResourceList{}
	guaranteed := true
	all := append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...)
	for _, c := range all {
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if q, ok := c.Resources.Requests[r]; ok && !q.IsZero() {
				requests[r] = q
			}
			if q, ok := c.Resources.Limits[r]; ok && !q.IsZero() {
				limits[r] = q
			} else {
				guaranteed = false
			}
			if rq, ok := c.Resources.Requests[r]; ok {
				if lq, ok := c.Resources.Limits[r]; !ok || rq.Cmp(lq) != 0 {
					guaranteed = false
				}
			}
		}
	}
	switch {
	case len(requests) == 0 && len(limits) == 0:
		return corev1.PodQOSBestEffort
	case guaranteed:
		return corev1.PodQOSGuaranteed
	}
	return corev1.PodQOSBurstable
}

// kubepods is the node's cgroup for all pods.
func (a *Agent) kubepods() string { return path.Join(a.cfg.CgroupRoot, "kubepods") }

// podCgroup is the pod's cgroup path, under its QoS class.
func (a *Agent) podCgroup(pod *corev1.Pod) string {
	parent := a.kubepods()
	switch qosClass(pod) {
	case corev1.PodQOSBurstable:
		parent = path.Join(parent, "burstable")
	case corev1.PodQOSBestEffort:
		parent = path.Join(parent, "besteffort")
	}
	return path.Join(parent, "pod"+string(pod.UID))
}

// ensureNodeCgroups makes the node's QoS cgroups; best-effort pods share
// the minimum CPU weight like kubelet's.
func (a *Agent) ensureNodeCgroups() error {
	cg := a.cgroups()
	if cg == nil {
		return nil
	}
	for _, p := range []struct {
		path string
		res  runtime.CgroupResources
	}{
		{a.kubepods(), runtime.CgroupResources{}},
		{path.Join(a.kubepods(), "burstable"), runtime.CgroupResources{}},
		{path.Join(a.kubepods(), "besteffort"), runtime.CgroupResources{CPUShares: minShares}},
	} {
		if err := cg.Ensure(p.path, p.res); err != nil {
			return err
		}
	}
	return nil
}

func (a *Agent) cgroups() *runtime.Cgroups {
	if a.cfg.CgroupRoot == "" || a.cfg.Runtime == nil {
		return nil
	}
	return a.cfg.Runtime.Cgroups()
}

// podResources is kubelet's ResourceConfigForPod: shares from the summed
// requests, a quota and a memory limit only when every container declares
// one; best-effort pods get the minimum shares and no limits.
func podResources(pod *corev1.Pod) runtime.CgroupResources {
	var cpuReq, cpuLim, memLim int64
	cpuLimits, memLimits := true, true
	for _, c := range pod.Spec.Containers {
		cpuReq += c.Resources.Requests.Cpu().MilliValue()
		cpuLim += c.Resources.Limits.Cpu().MilliValue()
		memLim += c.Resources.Limits.Memory().Value()
		cpuLimits = cpuLimits && !c.Resources.Limits.Cpu().IsZero()
		memLimits = memLimits && !c.Resources.Limits.Memory().IsZero()
	}
	// Init containers run one at a time: the pod needs the largest of them
	// if it exceeds the sum of the app containers.
	for _, c := range pod.Spec.InitContainers {
		cpuReq = max(cpuReq, c.Resources.Requests.Cpu().MilliValue())
		cpuLim = max(cpuLim, c.Resources.Limits.Cpu().MilliValue())
		memLim = max(memLim, c.Resources.Limits.Memory().Value())
	}
	var res runtime.CgroupResources
	switch qosClass(pod) {
	case corev1.PodQOSBestEffort:
		res.CPUShares = minShares
	default:
		res.CPUShares = milliCPUToShares(cpuReq)
		if cpuLimits {
			res.CPUQuota, res.CPUPeriod = milliCPUToQuota(cpuLim), cfsPeriod
		}
		if memLimits {
			res.MemoryLimit = memLim
		}
	}
	return res
}

// containerResources fills in a container's limits like kubelet's
// generateLinuxContainerResources, and its OOM score by QoS class
// (Guaranteed pods keep the inherited score: nanokube never sets a
// negative one).
func containerResources(spec *runtime.ContainerSpec, pod *corev1.Pod, c corev1.Container, memCapacity int64) {
	cpuReq := c.Resources.Requests.Cpu().MilliValue()
	if cpuReq == 0 {
		cpuReq = c.Resources.Limits.Cpu().MilliValue()
	}
	spec.CPUShares = milliCPUToShares(cpuReq)
	if lim := c.Resources.Limits.Cpu().MilliValue(); lim > 0 {
		spec.CPUQuota, spec.CPUPeriod = milliCPUToQuota(lim), cfsPeriod
	}
	if lim := c.Resources.Limits.Memory().Value(); lim > 0 {
		spec.MemoryLimit = lim
	}
	switch qosClass(pod) {
	case corev1.PodQOSBestEffort:
		spec.OOMScoreAdj = besteffortOOM
	case corev1.PodQOSBurstable:
		adj := 1000 - 1000*c.Resources.Requests.Memory().Value()/max(memCapacity, 1)
		spec.OOMScoreAdj = int(min(max(adj, 3), besteffortOOM-1))
	}
}
