package agent

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nanokube/nanokube/runtime"
)

func container(name string, req, lim corev1.ResourceList) corev1.Container {
	return corev1.Container{Name: name, Resources: corev1.ResourceRequirements{Requests: req, Limits: lim}}
}

func rl(cpu, mem string) corev1.ResourceList {
	out := corev1.ResourceList{}
	if cpu != "" {
		out[corev1.ResourceCPU] = resource.MustParse(cpu)
	}
	if mem != "" {
		out[corev1.ResourceMemory] = resource.MustParse(mem)
	}
	return out
}

func TestPodCgroupResources(t *testing.T) {
	cases := []struct {
		name string
		pod  corev1.PodSpec
		qos  corev1.PodQOSClass
		want runtime.CgroupResources
	}{
		{"guaranteed: shares, quota and memory limit from the sums",
			corev1.PodSpec{Containers: []corev1.Container{container("a", rl("500m", "64Mi"), rl("500m", "64Mi")), container("b", rl("250m", "32Mi"), rl("250m", "32Mi"))}},
			corev1.PodQOSGuaranteed, runtime.CgroupResources{CPUShares: 768, CPUQuota: 75000, CPUPeriod: 100000, MemoryLimit: 96 << 20}},
		{"burstable without all limits: shares only",
			corev1.PodSpec{Containers: []corev1.Container{container("a", rl("100m", ""), rl("200m", "")), container("b", nil, nil)}},
			corev1.PodQOSBurstable, runtime.CgroupResources{CPUShares: 102}},
		{"burstable with every memory limit: the memory limit",
			corev1.PodSpec{Containers: []corev1.Container{container("a", nil, rl("", "32Mi"))}},
			corev1.PodQOSBurstable, runtime.CgroupResources{CPUShares: 2, MemoryLimit: 32 << 20}},
		{"best effort: the minimum shares",
			corev1.PodSpec{Containers: []corev1.Container{container("a", nil, nil)}},
			corev1.PodQOSBestEffort, runtime.CgroupResources{CPUShares: 2}},
		{"an init container larger than the app containers",
			corev1.PodSpec{InitContainers: []corev1.Container{container("i", rl("1", "1Gi"), rl("1", "1Gi"))}, Containers: []corev1.Container{container("a", rl("100m", "64Mi"), rl("100m", "64Mi"))}},
			corev1.PodQOSGuaranteed, runtime.CgroupResources{CPUShares: 1024, CPUQuota: 100000, CPUPeriod: 100000, MemoryLimit: 1 << 30}},
	}
	for _, c := range cases {
		pod := &corev1.Pod{Spec: c.pod, Status: corev1.PodStatus{QOSClass: c.qos}}
		if got := podResources(pod); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
		pod.Status.QOSClass = ""
		if got := qosClass(pod); got != c.qos {
			t.Errorf("%s: computed QoS %s, want %s", c.name, got, c.qos)
		}
	}
}

func TestContainerResources(t *testing.T) {
	pod := &corev1.Pod{Status: corev1.PodStatus{QOSClass: corev1.PodQOSBurstable}}
	var s runtime.ContainerSpec
	containerResources(&s, pod, container("a", rl("", "256Mi"), rl("1500m", "512Mi")), 1<<30)
	// No CPU request: the limit stands in (as the API server defaults it).
	if s.CPUShares != 1536 || s.CPUQuota != 150000 || s.CPUPeriod != 100000 || s.MemoryLimit != 512<<20 || s.OOMScoreAdj != 750 {
		t.Errorf("burstable container: %+v", s)
	}
	s = runtime.ContainerSpec{}
	containerResources(&s, &corev1.Pod{Status: corev1.PodStatus{QOSClass: corev1.PodQOSBestEffort}}, container("a", nil, nil), 1<<30)
	if s.CPUShares != 2 || s.CPUQuota != 0 || s.MemoryLimit != 0 || s.OOMScoreAdj != 1000 {
		t.Errorf("best-effort container: %+v", s)
	}
	s = runtime.ContainerSpec{}
	containerResources(&s, &corev1.Pod{Status: corev1.PodStatus{QOSClass: corev1.PodQOSGuaranteed}}, container("a", rl("1m", "1Mi"), rl("1m", "1Mi")), 1<<30)
	if s.CPUQuota != 1000 || s.CPUShares != 2 || s.OOMScoreAdj != 0 {
		t.Errorf("guaranteed container (minimum quota, no negative OOM score): %+v", s)
	}
}

func TestPodCgroupPath(t *testing.T) {
	a := &Agent{cfg: Config{CgroupRoot: "/nanokube-p/node1"}}
	for qos, want := range map[corev1.PodQOSClass]string{
		corev1.PodQOSGuaranteed: "/nanokube-p/node1/kubepods/poduid1",
		corev1.PodQOSBurstable:  "/nanokube-p/node1/kubepods/burstable/poduid1",
		corev1.PodQOSBestEffort: "/nanokube-p/node1/kubepods/besteffort/poduid1",
	} {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: "uid1"}, Status: corev1.PodStatus{QOSClass: qos}}
		if got := a.podCgroup(pod); got != want {
			t.Errorf("%s pod cgroup %s, want %s", qos, got, want)
		}
	}
}
