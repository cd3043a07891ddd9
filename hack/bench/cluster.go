//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"github.com/nanokube/nanokube/hack/testimages"
	"github.com/nanokube/nanokube/internal/lab"
)

const profile = "bench"

// benchImage is the local busybox image the pod benchmark runs.
const benchImage = "nanokube.local/busybox:bench"

func run(ctx context.Context, binary string, objects, pods int) (*Report, error) {
	l, err := newLab()
	if err != nil {
		return nil, err
	}
	defer l.Close()
	nk := func(args ...string) (time.Duration, error) {
		begin := time.Now()
		out, err := l.Command(ctx, binary, args...).CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("nanokube %v: %w: %s", args, err, out)
		}
		return time.Since(begin), nil
	}
	defer nk("delete", "-p", profile)
	rep := &Report{
		Date:        time.Now().UTC().Format(time.RFC3339),
		Binary:      binary,
		Environment: map[string]string{"cpus": fmt.Sprint(runtime.NumCPU()), "go": runtime.Version()},
	}
	cold, err := nk("start", "-p", profile)
	if err != nil {
		return nil, err
	}
	rep.ColdStartS = cold.Seconds()
	if _, err := nk("stop", "-p", profile); err != nil {
		return nil, err
	}
	warm, err := nk("start", "-p", profile)
	if err != nil {
		return nil, err
	}
	rep.WarmStartS = warm.Seconds()

	pid, err := daemonPid(l.Home)
	if err != nil {
		return nil, err
	}
	// Let start-up work settle, then measure the idle cluster.
	time.Sleep(5 * time.Second)
	rep.IdleRSSMB, rep.IdleRSSBy, err = rssOf(pid, l.Home)
	if err != nil {
		return nil, err
	}
	if _, rep.IdleAnonBy, err = anonRSSOf(pid, l.Home); err != nil {
		return nil, err
	}
	rep.IdleCPUPct, err = cpuOf(pid, l.Home, 10*time.Second)
	if err != nil {
		return nil, err
	}
	img, err := benchImageTar(l)
	if err != nil {
		return nil, err
	}
	if _, err := nk("image", "load", "-p", profile, img); err != nil {
		return nil, err
	}
	rep.DockerBuild, err = dockerBuild(ctx, l, pid)
	if err != nil {
		return nil, err
	}
	rep.Store, err = storeBench(ctx)
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	// The API load first, then the memory with its objects stored, the
	// per-pod memory, and pod start latency last (its pods would count in
	// the memory readings).
	apiLoad := func(objects, pods int) (loadResults, error) {
		cmd := l.Command(ctx, self, "-api-load", "-kubeconfig", l.Kubeconfig, "-objects", fmt.Sprint(objects), "-pods", fmt.Sprint(pods))
		var stdout bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, os.Stderr
		var res loadResults
		if err := cmd.Run(); err != nil {
			return res, fmt.Errorf("api load: %w", err)
		}
		if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
			return res, fmt.Errorf("parse api load results: %w", err)
		}
		return res, nil
	}
	res, err := apiLoad(objects, 0)
	if err != nil {
		return nil, err
	}
	rep.API = res.API
	total, by, err := rssOf(pid, l.Home)
	if err != nil {
		return nil, err
	}
	rep.RSSObjects = map[string]float64{"total": total}
	for name, mb := range by {
		rep.RSSObjects[name] = mb
	}
	for _, containers := range []int{1, 2} {
		m, err := podMemory(ctx, l, pid, 20, containers)
		if err != nil {
			return nil, fmt.Errorf("pod memory: %w", err)
		}
		rep.PodMemory = append(rep.PodMemory, m)
	}
	if res, err = apiLoad(0, pods); err != nil {
		return nil, err
	}
	rep.Pods = res.Pods
	if rep.DNS, err = dnsBench(ctx); err != nil {
		return nil, err
	}
	if rep.Network, err = netBench(ctx, l, binary); err != nil {
		return nil, err
	}
	if rep.Ingress, err = ingressBench(ctx, l, binary); err != nil {
		return nil, err
	}
	if rep.Proxy, err = proxyBench(l); err != nil {
		return nil, err
	}
	return rep, nil
}

// newLab makes the lab network namespace a benchmark runs its clusters in.
func newLab() (*lab.Lab, error) {
	return lab.New(fmt.Sprintf("nk-bench-%d", os.Getpid()))
}

// inLab runs one part of the benchmark alone in a fresh lab.
func inLab(f func(l *lab.Lab) error) error {
	l, err := newLab()
	if err != nil {
		return err
	}
	defer l.Close()
	return f(l)
}

// benchImageTar writes the busybox bench image (benchImage) as an archive
// into the lab for `nanokube image load`.
func benchImageTar(l *lab.Lab) (string, error) {
	img := filepath.Join(l.Dir, "busybox.tar")
	f, err := os.Create(img)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if err := testimages.BusyboxTar(f, benchImage); err != nil {
		return "", fmt.Errorf("write %s: %w", img, err)
	}
	return img, f.Close()
}

func daemonPid(home string) (int, error) {
	b, err := os.ReadFile(filepath.Join(home, "profiles", profile, "daemon.pid"))
	if err != nil {
		return 0, fmt.Errorf("read daemon pid: %w", err)
	}
	var pid int
	_, err = fmt.Sscanf(string(b), "%d", &pid)
	return pid, err
}

// storeBench runs the store package's benchmarks and collects their metrics.
func storeBench(ctx context.Context) (map[string]float64, error) {
	out, err := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", ".", "-benchtime", "2s", "./store/").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("store benchmarks: %w: %s", err, out)
	}
	return parseBench(out), nil
}
