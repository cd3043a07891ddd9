//go:build linux

package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/nanokube/nanokube/internal/lab"
	"github.com/nanokube/nanokube/network"
)

// IngressResult is HTTP requests/s with keep-alive connections, direct to
// a pod and through the built-in ingress (plain and TLS).
type IngressResult struct {
	DirectRPS       float64 `json:"direct_to_pod_requests_per_second"`
	IngressHTTPRPS  float64 `json:"ingress_http_requests_per_second"`
	IngressHTTPSRPS float64 `json:"ingress_https_requests_per_second"`
	Concurrency     int     `json:"concurrency"`
	Seconds         float64 `json:"seconds_per_measurement"`
}

const (
	ingressBenchSeconds     = 3
	ingressBenchConcurrency = 16
)

// ingressBench starts a one-node cluster with one pod behind a Service
// and an Ingress. The pod's server is a minimal Go handler run by the
// bench inside the pod's network namespace, so the numbers measure the
// path, not a slow server. Clients run in the node's netns: direct to the
// pod IP, and to the node IP's ports 80 and 443.
func ingressBench(ctx context.Context, l *lab.Lab, binary string) (IngressResult, error) {
	res := IngressResult{Concurrency: ingressBenchConcurrency, Seconds: ingressBenchSeconds}
	const prof = "bench-ingress"
	nk := func(args ...string) error {
		out, err := l.Command(ctx, binary, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("nanokube %v: %w: %s", args, err, out)
		}
		return nil
	}
	img, err := benchImageTar(l)
	if err != nil {
		return res, err
	}
	if err := nk("start", "-p", prof, "--ephemeral"); err != nil {
		return res, err
	}
	defer nk("delete", "-p", prof)
	if err := nk("image", "load", "-p", prof, img); err != nil {
		return res, err
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(&clientcmd.ClientConfigLoadingRules{ExplicitPath: l.Kubeconfig},
		&clientcmd.ConfigOverrides{CurrentContext: prof}).ClientConfig()
	if err != nil {
		return res, err
	}
	cfg.Dial = func(ctx context.Context, proto, addr string) (net.Conn, error) {
		return network.DialContext(ctx, l.Netns, proto, addr)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return res, err
	}
	podIP, podNS, nodeIP, err := benchBackendPod(ctx, cs, prof)
	if err != nil {
		return res, err
	}
	lis, err := network.ListenTCP(podNS, net.JoinHostPort(podIP, "8080"))
	if err != nil {
		return res, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })}
	var served sync.WaitGroup
	served.Go(func() { srv.Serve(lis) })
	defer func() { srv.Close(); served.Wait() }()

	pt := networkingv1.PathTypePrefix
	if _, err := cs.CoreV1().Services("default").Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "backend"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "backend"}, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}}}, metav1.CreateOptions{}); err != nil {
		return res, err
	}
	if _, err := cs.NetworkingV1().Ingresses("default").Create(ctx, &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: "backend"},
		Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{Host: "bench.test", IngressRuleValue: networkingv1.IngressRuleValue{
			HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: &pt, Backend: networkingv1.IngressBackend{
				Service: &networkingv1.IngressServiceBackend{Name: "backend", Port: networkingv1.ServiceBackendPort{Number: 80}}}}}}}}}}}, metav1.CreateOptions{}); err != nil {
		return res, err
	}
	nodeNS := network.NetnsPath(prof, prof)
	// The ingress serves the pod once its table has the endpoint.
	deadline := time.Now().Add(time.Minute)
	for {
		c := benchClient(nodeNS)
		if n, _ := hammer(ctx, c, "http://"+nodeIP+"/", "bench.test", 1, 1); n > 0 {
			break
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("the ingress does not route to the bench pod after a minute")
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, m := range []struct {
		url string
		out *float64
	}{
		{"http://" + net.JoinHostPort(podIP, "8080") + "/", &res.DirectRPS},
		{"http://" + nodeIP + "/", &res.IngressHTTPRPS},
		{"https://" + nodeIP + "/", &res.IngressHTTPSRPS},
	} {
		n, err := hammer(ctx, benchClient(nodeNS), m.url, "bench.test", ingressBenchConcurrency, 0)
		if err != nil {
			return res, fmt.Errorf("load %s: %w", m.url, err)
		}
		*m.out = float64(n) / ingressBenchSeconds
	}
	return res, nil
}

// benchBackendPod runs a sleeping pod labelled app=backend on node 1 and
// returns its IP, its netns and node 1's IP.
func benchBackendPod(ctx context.Context, cs kubernetes.Interface, prof string) (string, string, string, error) {
	zero := int64(0)
	_, err := cs.CoreV1().Pods("default").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "backend", Labels: map[string]string{"app": "backend"}},
		Spec: corev1.PodSpec{NodeName: prof, TerminationGracePeriodSeconds: &zero, Containers: []corev1.Container{{
			Name: "c", Image: benchImage, ImagePullPolicy: corev1.PullNever, Command: []string{"sleep", "3600"}}}}}, metav1.CreateOptions{})
	if err != nil {
		return "", "", "", err
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	w, err := cs.CoreV1().Pods("default").Watch(wctx, metav1.ListOptions{FieldSelector: "metadata.name=backend"})
	if err != nil {
		return "", "", "", err
	}
	defer w.Stop()
	var pod *corev1.Pod
	for ev := range w.ResultChan() {
		if p, ok := ev.Object.(*corev1.Pod); ok && p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" {
			pod = p
			break
		}
	}
	if pod == nil {
		return "", "", "", fmt.Errorf("bench pod not running after 2 minutes")
	}
	node, err := cs.CoreV1().Nodes().Get(ctx, prof, metav1.GetOptions{})
	if err != nil {
		return "", "", "", err
	}
	var nodeIP string
	for _, a := range node.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			nodeIP = a.Address
		}
	}
	return pod.Status.PodIP, filepath.Join(network.RunDir, prof, "pods", string(pod.UID)), nodeIP, nil
}

// benchClient dials from the netns at nsPath with keep-alive connections.
func benchClient(nsPath string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, proto, addr string) (net.Conn, error) {
			return network.DialContext(ctx, nsPath, proto, addr)
		},
		MaxIdleConnsPerHost: ingressBenchConcurrency,
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true}, // the ingress's fallback certificate
	}}
}

// hammer sends GETs with workers in parallel for ingressBenchSeconds (or
// exactly limit requests per worker when limit > 0) and returns how many
// got a 200.
func hammer(ctx context.Context, c *http.Client, url, host string, workers, limit int) (int64, error) {
	var ok atomic.Int64
	var firstErr atomic.Value
	end := time.Now().Add(ingressBenchSeconds * time.Second)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := 0; limit == 0 && time.Now().Before(end) || limit > 0 && i < limit; i++ {
				req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				req.Host = host
				resp, err := c.Do(req)
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					ok.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil && limit == 0 {
		return ok.Load(), err
	}
	return ok.Load(), nil
}

// runIngressOnly prints the ingress results alone (-ingress-only).
func runIngressOnly(ctx context.Context, binary string) error {
	return inLab(func(l *lab.Lab) error {
		res, err := ingressBench(ctx, l, binary)
		if err != nil {
			return err
		}
		b, _ := json.MarshalIndent(map[string]any{"ingress": res}, "", "  ")
		fmt.Printf("%s\n", b)
		return nil
	})
}
