package scheduler

import (
	"math"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
)

const maxNodeScore = 100

// Image sizes that ImageLocality scales between, per container.
const (
	minImageSize int64 = 23 * 1024 * 1024
	maxImageSize int64 = 1000 * 1024 * 1024
)

// scorePlugin is one of kube-scheduler's default score plugins: raw scores
// for every feasible node, normalised to 0..100, then weighted.
type scorePlugin struct {
	weight    int64
	raw       func(pod *corev1.Pod, ni *nodeInfo, s *snapshot) int64
	normalize func(raw []int64) []int64
}

func scorePlugins(pod *corev1.Pod, s *snapshot) []scorePlugin {
	soft := constraintsOf(pod, corev1.ScheduleAnyway)
	if len(soft) == 0 {
		soft = defaultSpread(pod)
	}
	counts := make([]map[string]int, len(soft))
	for i, c := range soft {
		counts[i] = c.counts(pod, s, soft)
	}
	return []scorePlugin{
		{weight: 1, raw: leastAllocated},
		{weight: 1, raw: balancedAllocation},
		{weight: 1, raw: imageLocality},
		{weight: 2, raw: interPodAffinityScore, normalize: minMax},
		{weight: 2, raw: preferredNodeAffinity, normalize: byMax},
		{weight: 3, raw: intolerablePreferNoSchedule, normalize: reverseByMax},
		{weight: 2, raw: func(pod *corev1.Pod, ni *nodeInfo, s *snapshot) int64 {
			if len(soft) == 0 {
				return 0
			}
			if v, ok := spreadScore(pod, ni, s, soft, counts); ok {
				return v
			}
			return -1 // the node lacks a topology key: scores 0
		}, normalize: func(raw []int64) []int64 {
			if len(soft) == 0 {
				return make([]int64, len(raw))
			}
			return reverseMinMax(raw)
		}},
	}
}

// rank returns the weighted score of every candidate node.
func rank(pod *corev1.Pod, candidates []*nodeInfo, s *snapshot) []int64 {
	total := make([]int64, len(candidates))
	for _, p := range scorePlugins(pod, s) {
		raw := make([]int64, len(candidates))
		for i, ni := range candidates {
			raw[i] = p.raw(pod, ni, s)
		}
		if p.normalize != nil {
			raw = p.normalize(raw)
		}
		for i := range total {
			total[i] += p.weight * raw[i]
		}
	}
	return total
}

// fractions are the node's cpu and memory requested fractions with the
// pod on it, with the non-zero defaults kube-scheduler scores by.
func fractions(pod *corev1.Pod, ni *nodeInfo) []float64 {
	used := corev1.ResourceList{}
	addTo(used, ni.nonzero)
	addTo(used, nonzeroRequests(pod))
	var out []float64
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		alloc, ok := ni.node.Status.Allocatable[name]
		if !ok || alloc.IsZero() {
			out = append(out, 1)
			continue
		}
		u := used[name]
		out = append(out, math.Min(1, float64(u.MilliValue())/float64(alloc.MilliValue())))
	}
	return out
}

func leastAllocated(pod *corev1.Pod, ni *nodeInfo, _ *snapshot) int64 {
	f := fractions(pod, ni)
	var sum float64
	for _, x := range f {
		sum += (1 - x) * maxNodeScore
	}
	return int64(sum / float64(len(f)))
}

func balancedAllocation(pod *corev1.Pod, ni *nodeInfo, _ *snapshot) int64 {
	f := fractions(pod, ni)
	std := math.Abs(f[0]-f[1]) / 2
	return int64((1 - std) * maxNodeScore)
}

