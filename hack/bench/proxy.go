//go:build linux

package main

import (
	"fmt"
	"net"
	"slices"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nanokube/nanokube/internal/lab"
	"github.com/nanokube/nanokube/network"
)

// ProxyResult is the service proxy's sync time for n services (each a
// NodePort with 2 ready endpoints), render + netlink batch: a full sync
// (the whole table into an empty netns, one transaction), a restart
// sync (a new ProxyNft reads the table back and finds nothing to send)
// and an incremental one (one endpoint goes unready, or back: the
// proxy's cache renders that one service again and diffs only it).
type ProxyResult struct {
	Services      int     `json:"services"`
	FullSyncMS    float64 `json:"full_sync_ms"`        // median of 3
	FullSyncMinMS float64 `json:"full_sync_min_ms"`    // the least loaded of the 3
	FullCPUMS     float64 `json:"full_sync_cpu_ms"`    // user+sys of the process, median of 3 (less noisy on a shared machine)
	FullMessages  int     `json:"full_sync_messages"`  // netlink messages in the batch
	RestartMS     float64 `json:"restart_sync_ms"`     // median of 3
	IncrementalMS float64 `json:"incremental_sync_ms"` // median of 5
	IncrMinMS     float64 `json:"incremental_sync_min_ms"`
	IncrCPUMS     float64 `json:"incremental_sync_cpu_ms"` // median of 5
	IncrMessages  int     `json:"incremental_sync_messages"`
	Chains        int     `json:"chains"`
}

func proxyInput(n int, unready int) network.ProxyInput {
	in := network.ProxyInput{Node: "n1", ClusterCIDR: &net.IPNet{IP: net.IPv4(10, 244, 0, 0).To4(), Mask: net.CIDRMask(16, 32)},
		Slices: map[string][]*discoveryv1.EndpointSlice{}}
	tcp := corev1.ProtocolTCP
	name, port := "http", int32(8080)
	for i := range n {
		svc := fmt.Sprintf("svc-%d", i)
		in.Services = append(in.Services, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: svc},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, ClusterIP: fmt.Sprintf("10.96.%d.%d", 1+i/250, 1+i%250),
				Ports: []corev1.ServicePort{{Name: name, Protocol: tcp, Port: 80, NodePort: int32(30000 + i)}}}})
		sl := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: svc + "-x"}, AddressType: discoveryv1.AddressTypeIPv4,
			Ports: []discoveryv1.EndpointPort{{Name: &name, Protocol: &tcp, Port: &port}}}
		for j := range 2 {
			ready := !(i == unready && j == 1)
			node := "n1"
			sl.Endpoints = append(sl.Endpoints, discoveryv1.Endpoint{Addresses: []string{fmt.Sprintf("10.244.%d.%d", j+i/250*2, 2+i%250)},
				NodeName: &node, Conditions: discoveryv1.EndpointConditions{Ready: &ready}})
		}
		in.Slices["bench/"+svc] = []*discoveryv1.EndpointSlice{sl}
	}
	return in
}

// proxyBench times the proxy's syncs in the lab netns, then removes the table.
func proxyBench(l *lab.Lab) ([]ProxyResult, error) {
	var out []ProxyResult
	defer network.RemoveProxy(l.Netns)
	nft := network.NewProxyNft(l.Netns)
	defer nft.Close()
	for _, n := range []int{100, 1000, 5000} {
		in := proxyInput(n, -1)
		var full *network.ProxyRules
		var cache *network.ProxyCache
		var fulls, restarts, incs, fullCPU, incCPU []time.Duration
		res := ProxyResult{Services: n}
		for range 3 {
			if err := network.RemoveProxy(l.Netns); err != nil {
				return nil, err
			}
			nft.Forget()
			begin, cpu := time.Now(), cpuTime()
			cache, full = network.NewProxyCache(in)
			sent, err := nft.Sync(full)
			if err != nil {
				return nil, fmt.Errorf("full sync of %d services: %w", n, err)
			}
			fulls = append(fulls, time.Since(begin))
			fullCPU = append(fullCPU, cpuTime()-cpu)
			res.FullMessages = sent
		}
		for range 3 {
			nft.Forget()
			begin := time.Now()
			sent, err := nft.Sync(network.RenderProxy(in))
			if err != nil {
				return nil, fmt.Errorf("restart sync of %d services: %w", n, err)
			}
			if sent != 0 {
				return nil, fmt.Errorf("restart sync of %d services sent %d messages, want 0", n, sent)
			}
			restarts = append(restarts, time.Since(begin))
		}
		const rounds = 5
		for r := range rounds {
			// Alternate: one endpoint of a service goes unready, then back.
			unready := -1
			if r%2 == 0 {
				unready = n / 2
			}
			nextIn := proxyInput(n, unready)
			key := fmt.Sprintf("bench/svc-%d", n/2)
			part := nextIn
			part.Services = []*corev1.Service{nextIn.Services[n/2]}
			begin, cpu := time.Now(), cpuTime()
			sent, err := nft.SyncDelta(cache.Update(part, []string{key}))
			if err != nil {
				return nil, fmt.Errorf("incremental sync of %d services: %w", n, err)
			}
			incs = append(incs, time.Since(begin))
			incCPU = append(incCPU, cpuTime()-cpu)
			res.IncrMessages = sent
		}
		slices.Sort(fulls)
		slices.Sort(restarts)
		slices.Sort(incs)
		slices.Sort(fullCPU)
		slices.Sort(incCPU)
		res.FullCPUMS, res.IncrCPUMS = ms(fullCPU[1]), ms(incCPU[rounds/2])
		res.FullSyncMS, res.FullSyncMinMS = ms(fulls[1]), ms(fulls[0])
		res.RestartMS = ms(restarts[1])
		res.IncrementalMS, res.IncrMinMS = ms(incs[rounds/2]), ms(incs[0])
		res.Chains = len(full.Chains)
		out = append(out, res)
	}
	return out, nil
}

// cpuTime is the user+sys time of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
