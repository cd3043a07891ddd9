//go:build linux

package daemon

import (
	"context"
	"fmt"
	"net"
	"os"

	"k8s.io/client-go/kubernetes"

	"github.com/nanokube/nanokube/cluster"
	"github.com/nanokube/nanokube/network"
	"github.com/nanokube/nanokube/network/healthcheck"
)

// clusterDNSIP is the kube-dns service address in every pod's resolv.conf.
var clusterDNSIP = net.IPv4(10, 96, 0, 10)

// serviceCIDR is the range of ClusterIPs.
var serviceCIDR = &net.IPNet{IP: net.IPv4(10, 96, 0, 0).To4(), Mask: net.CIDRMask(12, 32)}

// startServices builds the cluster DNS server; each node listens for it
// (nodeServices).
func (s *System) startServices(_ context.Context, cs kubernetes.Interface) error {
	upstream := append([]string(nil), s.cfg.Cluster.DNSUpstream...)
	for i, u := range upstream {
		if _, _, err := net.SplitHostPort(u); err != nil {
			upstream[i] = net.JoinHostPort(u, "53")
		}
	}
	if len(upstream) == 0 {
		upstream = network.HostResolvers(os.ReadFile)
	}
	s.dns = network.NewDNS(network.DNSConfig{Domain: "cluster.local", Informers: s.ctrl.Informers(), Upstream: upstream,
		ReverseCIDRs: []*net.IPNet{serviceCIDR, clusterCIDR}, Log: s.log})
	if s.net.driver == "host" {
		return nil
	}
	first, last := network.LBPoolOf(s.net.pnet.Subnet)
	lb, err := network.NewLBAllocator(network.LBConfig{Client: cs, Informers: s.ctrl.Informers(), First: first, Last: last, Log: s.log})
	if err != nil {
		return fmt.Errorf("build LoadBalancer address allocator: %w", err)
	}
	s.ctrl.AddRunner(lb.Run)
	return nil
}

// nodeServices builds a node's service proxy, its service health checks
// and its DNS listener on the node's nk0 gateway; they run with the node.
func (s *System) nodeServices(n cluster.NodeState, pn network.PodNet) ([]func(context.Context) error, error) {
	if err := pn.Ensure(); err != nil {
		return nil, fmt.Errorf("node %s pod network: %w", n.Name, err)
	}
	gw := pn.Gateway()
	pcfg := network.ProxyConfig{Profile: s.cfg.Profile.Name, Node: n.Name, NodeNetns: pn.NodeNetns, ClusterCIDR: clusterCIDR,
		Informers: s.ctrl.Informers(), DNS: gw, ClusterDNS: clusterDNSIP, Log: s.log}
	if s.net.driver != "host" {
		pcfg.LBPool, pcfg.Underlay = network.LBPoolNet(s.net.pnet.Subnet), "eth0"
	}
	proxy, err := network.NewProxy(pcfg)
	if err != nil {
		return nil, fmt.Errorf("build service proxy: %w", err)
	}
	// kube-proxy's health check ports: on every address of a node netns,
	// on the node IP only where the node shares the host's netns.
	hcAddr := ""
	if s.net.driver == "host" {
		hcAddr = n.IP
	}
	health, err := healthcheck.New(healthcheck.Config{Node: n.Name, NodeNetns: pn.NodeNetns, Addr: hcAddr, Informers: s.ctrl.Informers(), Log: s.log})
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort(gw.String(), "53")
	udp, err := network.ListenUDP(pn.NodeNetns, addr)
	if err != nil {
		return nil, fmt.Errorf("listen for DNS on %s: %w", addr, err)
	}
	tcp, err := network.ListenTCP(pn.NodeNetns, addr)
	if err != nil {
		udp.Close()
		return nil, fmt.Errorf("listen for DNS on %s: %w", addr, err)
	}
	return []func(context.Context) error{proxy.Run, health.Run, func(ctx context.Context) error { return s.dns.Serve(ctx, udp, tcp) }}, nil
}