func imageLocality(pod *corev1.Pod, ni *nodeInfo, s *snapshot) int64 {
	sizes := map[string]int64{}
	for _, img := range ni.node.Status.Images {
		for _, n := range img.Names {
			sizes[n] = img.SizeBytes
		}
	}
	var sum int64
	containers := len(pod.Spec.Containers) + len(pod.Spec.InitContainers)
	for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		size, ok := sizes[c.Image]
		if !ok {
			size, ok = sizes[normalizedImage(c.Image)]
		}
		if !ok {
			continue
		}
		have := 0
		for _, other := range s.nodes {
			for _, img := range other.node.Status.Images {
				for _, n := range img.Names {
					if n == c.Image || n == normalizedImage(c.Image) {
						have++
					}
				}
			}
		}
		sum += int64(float64(size) * float64(have) / float64(len(s.nodes)))
	}
	lo, hi := minImageSize, maxImageSize*int64(containers)
	switch {
	case sum < lo:
		return 0
	case sum > hi:
		return maxNodeScore
	}
	return maxNodeScore * (sum - lo) / (hi - lo)
}

// normalizedImage is an image reference the way nodes report them
// (docker.io/library/busybox:latest for busybox).
func normalizedImage(ref string) string {
	name, tag := ref, ""
	if i := strings.LastIndexAny(ref, ":@"); i > 0 && !strings.Contains(ref[i:], "/") {
		name, tag = ref[:i], ref[i:]
	}
	if tag == "" {
		tag = ":latest"
	}
	first, _, hasSlash := strings.Cut(name, "/")
	switch {
	case !hasSlash:
		name = "docker.io/library/" + name
	case !strings.ContainsAny(first, ".:") && first != "localhost":
		name = "docker.io/" + name
	}
	return name + tag
}

func preferredNodeAffinity(pod *corev1.Pod, ni *nodeInfo, _ *snapshot) int64 {
	a := pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil {
		return 0
	}
	var sum int64
	for _, t := range a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
		if t.Weight != 0 && termMatches(t.Preference, ni.node) {
			sum += int64(t.Weight)
		}
	}
	return sum
}

func intolerablePreferNoSchedule(pod *corev1.Pod, ni *nodeInfo, _ *snapshot) int64 {
	var n int64
	for _, t := range ni.node.Spec.Taints {
		if t.Effect != corev1.TaintEffectPreferNoSchedule {
			continue
		}
		tolerated := false
		for _, tol := range pod.Spec.Tolerations {
			if (tol.Effect == "" || tol.Effect == corev1.TaintEffectPreferNoSchedule) && tol.ToleratesTaint(klog.Background(), &t, false) {
				tolerated = true
			}
		}
		if !tolerated {
			n++
		}
	}
	return n
}

func byMax(raw []int64) []int64 {
	var max int64
	for _, v := range raw {
		max = maxOf(max, v)
	}
	out := make([]int64, len(raw))
	for i, v := range raw {
		if max > 0 {
			out[i] = v * maxNodeScore / max
		}
	}
	return out
}

func reverseByMax(raw []int64) []int64 {
	out := byMax(raw)
	var max int64
	for _, v := range raw {
		max = maxOf(max, v)
	}
	for i := range out {
		if max == 0 {
			out[i] = maxNodeScore
		} else {
			out[i] = maxNodeScore - out[i]
		}
	}
	return out
}

func minMax(raw []int64) []int64 {
	out := make([]int64, len(raw))
	if len(raw) == 0 {
		return out
	}
	lo, hi := raw[0], raw[0]
	for _, v := range raw {
		lo, hi = minOf(lo, v), maxOf(hi, v)
	}
	for i, v := range raw {
		if hi > lo {
			out[i] = (v - lo) * maxNodeScore / (hi - lo)
		}
	}
	return out
}

// reverseMinMax scores the lowest raw value highest; negative raw values
// (not applicable) score 0.
func reverseMinMax(raw []int64) []int64 {
	out := make([]int64, len(raw))
	lo, hi := int64(-1), int64(-1)
	for _, v := range raw {
		if v < 0 {
			continue
		}
		if lo < 0 {
			lo, hi = v, v
		}
		lo, hi = minOf(lo, v), maxOf(hi, v)
	}
	for i, v := range raw {
		switch {
		case v < 0:
			out[i] = 0
		case hi == lo:
			out[i] = maxNodeScore
		default:
			out[i] = (hi - v) * maxNodeScore / (hi - lo)
		}
	}
	return out
}

func maxOf(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

func minOf(a, b int64) int64 {
	if a < b {
		return a
	}
	return b
}
