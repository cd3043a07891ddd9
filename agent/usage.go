package agent

import (
	"context"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
)

// Resource metrics (what kubelet's resource metrics endpoint gives
// metrics-server): CPU is a rate, so it needs two readings of the
// cumulative cgroup counters. Nothing samples in the background: each
// request reads the counters once and measures against a reading an
// earlier request (or the container's start, when the counters were zero)
// left; only when no reading is recent enough does it take a second one
// after a short wait. An idle cluster reads no cgroup files at all.
const (
	// metricResolution is metrics-server's default scrape interval: the
	// window a reading tries to measure over.
	metricResolution = 15 * time.Second
	minWindow        = time.Second      // shorter windows are too noisy
	maxWindow        = 90 * time.Second // older readings are too stale to say "now"
	keepEvery        = 5 * time.Second  // a reading is kept at most this often
)

// sampleSet is one reading of a group of cumulative CPU counters (a pod's
// containers, or a node's parts) at one time.
type sampleSet struct {
	at  time.Time
	cpu map[string]uint64 // part → nanoseconds used
}

// usageCache keeps the last two readings per pod (by uid) and per node.
type usageCache struct {
	mu    sync.Mutex
	byKey map[string][]sampleSet
}

func newUsageCache() *usageCache { return &usageCache{byKey: map[string][]sampleSet{}} }

