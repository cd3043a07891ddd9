//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// ScaleReport is what -scale writes: a big Deployment on the fake runtime
// (control plane and agent without containers, like kwok) and a smaller
// one plus the pod start latency on containerd.
type ScaleReport struct {
	Date string        `json:"date"`
	Runs []ScaleResult `json:"runs"`
}

// ScaleResult is one cluster's run.
type ScaleResult struct {
	Runtime    string  `json:"runtime"`
	IdleRSSMB  float64 `json:"idle_rss_mb"`
	IdleCPUPct float64 `json:"idle_cpu_percent_of_one_core"`
	// LoadCPUS is the CPU time of nanokube's processes (daemon and
	// children) during the in-lab load: the API creates, the Deployment
	// from create to all gone, the pod start latency.
	LoadCPUS   float64     `json:"load_cpu_seconds"`
	Deployment DeployScale `json:"deployment"`
	API        []APIResult `json:"api,omitempty"`
	Pods       *PodResult  `json:"pod_start,omitempty"`
}

// DeployScale is create → all Ready of one Deployment.
type DeployScale struct {
	Replicas       int     `json:"replicas"`
	AllScheduledS  float64 `json:"all_scheduled_seconds"`
	AllRunningS    float64 `json:"all_running_seconds"`
	AllReadyS      float64 `json:"all_ready_seconds"`
	SchedPodsPerS  float64 `json:"scheduler_pods_per_second"` // bindings seen per second, first to last
	ReadyPodsPerS  float64 `json:"ready_pods_per_second"`
	FirstReadyMs   float64 `json:"first_ready_ms"`
	DeleteAllGoneS float64 `json:"delete_all_gone_seconds"`
}

// scaleLoad is the in-lab half of -scale.
type scaleLoad struct {
	Deployment DeployScale `json:"deployment"`
	API        []APIResult `json:"api,omitempty"`
	Pods       *PodResult  `json:"pods,omitempty"`
}

// runScale runs the fake-runtime and the containerd cluster one after the
// other in one lab.
func runScale(ctx context.Context, binary string, fakeReplicas, realReplicas, objects, pods int) (*ScaleReport, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	rep := &ScaleReport{Date: time.Now().UTC().Format(time.RFC3339)}
	for _, rt := range []string{"fake", "containerd"} {
		replicas := fakeReplicas
		if rt == "containerd" {
			replicas = realReplicas
		}
		if replicas == 0 {
			continue
		}
		r, err := scaleRun(ctx, binary, self, rt, replicas, objects, pods)
		if err != nil {
			return rep, fmt.Errorf("%s runtime: %w", rt, err)
		}
		rep.Runs = append(rep.Runs, *r)
	}
	return rep, nil
}

func scaleRun(ctx context.Context, binary, self, rt string, replicas, objects, pods int) (*ScaleResult, error) {
	l, err := newLab()
	if err != nil {
		return nil, err
	}
	defer l.Close()
	nk := func(args ...string) error {
		out, err := l.Command(ctx, binary, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("nanokube %v: %w: %s", args, err, out)
		}
		return nil
	}
	defer nk("delete", "-p", profile)
	args := []string{"start", "-p", profile, "--runtime=" + rt}
	if rt == "fake" {
		args = append(args, "--driver=host")
	}
	if err := nk(args...); err != nil {
		return nil, err
	}
	pid, err := daemonPid(l.Home)
	if err != nil {
		return nil, err
	}
	res := &ScaleResult{Runtime: rt}
	time.Sleep(5 * time.Second) // start-up work settles
	if res.IdleRSSMB, _, err = rssOf(pid, l.Home); err != nil {
		return nil, err
	}
	if res.IdleCPUPct, err = cpuOf(pid, l.Home, 10*time.Second); err != nil {
		return nil, err
	}
	if rt == "containerd" {
		img, err := benchImageTar(l)
		if err != nil {
			return nil, err
		}
		if err := nk("image", "load", "-p", profile, img); err != nil {
			return nil, err
		}
	} else {
		pods = 0 // pod start latency means containers
	}
	if rt == "containerd" {
		objects = 0 // the API is measured once, on the fake cluster
	}
	cmd := l.Command(ctx, self, "-scale-load", "-kubeconfig", l.Kubeconfig, "-replicas", fmt.Sprint(replicas),
		"-objects", fmt.Sprint(objects), "-pods", fmt.Sprint(pods))
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, os.Stderr
	ticks := cpuTicks(pid, l.Home)
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("scale load: %w", err)
	}
	res.LoadCPUS = (cpuTicks(pid, l.Home) - ticks) / 100 // USER_HZ
	var sl scaleLoad
	if err := json.Unmarshal(stdout.Bytes(), &sl); err != nil {
		return nil, fmt.Errorf("parse scale load results: %w", err)
	}
	res.Deployment, res.API, res.Pods = sl.Deployment, sl.API, sl.Pods
	return res, nil
}

