//go:build linux

package daemon

import (
	"context"
	"fmt"
	"net"
	"os"

	"k8s.io/client-go/kubernetes"

	"github.com/nanokube/nanokube/network"
)

// clusterDNSIP is the kube-dns service address in every pod's resolv.conf.
var clusterDNSIP = net.IPv4(10, 96, 0, 10)

// startServices builds each node's service proxy and DNS listener; they run
// with the controllers and share their informers.
func (s *System) startServices(ctx context.Context, _ kubernetes.Interface) error {
	upstream := s.cfg.Cluster.DNSUpstream
	for i, u := range upstream {
		if _, _, err := net.SplitHostPort(u); err != nil {
			upstream[i] = net.JoinHostPort(u, "53")
		}
	}
	if len(upstream) == 0 {
		upstream = network.HostResolvers(os.ReadFile)
	}
	dns := network.NewDNS(network.DNSConfig{Domain: "cluster.local", Informers: s.ctrl.Informers(), Upstream: upstream, Log: s.log})
	for i := range s.state.Nodes {
		pn := s.net.podNet(i)
		if err := pn.Ensure(); err != nil {
			return fmt.Errorf("node %d pod network: %w", i+1, err)
		}
		gw := pn.Gateway()
		proxy, err := network.NewProxy(network.ProxyConfig{Profile: s.cfg.Profile.Name, NodeNetns: pn.NodeNetns, Informers: s.ctrl.Informers(),
			DNS: gw, ClusterDNS: clusterDNSIP, Log: s.log})
		if err != nil {
			return fmt.Errorf("build service proxy: %w", err)
		}
		s.ctrl.AddRunner(proxy.Run)
		addr := net.JoinHostPort(gw.String(), "53")
		udp, err := network.ListenUDP(pn.NodeNetns, addr)
		if err != nil {
			return fmt.Errorf("listen for DNS on %s: %w", addr, err)
		}
		tcp, err := network.ListenTCP(pn.NodeNetns, addr)
		if err != nil {
			udp.Close()
			return fmt.Errorf("listen for DNS on %s: %w", addr, err)
		}
		s.ctrl.AddRunner(func(ctx context.Context) error { return dns.Serve(ctx, udp, tcp) })
	}
	return nil
}