// pick returns the reading to measure from at now: of the kept ones and
// the baseline, the one whose age is closest to metricResolution within
// [minWindow, maxWindow].
func (u *usageCache) pick(key string, now time.Time, baseline *sampleSet) (sampleSet, bool) {
	u.mu.Lock()
	cands := append([]sampleSet{}, u.byKey[key]...)
	u.mu.Unlock()
	if baseline != nil {
		cands = append(cands, *baseline)
	}
	var best sampleSet
	found := false
	for _, c := range cands {
		age := now.Sub(c.at)
		if age < minWindow || age > maxWindow {
			continue
		}
		if !found || absDuration(age-metricResolution) < absDuration(now.Sub(best.at)-metricResolution) {
			best, found = c, true
		}
	}
	return best, found
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// record keeps s unless a reading from less than keepEvery ago is kept.
func (u *usageCache) record(key string, s sampleSet) {
	u.mu.Lock()
	defer u.mu.Unlock()
	kept := u.byKey[key]
	if n := len(kept); n > 0 && s.at.Sub(kept[n-1].at) < keepEvery {
		return
	}
	kept = append(kept, s)
	if len(kept) > 2 {
		kept = kept[len(kept)-2:]
	}
	u.byKey[key] = kept
}

func (u *usageCache) forget(key string) {
	u.mu.Lock()
	delete(u.byKey, key)
	u.mu.Unlock()
}

// rate is the CPU use in nanocores of part between prev and cur; a
// counter that went backwards (the container restarted and its cgroup is
// new) counts from startedAt.
func rate(prev, cur sampleSet, part string, startedAt time.Time) int64 {
	c := cur.cpu[part]
	p, ok := prev.cpu[part]
	from := prev.at
	if !ok || c < p {
		p = 0
		if startedAt.After(from) {
			from = startedAt
		}
	}
	secs := cur.at.Sub(from).Seconds()
	if secs <= 0 {
		return 0
	}
	return int64(float64(c-p) / secs)
}

// podReading is one pod's containers and their current counters.
type podReading struct {
	pod     *corev1.Pod
	cgroups map[string]string // running container → cgroup
	started map[string]time.Time
	cur     sampleSet
	memory  map[string]uint64
}

// PodMetrics returns the usage of the given pods of this node that run
// containers, as metrics.k8s.io PodMetrics.
func (a *Agent) PodMetrics(ctx context.Context, pods []*corev1.Pod) ([]metricsv1beta1.PodMetrics, error) {
	cg := a.cgroups()
	if cg == nil {
		return nil, fmt.Errorf("node %s: no cgroups to read metrics from", a.cfg.NodeName)
	}
	var readings []*podReading
	for _, pod := range pods {
		r := &podReading{pod: pod, cgroups: map[string]string{}, started: map[string]time.Time{}}
		a.mu.Lock()
		st := a.state[string(pod.UID)]
		if st != nil && st.cgroup != "" && !st.terminating {
			for _, c := range pod.Spec.Containers {
				if st.watching[c.Name] {
					r.cgroups[c.Name] = path.Join(st.cgroup, containerID(st.uid, c.Name))
					r.started[c.Name] = st.startedAt[c.Name]
				}
			}
		}
		a.mu.Unlock()
		if len(r.cgroups) > 0 {
			readings = append(readings, r)
		}
	}
	read := func(r *podReading) bool {
		r.cur = sampleSet{at: time.Now(), cpu: map[string]uint64{}}
		r.memory = map[string]uint64{}
		for name, p := range r.cgroups {
			s, err := cg.Stats(p)
			if err != nil {
				continue // it just ended
			}
			r.cur.cpu[name], r.memory[name] = s.CPUUsageNanos, s.WorkingSet
		}
		return len(r.cur.cpu) > 0
	}
	type measured struct {
		r    *podReading
		prev sampleSet
	}
	var done []measured
	var again []*podReading
	for _, r := range readings {
		if !read(r) {
			continue
		}
		var base *sampleSet
		if first := earliest(r.started); !first.IsZero() {
			base = &sampleSet{at: first, cpu: map[string]uint64{}}
		}
		prev, ok := a.usage.pick(string(r.pod.UID), r.cur.at, base)
		if ok {
			done = append(done, measured{r, prev})
		} else {
			a.usage.record(string(r.pod.UID), r.cur)
			again = append(again, r)
		}
	}
	if len(again) > 0 {
		if err := waitFor(ctx, minWindow); err != nil {
			return nil, err
		}
		for _, r := range again {
			prev := r.cur
			if read(r) {
				done = append(done, measured{r, prev})
			}
		}
	}
	out := make([]metricsv1beta1.PodMetrics, 0, len(done))
	for _, m := range done {
		a.usage.record(string(m.r.pod.UID), m.r.cur)
		pm := metricsv1beta1.PodMetrics{
			ObjectMeta: metav1.ObjectMeta{Name: m.r.pod.Name, Namespace: m.r.pod.Namespace, Labels: m.r.pod.Labels, CreationTimestamp: metav1.Now()},
			Timestamp:  metav1.NewTime(m.r.cur.at),
			Window:     metav1.Duration{Duration: m.r.cur.at.Sub(m.prev.at).Round(time.Millisecond)},
		}
		for _, c := range m.r.pod.Spec.Containers {
			if _, ok := m.r.cur.cpu[c.Name]; !ok {
				continue
			}
			pm.Containers = append(pm.Containers, metricsv1beta1.ContainerMetrics{Name: c.Name, Usage: corev1.ResourceList{
				corev1.ResourceCPU:    *resource.NewScaledQuantity(rate(m.prev, m.r.cur, c.Name, m.r.started[c.Name]), resource.Nano),
				corev1.ResourceMemory: *resource.NewQuantity(int64(m.r.memory[c.Name]), resource.BinarySI),
			}})
		}
		out = append(out, pm)
	}
	return out, nil
}

func earliest(ts map[string]time.Time) time.Time {
	var first time.Time
	for _, t := range ts {
		if !t.IsZero() && (first.IsZero() || t.Before(first)) {
			first = t
		}
	}
	return first
}

func waitFor(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

const nodeKey = "node"

// nodeReading reads the node's counters: all its pods (the kubepods
// cgroup) and, on the control-plane node, the nanokube daemon itself (its
// API server, controllers and agents, like the control-plane components of
// a kubeadm node).
func (a *Agent) nodeReading() (sampleSet, uint64, error) {
	s := sampleSet{at: time.Now(), cpu: map[string]uint64{}}
	st, err := a.cgroups().Stats(a.kubepods())
	if err != nil {
		return s, 0, fmt.Errorf("node %s: read pod cgroups: %w", a.cfg.NodeName, err)
	}
	s.cpu["pods"] = st.CPUUsageNanos
	mem := st.WorkingSet
	if a.cfg.ControlPlane {
		if cpu, rss, err := selfUsage(); err == nil {
			s.cpu["daemon"] = cpu
			mem += rss
		}
	}
	return s, mem, nil
}

// NodeMetrics returns the node's usage as metrics.k8s.io NodeMetrics.
func (a *Agent) NodeMetrics(ctx context.Context) (*metricsv1beta1.NodeMetrics, error) {
	if a.cgroups() == nil {
		return nil, fmt.Errorf("node %s: no cgroups to read metrics from", a.cfg.NodeName)
	}
	cur, mem, err := a.nodeReading()
	if err != nil {
		return nil, err
	}
	prev, ok := a.usage.pick(nodeKey, cur.at, nil)
	if !ok {
		a.usage.record(nodeKey, cur)
		if err := waitFor(ctx, minWindow); err != nil {
			return nil, err
		}
		prev = cur
		if cur, mem, err = a.nodeReading(); err != nil {
			return nil, err
		}
	}
	a.usage.record(nodeKey, cur)
	var cpu int64
	for part := range cur.cpu {
		cpu += rate(prev, cur, part, time.Time{})
	}
	return &metricsv1beta1.NodeMetrics{
		ObjectMeta: metav1.ObjectMeta{Name: a.cfg.NodeName, CreationTimestamp: metav1.Now()},
		Timestamp:  metav1.NewTime(cur.at),
		Window:     metav1.Duration{Duration: cur.at.Sub(prev.at).Round(time.Millisecond)},
		Usage: corev1.ResourceList{
			corev1.ResourceCPU:    *resource.NewScaledQuantity(cpu, resource.Nano),
			corev1.ResourceMemory: *resource.NewQuantity(int64(mem), resource.BinarySI),
		},
	}, nil
}

// selfUsage is this process's CPU time (ns) and resident memory (bytes).
func selfUsage() (uint64, uint64, error) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("parse /proc/self/stat")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 22 {
		return 0, 0, fmt.Errorf("parse /proc/self/stat")
	}
	// utime and stime (fields 14 and 15) in clock ticks of 1/100 s;
	// resident pages (field 24).
	utime, _ := strconv.ParseUint(f[11], 10, 64)
	stime, _ := strconv.ParseUint(f[12], 10, 64)
	rss, _ := strconv.ParseUint(f[21], 10, 64)
	return (utime + stime) * uint64(time.Second/100), rss * uint64(os.Getpagesize()), nil
}
