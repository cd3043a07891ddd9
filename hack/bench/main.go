//go:build linux

// Command bench measures nanokube and writes a JSON report: cold start time,
// warm restart time, idle memory and CPU of every nanokube process, store
// throughput, and API throughput/latency with client-go workers. The cluster
// runs inside a lab network namespace; all traffic stays on this machine.
//
//	go run ./hack/bench -binary bin/nanokube -out bench-report.json
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Report is the JSON written by make bench.
type Report struct {
	Date       string             `json:"date"`
	Binary     string             `json:"binary"`
	ColdStartS float64            `json:"cold_start_seconds"`
	WarmStartS float64            `json:"warm_restart_seconds"`
	IdleRSSMB  float64            `json:"idle_rss_mb"`
	IdleRSSBy  map[string]float64 `json:"idle_rss_mb_by_process"`
	// IdleAnonBy is the private part of IdleRSSBy (RssAnon): the rest is
	// the file pages of the executables, shared with the page cache.
	IdleAnonBy map[string]float64 `json:"idle_rss_anon_mb_by_process"`
	// RSSObjects is the RSS of every nanokube process with
	// storedConfigMaps ConfigMaps (300-byte payloads) in the store.
	RSSObjects  map[string]float64 `json:"rss_mb_with_10k_configmaps"`
	IdleCPUPct  float64            `json:"idle_cpu_percent_of_one_core"`
	Store       map[string]float64 `json:"store"`
	API         []APIResult        `json:"api"`
	Pods        PodResult          `json:"pod_start"`
	PodMemory   []PodMemResult     `json:"pod_memory"`
	DockerBuild DockerBuildResult  `json:"docker_build"`
	Network     NetResult          `json:"pod_network"`
	DNS         map[string]float64 `json:"dns"`
	Ingress     IngressResult      `json:"ingress"`
	Proxy       []ProxyResult      `json:"service_proxy"`
	Scale       *ScaleReport       `json:"scale"`
	DurationS   float64            `json:"bench_duration_seconds"`
	Environment map[string]string  `json:"environment"`
}

func main() {
	binary := flag.String("binary", "bin/nanokube", "nanokube binary")
	out := flag.String("out", "bench-report.json", "report file")
	apiLoad := flag.Bool("api-load", false, "internal: run the API load from inside the lab")
	kubeconfig := flag.String("kubeconfig", "", "internal: kubeconfig for -api-load")
	objects := flag.Int("objects", 2000, "objects created per API scenario")
	pods := flag.Int("pods", 100, "pods started for the pod start latency (one at a time, then at once)")
	netOnly := flag.Bool("net-only", false, "only the pod network and DNS benchmarks")
	ingressOnly := flag.Bool("ingress-only", false, "only the ingress benchmark")
	podMem := flag.Int("pod-mem", 0, "only the per-pod memory overhead, with this many pods")
	proxyOnly := flag.Bool("proxy-only", false, "only the service proxy sync benchmark")
	scale := flag.Bool("scale", false, "only the scale benchmarks: a Deployment on the fake runtime and on containerd, API creates, pod start latency")
	scaleLoadFlag := flag.Bool("scale-load", false, "internal: run the scale load from inside the lab")
	replicas := flag.Int("replicas", 1000, "-scale: replicas of the fake-runtime Deployment (-scale-load: of the Deployment)")
	realReplicas := flag.Int("real-replicas", 100, "-scale: replicas of the containerd Deployment (0: skip containerd)")
	startOnly := flag.Bool("start-only", false, "only the start times and the idle RSS of a fresh cluster")
	dropCaches := flag.Bool("drop-caches", false, "-start-only: also a cold start after dropping the page cache")
	apiOnly := flag.Bool("api-only", false, "only the API read benchmark: full LISTs (JSON, protobuf) and watch fan-out, on the fake runtime")
	apiReadLoad := flag.Bool("api-read-load", false, "internal: run the API read load from inside the lab")
	watchers := flag.Int("watchers", 100, "-api-only: watchers of the fan-out")
	daemonPID := flag.Int("daemon-pid", 0, "internal: the daemon's pid for -api-read-load's CPU readings")
	home := flag.String("home", "", "internal: NANOKUBE_HOME for -api-read-load's CPU readings")
	flag.Parse()
	ctx := context.Background()
	if abs, err := filepath.Abs(*binary); err == nil {
		*binary = abs
	}
	if *scaleLoadFlag {
		if err := runScaleLoad(ctx, *kubeconfig, *replicas, *objects, *pods, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "scale load:", err)
			os.Exit(1)
		}
		return
	}
	if *apiReadLoad {
		if err := runAPIReadLoad(ctx, *kubeconfig, *objects, *watchers, *daemonPID, *home, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "api read load:", err)
			os.Exit(1)
		}
		return
	}
	if *apiOnly {
		if err := runAPIOnly(ctx, *binary, *objects, *watchers); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if *scale {
		rep, err := runScale(ctx, *binary, *replicas, *realReplicas, *objects, *pods)
		if rep != nil {
			b, _ := json.MarshalIndent(rep, "", "  ")
			os.WriteFile(*out, append(b, '\n'), 0o644)
			fmt.Printf("%s\n", b)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if *startOnly {
		rep, err := runStartOnly(ctx, *binary, *dropCaches)
		if err == nil {
			err = printStartReport(rep, *out)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if *proxyOnly {
		if err := runProxyOnly(); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if *podMem > 0 {
		if err := runPodMemOnly(ctx, *binary, *podMem); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if *ingressOnly {
		if err := runIngressOnly(ctx, *binary); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if *netOnly {
		if err := runNetOnly(ctx, *binary); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if *apiLoad {
		if err := runAPILoad(ctx, *kubeconfig, *objects, *pods, benchImage, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "api load:", err)
			os.Exit(1)
		}
		return
	}
	begin := time.Now()
	rep, err := run(ctx, *binary, *objects, *pods)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	// The scale runs (1,000 replicas on the fake runtime, 100 on
	// containerd, scheduler throughput) start their own clusters.
	if rep.Scale, err = runScale(ctx, *binary, *replicas, *realReplicas, *objects, *pods); err != nil {
		fmt.Fprintln(os.Stderr, "bench: scale:", err)
		os.Exit(1)
	}
	rep.DurationS = time.Since(begin).Seconds()
	b, _ := json.MarshalIndent(rep, "", "  ")
	if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "write report:", err)
		os.Exit(1)
	}
	fmt.Printf("%s\n", b)
	fmt.Fprintf(os.Stderr, "report written to %s\n", *out)
}
