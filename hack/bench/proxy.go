//go:build linux

package main

import (
	"fmt"
	"net"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nanokube/nanokube/internal/lab"
	"github.com/nanokube/nanokube/network"
)

// ProxyResult is the service proxy's sync time for n services (each a
// NodePort with 2 ready endpoints): a full sync (render + replace the
// whole table in one nft transaction, as after a start) and an
// incremental one (one endpoint goes unready).
type ProxyResult struct {
	Services      int     `json:"services"`
	FullSyncMS    float64 `json:"full_sync_ms"`        // median of 3
	FullSyncMinMS float64 `json:"full_sync_min_ms"`    // the least loaded of the 3
	IncrementalMS float64 `json:"incremental_sync_ms"` // median of 5
	IncrMinMS     float64 `json:"incremental_sync_min_ms"`
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
	for _, n := range []int{100, 1000, 5000} {
		in := proxyInput(n, -1)
		var full *network.ProxyRules
		var fulls, incs []time.Duration
		for range 3 {
			begin := time.Now()
			full = network.RenderProxy(in)
			if err := network.ApplyNft(l.Netns, full.Script(nil)); err != nil {
				return nil, fmt.Errorf("full sync of %d services: %w", n, err)
			}
			fulls = append(fulls, time.Since(begin))
		}
		const rounds = 5
		last := full
		for r := range rounds {
			// Alternate: one endpoint of a service goes unready, then back.
			unready := -1
			if r%2 == 0 {
				unready = n / 2
			}
			nextIn := proxyInput(n, unready)
			begin := time.Now()
			next := network.RenderProxy(nextIn)
			if err := network.ApplyNft(l.Netns, next.Script(last)); err != nil {
				return nil, fmt.Errorf("incremental sync of %d services: %w", n, err)
			}
			incs = append(incs, time.Since(begin))
			last = next
		}
		slices.Sort(fulls)
		slices.Sort(incs)
		out = append(out, ProxyResult{Services: n, FullSyncMS: ms(fulls[1]), FullSyncMinMS: ms(fulls[0]),
			IncrementalMS: ms(incs[rounds/2]), IncrMinMS: ms(incs[0]), Chains: len(full.Chains)})
	}
	return out, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
