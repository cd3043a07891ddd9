//go:build linux

package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"

	"github.com/vishvananda/netlink"
)

// ServiceCIDR is the range of ClusterIPs that `tunnel` routes to the cluster.
var ServiceCIDR = &net.IPNet{IP: net.IPv4(10, 96, 0, 0).To4(), Mask: net.CIDRMask(12, 32)}

// Tunnel routes the service CIDR from the host to the first node until
// ctx ends, then removes the route. LoadBalancer addresses need no route:
// they are on the profile subnet and the serving node answers ARP for them.
func Tunnel(ctx context.Context, p Profile, w io.Writer) error {
	if !p.Exists() {
		return errNoProfile(p)
	}
	if err := runningDaemon(p); err != nil {
		return err
	}
	st, err := p.LoadState()
	if err != nil || len(st.Nodes) == 0 {
		return fmt.Errorf("profile %q has not started yet: nanokube start -p %s", p.Name, p.Name)
	}
	gw := net.ParseIP(st.Nodes[0].IP).To4()
	if gw == nil || gw.IsLoopback() {
		return fmt.Errorf("profile %q uses the host driver: ClusterIPs are reachable without a tunnel", p.Name)
	}
	route := &netlink.Route{Dst: ServiceCIDR, Gw: gw, Protocol: netlink.RouteProtocol(4) /* static */}
	if err := netlink.RouteAdd(route); err != nil {
		if errors.Is(err, os.ErrPermission) {
			return fmt.Errorf("add a route for %s via %s: %w: run sudo nanokube tunnel", ServiceCIDR, gw, err)
		}
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("a route for %s already exists (another tunnel?): ip route show %s", ServiceCIDR, ServiceCIDR)
		}
		return fmt.Errorf("add a route for %s via %s: %w", ServiceCIDR, gw, err)
	}
	fmt.Fprintf(w, "🚇  Tunnel for profile %q: route %s via %s (ClusterIPs reachable from this host)\n", p.Name, ServiceCIDR, gw)
	if st.Subnet != "" {
		fmt.Fprintf(w, "    LoadBalancer addresses are on %s and answered by the serving node\n", st.Subnet)
	}
	fmt.Fprintln(w, "❗  Keep this running; press Ctrl-C to remove the route")
	<-ctx.Done()
	if err := netlink.RouteDel(route); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove the route for %s: %w", ServiceCIDR, err)
	}
	fmt.Fprintf(w, "✋  Route %s via %s removed\n", ServiceCIDR, gw)
	return nil
}
