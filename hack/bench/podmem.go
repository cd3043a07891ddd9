//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nanokube/nanokube/internal/lab"
)

// PodMemResult is the memory a running pod costs beyond its own
// processes: its containerd shim (one per pod, shared by its containers),
// and what the daemon and containerd keep for it.
type PodMemResult struct {
	Pods             int                `json:"pods"`
	ContainersPerPod int                `json:"containers_per_pod"`
	Shims            int                `json:"shim_processes"`
	BeforeMB         map[string]float64 `json:"rss_mb_before"`
	AfterMB          map[string]float64 `json:"rss_mb_after"`
	PerPodOverheadMB float64            `json:"per_pod_overhead_mb"`
	PerPodShimMB     float64            `json:"per_pod_shim_mb"`
	// PerPodShimPSSMB counts the shims' shared pages (their binary) once
	// across all shims: what a shim really adds.
	PerPodShimPSSMB   float64 `json:"per_pod_shim_pss_mb"`
	PerPodDaemonMB    float64 `json:"per_pod_daemon_mb"`
	PerPodContainerdM float64 `json:"per_pod_containerd_mb"`
}

// podMemory runs n pods of `containers` sleeping containers on the running
// profile and measures the RSS of our processes before and after; the
// containers' own processes (sleep) do not count as overhead.
func podMemory(ctx context.Context, l *lab.Lab, daemon, n, containers int) (PodMemResult, error) {
	r := PodMemResult{Pods: n, ContainersPerPod: containers}
	kubectl := func(stdin string, args ...string) error {
		cmd := l.Command(ctx, "kubectl", append([]string{"--context", profile}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("kubectl %v: %w: %s", args, err, out)
		}
		return nil
	}
	time.Sleep(3 * time.Second)
	var err error
	if _, r.BeforeMB, err = rssOf(daemon, l.Home); err != nil {
		return r, err
	}
	ctrs := ""
	for i := range containers {
		ctrs += fmt.Sprintf("      - {name: c%d, image: %s, imagePullPolicy: Never, command: [sleep, \"3600\"]}\n", i, benchImage)
	}
	manifest := fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: podmem, namespace: default}
spec:
  replicas: %d
  selector: {matchLabels: {app: podmem}}
  template:
    metadata: {labels: {app: podmem}}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
%s`, n, ctrs)
	if err := kubectl(manifest, "apply", "-f", "-"); err != nil {
		return r, err
	}
	if err := kubectl("", "rollout", "status", "deploy/podmem", "--timeout=5m"); err != nil {
		return r, err
	}
	time.Sleep(5 * time.Second)
	if _, r.AfterMB, err = rssOf(daemon, l.Home); err != nil {
		return r, err
	}
	for pid, name := range ourProcesses(daemon, l.Home) {
		if strings.HasPrefix(name, "containerd-shim") {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			if strings.Contains(string(b), "-namespace\x00nanokube-"+profile) {
				r.Shims++
				r.PerPodShimPSSMB += pssMB(pid) / float64(n)
			}
		}
	}
	delta := func(match func(string) bool) float64 {
		d := 0.0
		for name, mb := range r.AfterMB {
			if match(name) {
				d += mb - r.BeforeMB[name]
			}
		}
		return d / float64(n)
	}
	r.PerPodShimMB = delta(func(s string) bool { return strings.HasPrefix(s, "containerd-shim") })
	r.PerPodDaemonMB = delta(func(s string) bool { return s == "nanokube-daemon" })
	r.PerPodContainerdM = delta(func(s string) bool { return s == "containerd" })
	r.PerPodOverheadMB = delta(func(s string) bool { return s != "sleep" })
	if err := kubectl("", "delete", "deploy", "podmem", "--wait=true"); err != nil {
		return r, err
	}
	// The next measurement starts without these pods.
	kubectl("", "wait", "--for=delete", "pod", "-l", "app=podmem", "--timeout=2m")
	return r, nil
}

// runPodMemOnly starts a cluster, measures podMemory and prints it alone
// (-pod-mem N).
func runPodMemOnly(ctx context.Context, binary string, n int) error {
	l, err := newLab()
	if err != nil {
		return err
	}
	defer l.Close()
	nk := func(args ...string) error {
		if out, err := l.Command(ctx, binary, args...).CombinedOutput(); err != nil {
			return fmt.Errorf("nanokube %v: %w: %s", args, err, out)
		}
		return nil
	}
	defer nk("delete", "-p", profile)
	if err := nk("start", "-p", profile); err != nil {
		return err
	}
	img, err := benchImageTar(l)
	if err != nil {
		return err
	}
	if err := nk("image", "load", "-p", profile, img); err != nil {
		return err
	}
	pid, err := daemonPid(l.Home)
	if err != nil {
		return err
	}
	var res []PodMemResult
	for _, containers := range []int{1, 2} {
		r, err := podMemory(ctx, l, pid, n, containers)
		if err != nil {
			return err
		}
		res = append(res, r)
	}
	b, _ := json.MarshalIndent(map[string]any{"pod_memory": res}, "", "  ")
	fmt.Printf("%s\n", b)
	return nil
}

// pssMB is a process's proportional set size in MB (shared pages divided
// among the processes that map them).
func pssMB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "Pss:" {
			var kb float64
			fmt.Sscan(f[1], &kb)
			return kb / 1024
		}
	}
	return 0
}
