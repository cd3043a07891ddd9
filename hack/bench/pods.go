//go:build linux

package main

import (
	"context"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// PodResult is the pod start latency with a local image, measured two
// ways: one pod at a time (the latency a developer sees for `kubectl run`)
// and a burst of n pods created at once (how the node copes with a
// rollout; later pods queue behind earlier ones).
type PodResult struct {
	Sequential PodLatency `json:"one_at_a_time"`
	Burst      PodLatency `json:"burst"`
}

// PodLatency is create → Running and create → Ready over a set of pods.
type PodLatency struct {
	Pods         int     `json:"pods"`
	RunningP50Ms float64 `json:"create_to_running_p50_ms"`
	RunningP99Ms float64 `json:"create_to_running_p99_ms"`
	ReadyP50Ms   float64 `json:"create_to_ready_p50_ms"`
	ReadyP99Ms   float64 `json:"create_to_ready_p99_ms"`
	TotalSeconds float64 `json:"all_ready_seconds"`
	PodsPerSec   float64 `json:"pods_per_second"`
}

// podLatency measures n pods one at a time, then n pods at once, each set
// in its own namespace that is deleted afterwards.
func podLatency(ctx context.Context, cs kubernetes.Interface, image string, n int) (PodResult, error) {
	var r PodResult
	var err error
	if r.Sequential, err = podSet(ctx, cs, image, "bench-pods-seq", n, 1); err != nil {
		return r, fmt.Errorf("one pod at a time: %w", err)
	}
	if r.Burst, err = podSet(ctx, cs, image, "bench-pods-burst", n, n); err != nil {
		return r, fmt.Errorf("burst: %w", err)
	}
	return r, nil
}

// podSet creates n pods, at most inflight not yet Ready at a time, and
// watches when each runs and becomes Ready.
func podSet(ctx context.Context, cs kubernetes.Interface, image, ns string, n, inflight int) (PodLatency, error) {
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return PodLatency{}, err
	}
	w, err := cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		return PodLatency{}, err
	}
	defer w.Stop()
	created := map[string]time.Time{}
	running := map[string]time.Duration{}
	ready := map[string]time.Duration{}
	begin := time.Now()
	zero := int64(0)
	next := 0
	create := func() error {
		name := fmt.Sprintf("p%03d", next)
		next++
		created[name] = time.Now()
		_, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PodSpec{TerminationGracePeriodSeconds: &zero, Containers: []corev1.Container{{
				Name: "c", Image: image, ImagePullPolicy: corev1.PullNever, Command: []string{"sleep", "3600"}}}},
		}, metav1.CreateOptions{})
		return err
	}
	deadline := time.After(5 * time.Minute)
	for len(ready) < n {
		for next < n && next-len(ready) < inflight {
			if err := create(); err != nil {
				return PodLatency{}, err
			}
		}
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				return PodLatency{}, fmt.Errorf("watch ended with %d/%d pods ready", len(ready), n)
			}
			pod, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			t := time.Since(created[pod.Name])
			if _, seen := running[pod.Name]; !seen && pod.Status.Phase == corev1.PodRunning {
				running[pod.Name] = t
			}
			for _, c := range pod.Status.Conditions {
				if _, seen := ready[pod.Name]; !seen && c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
					ready[pod.Name] = t
				}
			}
		case <-deadline:
			return PodLatency{}, fmt.Errorf("only %d/%d pods ready after 5 minutes", len(ready), n)
		}
	}
	total := time.Since(begin)
	r := PodLatency{Pods: n, TotalSeconds: total.Seconds(), PodsPerSec: float64(n) / total.Seconds()}
	r.RunningP50Ms, r.RunningP99Ms = percentiles(running)
	r.ReadyP50Ms, r.ReadyP99Ms = percentiles(ready)
	return r, cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
}

func percentiles(m map[string]time.Duration) (float64, float64) {
	var d []time.Duration
	for _, v := range m {
		d = append(d, v)
	}
	if len(d) == 0 {
		return 0, 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	ms := func(x time.Duration) float64 { return float64(x.Microseconds()) / 1000 }
	return ms(d[len(d)/2]), ms(d[len(d)*99/100])
}
