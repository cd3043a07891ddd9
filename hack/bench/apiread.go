//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/nanokube/nanokube/internal/lab"
)

// APIReadResult is what -api-only reports: full LISTs of stored
// ConfigMaps and one object's updates fanned out to many watchers, each
// with the daemon's CPU time while it ran.
type APIReadResult struct {
	Objects int             `json:"objects"`
	Lists   []APIListResult `json:"lists"`
	Watch   WatchFanOut     `json:"watch_fan_out"`
}

// APIListResult is one LIST scenario.
type APIListResult struct {
	APIResult
	Format   string  `json:"format"`
	ItemsPer float64 `json:"items_per_second"`
	CPUS     float64 `json:"daemon_cpu_seconds"`
}

// WatchFanOut is Updates updates of one ConfigMap, each waited for until
// all Watchers saw it.
type WatchFanOut struct {
	Watchers   int     `json:"watchers"`
	Updates    int     `json:"updates"`
	EventsPerS float64 `json:"events_delivered_per_second"`
	P50Milli   float64 `json:"update_to_last_watcher_p50_ms"`
	P99Milli   float64 `json:"update_to_last_watcher_p99_ms"`
	CPUS       float64 `json:"daemon_cpu_seconds"`
}

// runAPIOnly starts a fake-runtime cluster alone in a lab and runs the
// read load (-api-read-load) against it.
func runAPIOnly(ctx context.Context, binary string, objects, watchers int) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	return inLab(func(l *lab.Lab) error {
		nk := func(args ...string) error {
			out, err := l.Command(ctx, binary, args...).CombinedOutput()
			if err != nil {
				return fmt.Errorf("nanokube %v: %w: %s", args, err, out)
			}
			return nil
		}
		defer nk("delete", "-p", profile)
		if err := nk("start", "-p", profile, "--runtime=fake", "--driver=host"); err != nil {
			return err
		}
		pid, err := daemonPid(l.Home)
		if err != nil {
			return err
		}
		cmd := l.Command(ctx, self, "-api-read-load", "-kubeconfig", l.Kubeconfig, "-objects", fmt.Sprint(objects),
			"-watchers", fmt.Sprint(watchers), "-daemon-pid", fmt.Sprint(pid), "-home", l.Home)
		var stdout bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("api read load: %w", err)
		}
		var res APIReadResult
		if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
			return fmt.Errorf("parse api read load results: %w", err)
		}
		b, _ := json.MarshalIndent(map[string]any{"api_read": res}, "", "  ")
		fmt.Printf("%s\n", b)
		return nil
	})
}

// runAPIReadLoad runs inside the lab: objects ConfigMaps, LISTs of all of
// them in JSON and protobuf, then the watch fan-out.
func runAPIReadLoad(ctx context.Context, kubeconfig string, objects, watchers, daemon int, home string, w io.Writer) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("load kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = -1, 0
	clients := map[string]kubernetes.Interface{}
	for _, format := range []string{"json", "protobuf"} {
		c := rest.CopyConfig(cfg)
		c.ContentType = "application/" + format
		if format == "protobuf" {
			c.ContentType = "application/vnd.kubernetes.protobuf"
		}
		if clients[format], err = kubernetes.NewForConfig(c); err != nil {
			return err
		}
	}
	const ns = "bench-read"
	cs := clients["protobuf"]
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create namespace %s: %w", ns, err)
	}
	if _, err := load("create", 32, objects, func(i int) error {
		_, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%d", i), Labels: map[string]string{"app": "bench"}},
			Data:       map[string]string{"payload": fmt.Sprintf("%0300d", i)},
		}, metav1.CreateOptions{})
		return err
	}); err != nil {
		return err
	}
	cpu := func() float64 { return cpuTicks(daemon, home) / 100 } // USER_HZ
	res := APIReadResult{Objects: objects}
	for _, sc := range []struct {
		format  string
		workers int
	}{{"json", 1}, {"json", 8}, {"protobuf", 1}, {"protobuf", 8}} {
		cms := clients[sc.format].CoreV1().ConfigMaps(ns)
		const lists = 40
		before := cpu()
		r, err := load("list-all", sc.workers, lists, func(int) error {
			l, err := cms.List(ctx, metav1.ListOptions{})
			if err == nil && len(l.Items) < objects { // and the namespace's kube-root-ca.crt
				err = fmt.Errorf("listed %d of %d", len(l.Items), objects)
			}
			return err
		})
		if err != nil {
			return err
		}
		res.Lists = append(res.Lists, APIListResult{APIResult: r, Format: sc.format, ItemsPer: r.OpsPerS * float64(objects), CPUS: cpu() - before})
	}
	if res.Watch, err = watchFanOut(ctx, clients["json"], watchers, 200, cpu); err != nil {
		return fmt.Errorf("watch fan-out: %w", err)
	}
	return json.NewEncoder(w).Encode(res)
}

// watchFanOut opens watchers JSON watches on one namespace and updates
// one ConfigMap updates times, each time waiting until every watcher saw
// the update.
func watchFanOut(ctx context.Context, cs kubernetes.Interface, watchers, updates int, cpu func() float64) (WatchFanOut, error) {
	const ns = "bench-watch"
	out := WatchFanOut{Watchers: watchers, Updates: updates}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return out, fmt.Errorf("create namespace %s: %w", ns, err)
	}
	cms := cs.CoreV1().ConfigMaps(ns)
	cm, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "watched"}, Data: map[string]string{"n": "0", "payload": fmt.Sprintf("%0300d", 0)}}, metav1.CreateOptions{})
	if err != nil {
		return out, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// seen[i] gets the resourceVersion of every event watcher i reads.
	seen := make([]chan string, watchers)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for i := range watchers {
		wi, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: cm.ResourceVersion})
		if err != nil {
			return out, fmt.Errorf("watch %d: %w", i, err)
		}
		seen[i] = make(chan string, updates)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer wi.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case ev, ok := <-wi.ResultChan():
					if !ok {
						return
					}
					if c, ok := ev.Object.(*corev1.ConfigMap); ok {
						seen[i] <- c.ResourceVersion
					}
				}
			}
		}()
	}
	lat := make([]time.Duration, 0, updates)
	before := cpu()
	begin := time.Now()
	for n := 1; n <= updates; n++ {
		cm.Data["n"] = fmt.Sprint(n)
		t := time.Now()
		if cm, err = cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			return out, fmt.Errorf("update %d: %w", n, err)
		}
		for i := range seen {
			for rv := ""; rv != cm.ResourceVersion; {
				select {
				case rv = <-seen[i]:
				case <-time.After(30 * time.Second):
					return out, fmt.Errorf("watcher %d did not see update %d in 30s", i, n)
				}
			}
		}
		lat = append(lat, time.Since(t))
	}
	total := time.Since(begin)
	out.CPUS = cpu() - before
	out.EventsPerS = float64(watchers*updates) / total.Seconds()
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	out.P50Milli, out.P99Milli = ms(lat[len(lat)/2]), ms(lat[len(lat)*99/100])
	return out, nil
}