// runScaleLoad runs inside the lab: the API creates (objects > 0), the
// Deployment, then the pod start latency (pods > 0).
func runScaleLoad(ctx context.Context, kubeconfig string, replicas, objects, pods int, w io.Writer) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("load kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = -1, 0
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	var out scaleLoad
	if objects > 0 {
		for _, workers := range []int{1, 32} {
			ns := fmt.Sprintf("bench-%d", workers)
			if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("create namespace %s: %w", ns, err)
			}
			cms := cs.CoreV1().ConfigMaps(ns)
			r, err := load("create", workers, objects, func(i int) error {
				_, err := cms.Create(ctx, &corev1.ConfigMap{
					ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%d", i), Labels: map[string]string{"app": "bench"}},
					Data:       map[string]string{"payload": fmt.Sprintf("%0300d", i)},
				}, metav1.CreateOptions{})
				return err
			})
			if err != nil {
				return err
			}
			out.API = append(out.API, r)
		}
	}
	// Pod start latency first: the Deployment's teardown (containerd
	// deleting its tasks and snapshots) would delay the first pods after it.
	if pods > 0 {
		var pr PodResult
		if pr.Sequential, err = podSet(ctx, cs, benchImage, "bench-pods-seq", pods, 1); err != nil {
			return fmt.Errorf("one pod at a time: %w", err)
		}
		if pr.Burst, err = podSet(ctx, cs, benchImage, "bench-pods-burst", 10, 10); err != nil {
			return fmt.Errorf("burst: %w", err)
		}
		out.Pods = &pr
	}
	if out.Deployment, err = deployScale(ctx, cs, replicas); err != nil {
		return fmt.Errorf("deployment of %d: %w", replicas, err)
	}
	return json.NewEncoder(w).Encode(out)
}

// deployScale creates a Deployment of n replicas and times it until every
// pod is Ready, then deletes it and times until every pod is gone.
func deployScale(ctx context.Context, cs kubernetes.Interface, n int) (DeployScale, error) {
	const ns = "bench-scale"
	r := DeployScale{Replicas: n}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return r, err
	}
	w, err := cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		return r, err
	}
	defer w.Stop()
	replicas := int32(n)
	zero := int64(0)
	labels := map[string]string{"app": "scale"}
	begin := time.Now()
	_, err = cs.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "scale"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{TerminationGracePeriodSeconds: &zero, Containers: []corev1.Container{{
					Name: "c", Image: benchImage, ImagePullPolicy: corev1.PullNever, Command: []string{"sleep", "3600"}}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return r, err
	}
	scheduled, running, ready := map[string]time.Duration{}, map[string]bool{}, map[string]bool{}
	var firstBound, lastBound, lastRunning, firstReady time.Duration
	deadline := time.After(10 * time.Minute)
	for len(ready) < n {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				return r, fmt.Errorf("watch ended with %d/%d pods ready", len(ready), n)
			}
			pod, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			t := time.Since(begin)
			if _, seen := scheduled[pod.Name]; !seen && pod.Spec.NodeName != "" {
				scheduled[pod.Name] = t
				if len(scheduled) == 1 {
					firstBound = t
				}
				lastBound = t
			}
			if !running[pod.Name] && pod.Status.Phase == corev1.PodRunning {
				running[pod.Name] = true
				lastRunning = t
			}
			for _, c := range pod.Status.Conditions {
				if !ready[pod.Name] && c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
					ready[pod.Name] = true
					if len(ready) == 1 {
						firstReady = t
					}
				}
			}
		case <-deadline:
			return r, fmt.Errorf("only %d/%d pods ready after 10 minutes", len(ready), n)
		}
	}
	total := time.Since(begin)
	r.AllReadyS, r.AllScheduledS, r.AllRunningS = total.Seconds(), lastBound.Seconds(), lastRunning.Seconds()
	r.FirstReadyMs = float64(firstReady.Microseconds()) / 1000
	r.ReadyPodsPerS = float64(n) / total.Seconds()
	if lastBound > firstBound {
		r.SchedPodsPerS = float64(n-1) / (lastBound - firstBound).Seconds()
	}
	// Deletion: the Deployment goes with its pods (background cascade).
	delBegin := time.Now()
	if err := cs.AppsV1().Deployments(ns).Delete(ctx, "scale", metav1.DeleteOptions{}); err != nil {
		return r, err
	}
	left := n
	for left > 0 {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				return r, fmt.Errorf("watch ended with %d pods left", left)
			}
			if ev.Type == "DELETED" {
				left--
			}
		case <-deadline:
			return r, fmt.Errorf("%d pods left after 10 minutes", left)
		}
	}
	r.DeleteAllGoneS = time.Since(delBegin).Seconds()
	return r, cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
}
