//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// APIResult is one scenario of the API load.
type APIResult struct {
	Op       string  `json:"op"`
	Workers  int     `json:"workers"`
	Count    int     `json:"count"`
	OpsPerS  float64 `json:"ops_per_second"`
	P50Milli float64 `json:"p50_ms"`
	P99Milli float64 `json:"p99_ms"`
}

// loadResults is what the in-lab half of the benchmark reports.
type loadResults struct {
	API  []APIResult `json:"api"`
	Pods PodResult   `json:"pods"`
}

func runAPILoad(ctx context.Context, kubeconfig string, n, pods int, image string, w io.Writer) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("load kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = -1, 0 // no client-side throttling: measure the server
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	var out loadResults
	if n > 0 {
		if out.API, err = apiScenarios(ctx, cs, n); err != nil {
			return err
		}
	}
	if pods > 0 {
		if out.Pods, err = podLatency(ctx, cs, image, pods); err != nil {
			return fmt.Errorf("pod latency: %w", err)
		}
	}
	return json.NewEncoder(w).Encode(out)
}

// apiScenarios creates, gets and lists n ConfigMaps with 1 and with 32
// workers, then tops the store up to storedConfigMaps.
func apiScenarios(ctx context.Context, cs kubernetes.Interface, n int) ([]APIResult, error) {
	var results []APIResult
	for _, workers := range []int{1, 32} {
		ns := fmt.Sprintf("bench-%d", workers)
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			return nil, fmt.Errorf("create namespace %s: %w", ns, err)
		}
		cms := cs.CoreV1().ConfigMaps(ns)
		r, err := load("create", workers, n, func(i int) error {
			_, err := cms.Create(ctx, &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%d", i), Labels: map[string]string{"app": "bench"}},
				Data:       map[string]string{"payload": fmt.Sprintf("%0300d", i)},
			}, metav1.CreateOptions{})
			return err
		})
		if err != nil {
			return nil, err
		}
		results = append(results, r)
		r, err = load("get", workers, n, func(i int) error {
			_, err := cms.Get(ctx, fmt.Sprintf("cm-%d", i), metav1.GetOptions{})
			return err
		})
		if err != nil {
			return nil, err
		}
		results = append(results, r)
		r, err = load("list-100", workers, 200, func(i int) error {
			_, err := cms.List(ctx, metav1.ListOptions{Limit: 100})
			return err
		})
		if err != nil {
			return nil, err
		}
		results = append(results, r)
	}
	if err := topUp(ctx, cs, storedConfigMaps-2*n); err != nil {
		return nil, err
	}
	return results, nil
}

// load runs op for i in [0,n) over workers goroutines and measures it.
func load(name string, workers, n int, op func(i int) error) (APIResult, error) {
	lat := make([]time.Duration, n)
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	begin := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				t := time.Now()
				if err := op(i); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("%s #%d: %w", name, i, err)
					}
					mu.Unlock()
				}
				lat[i] = time.Since(t)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	total := time.Since(begin)
	if firstErr != nil {
		return APIResult{}, firstErr
	}
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return APIResult{
		Op: name, Workers: workers, Count: n,
		OpsPerS:  float64(n) / total.Seconds(),
		P50Milli: ms(lat[n/2]),
		P99Milli: ms(lat[n*99/100]),
	}, nil
}

// storedConfigMaps is how many ConfigMaps the store holds when the memory
// with objects is read (issue 4: daemon RSS with 10,000 stored objects).
const storedConfigMaps = 10000

// topUp creates n more ConfigMaps like the create scenario's, with 32
// workers, in their own namespace.
func topUp(ctx context.Context, cs kubernetes.Interface, n int) error {
	if n <= 0 {
		return nil
	}
	const ns = "bench-objects"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create namespace %s: %w", ns, err)
	}
	cms := cs.CoreV1().ConfigMaps(ns)
	_, err := load("top-up", 32, n, func(i int) error {
		_, err := cms.Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%d", i), Labels: map[string]string{"app": "bench"}},
			Data:       map[string]string{"payload": fmt.Sprintf("%0300d", i)},
		}, metav1.CreateOptions{})
		return err
	})
	return err
}
