//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/nanokube/nanokube/internal/lab"
	"github.com/nanokube/nanokube/network"
)

// NetResult is pod-to-pod TCP throughput on one node and across nodes,
// for each overlay backend.
type NetResult struct {
	SameNodeGbps         float64 `json:"same_node_gbps"`
	CrossNodeVXLANGbps   float64 `json:"cross_node_vxlan_gbps"`
	CrossNodeHostGWGbps  float64 `json:"cross_node_host_gw_gbps"`
	SecondsPerMeasure    float64 `json:"seconds_per_measurement"`
	VXLANStartNodes2Secs float64 `json:"start_2_nodes_vxlan_seconds"`
}

const netBenchSeconds = 3

// netBench starts a two-node cluster per backend and measures TCP
// throughput between pods: pod a (node 1) to pod b (node 1) and to pod c
// (node 2). Sender and receiver run in the pods' network namespaces, so
// the path is the pods' own (veth, nk0, VXLAN or host-gw routes).
func netBench(ctx context.Context, l *lab.Lab, binary string) (NetResult, error) {
	var res NetResult
	img, err := benchImageTar(l)
	if err != nil {
		return res, err
	}
	for _, backend := range []string{network.BackendVXLAN, network.BackendHostGW} {
		prof := "bench-" + backend
		nk := func(args ...string) error {
			out, err := l.Command(ctx, binary, args...).CombinedOutput()
			if err != nil {
				return fmt.Errorf("nanokube %v: %w: %s", args, err, out)
			}
			return nil
		}
		begin := time.Now()
		if err := nk("start", "-p", prof, "--nodes=2", "--network-backend="+backend, "--ephemeral"); err != nil {
			return res, err
		}
		startS := time.Since(begin).Seconds()
		same, cross, err := func() (float64, float64, error) {
			defer nk("delete", "-p", prof)
			if err := nk("image", "load", "-p", prof, img); err != nil {
				return 0, 0, err
			}
			return podThroughput(ctx, l, prof)
		}()
		if err != nil {
			return res, err
		}
		if backend == network.BackendVXLAN {
			res.SameNodeGbps, res.CrossNodeVXLANGbps, res.VXLANStartNodes2Secs = same, cross, startS
		} else {
			res.CrossNodeHostGWGbps = cross
		}
	}
	res.SecondsPerMeasure = netBenchSeconds
	return res, nil
}

func podThroughput(ctx context.Context, l *lab.Lab, prof string) (float64, float64, error) {
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(&clientcmd.ClientConfigLoadingRules{ExplicitPath: l.Kubeconfig},
		&clientcmd.ConfigOverrides{CurrentContext: prof}).ClientConfig()
	if err != nil {
		return 0, 0, err
	}
	// The API is on node 1's address inside the lab: dial from there.
	cfg.Dial = func(ctx context.Context, network_, addr string) (net.Conn, error) {
		return network.DialContext(ctx, l.Netns, network_, addr)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return 0, 0, err
	}
	zero := int64(0)
	pods := map[string]string{"a": prof, "b": prof, "c": prof + "-m02"}
	for name, node := range pods {
		_, err := cs.CoreV1().Pods("default").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PodSpec{NodeName: node, TerminationGracePeriodSeconds: &zero, Containers: []corev1.Container{{
				Name: "c", Image: benchImage, ImagePullPolicy: corev1.PullNever, Command: []string{"sleep", "3600"}}}}}, metav1.CreateOptions{})
		if err != nil {
			return 0, 0, err
		}
	}
	ns := map[string]string{}
	ips := map[string]string{}
	deadline := time.Now().Add(2 * time.Minute)
	for len(ips) < len(pods) {
		if time.Now().After(deadline) {
			return 0, 0, fmt.Errorf("bench pods not running after 2 minutes")
		}
		w, err := cs.CoreV1().Pods("default").Watch(ctx, metav1.ListOptions{})
		if err != nil {
			return 0, 0, err
		}
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if ok && p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" {
				ips[p.Name], ns[p.Name] = p.Status.PodIP, filepath.Join(network.RunDir, prof, "pods", string(p.UID))
			}
			if len(ips) == len(pods) {
				break
			}
		}
		w.Stop()
	}
	same, err := throughput(ctx, ns["a"], ns["b"], ips["b"])
	if err != nil {
		return 0, 0, fmt.Errorf("same node: %w", err)
	}
	cross, err := throughput(ctx, ns["a"], ns["c"], ips["c"])
	if err != nil {
		return 0, 0, fmt.Errorf("cross node: %w", err)
	}
	return same, cross, nil
}

// throughput sends zeros from the netns at from to a sink listening at
// ip:5201 in the netns at to for netBenchSeconds and returns Gbit/s.
func throughput(ctx context.Context, from, to, ip string) (float64, error) {
	lis, err := network.ListenTCP(to, net.JoinHostPort(ip, "5201"))
	if err != nil {
		return 0, err
	}
	defer lis.Close()
	got := make(chan int64, 1)
	go func() {
		c, err := lis.Accept()
		if err != nil {
			got <- 0
			return
		}
		n, _ := io.Copy(io.Discard, c)
		c.Close()
		got <- n
	}()
	c, err := network.DialContext(ctx, from, "tcp", net.JoinHostPort(ip, "5201"))
	if err != nil {
		return 0, err
	}
	buf := make([]byte, 128<<10)
	begin := time.Now()
	for time.Since(begin) < netBenchSeconds*time.Second {
		if _, err := c.Write(buf); err != nil {
			c.Close()
			return 0, err
		}
	}
	c.Close()
	n := <-got
	return float64(n) * 8 / time.Since(begin).Seconds() / 1e9, nil
}

// dnsBench runs the DNS server benchmarks (queries/s on loopback against
// 1,000 services).
func dnsBench(ctx context.Context) (map[string]float64, error) {
	out, err := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", "DNSQueries", "-benchtime", "2s", "./network/").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("dns benchmarks: %w: %s", err, out)
	}
	m := parseBench(out)
	for k := range m {
		if !strings.HasSuffix(k, "queries/s") {
			delete(m, k)
		}
	}
	return m, nil
}

// runNetOnly prints the pod network and DNS results alone (-net-only).
func runNetOnly(ctx context.Context, binary string) error {
	return inLab(func(l *lab.Lab) error {
		res, err := netBench(ctx, l, binary)
		if err != nil {
			return err
		}
		d, err := dnsBench(ctx)
		if err != nil {
			return err
		}
		px, err := proxyBench(l)
		if err != nil {
			return err
		}
		b, _ := json.MarshalIndent(map[string]any{"pod_network": res, "dns": d, "service_proxy": px}, "", "  ")
		fmt.Printf("%s\n", b)
		return nil
	})
}

// runProxyOnly prints the service proxy results alone (-proxy-only).
func runProxyOnly() error {
	return inLab(func(l *lab.Lab) error {
		px, err := proxyBench(l)
		if err != nil {
			return err
		}
		b, _ := json.MarshalIndent(map[string]any{"service_proxy": px}, "", "  ")
		fmt.Printf("%s\n", b)
		return nil
	})
}
