//go:build linux

package daemon

import (
	"fmt"
	"net"

	"github.com/nanokube/nanokube/cluster"
	"github.com/nanokube/nanokube/network"
)

// clusterNet is the profile's network: a bridge and one netns per node for
// the netns driver, nothing for the host driver.
type clusterNet struct {
	profile string
	driver  string
	pnet    network.ProfileNet
	nodes   []network.Node
	port    int
}

// NodeName names node i (1-based) like minikube: the profile, then
// <profile>-m02, -m03, …
func NodeName(profile string, i int) string {
	if i == 1 {
		return profile
	}
	return fmt.Sprintf("%s-m%02d", profile, i)
}

func setupNetwork(p cluster.Profile, cfg cluster.Config) (*clusterNet, error) {
	n := &clusterNet{profile: p.Name, driver: cfg.Driver, port: cfg.APIServerPort}
	if cfg.Driver == "host" {
		return n, nil
	}
	subnet, err := chooseSubnet(p)
	if err != nil {
		return nil, err
	}
	n.pnet = network.ProfileNet{
		Profile: p.Name,
		Bridge:  network.BridgeName(p.Name),
		Subnet:  subnet,
		Gateway: gatewayOf(subnet),
	}
	if err := network.EnsureProfile(n.pnet); err != nil {
		return nil, fmt.Errorf("set up profile network %s: %w", subnet, err)
	}
	for i := 1; i <= cfg.Nodes; i++ {
		node := network.Node{Profile: p.Name, Name: NodeName(p.Name, i), Index: i, IP: network.NodeIP(n.pnet, i), Net: n.pnet}
		if err := network.EnsureNode(node); err != nil {
			return nil, fmt.Errorf("set up node %q: %w", node.Name, err)
		}
		n.nodes = append(n.nodes, node)
	}
	for i, node := range n.nodes {
		var routes []network.PodRoute
		for j, other := range n.nodes {
			if j != i {
				routes = append(routes, network.PodRoute{CIDR: n.podNet(j).CIDR, Via: other.IP})
			}
		}
		if err := network.EnsurePodRoutes(network.NetnsPath(p.Name, node.Name), routes); err != nil {
			return nil, fmt.Errorf("pod routes of node %q: %w", node.Name, err)
		}
	}
	return n, nil
}

// chooseSubnet keeps the subnet of an earlier start, or picks the first free
// one that no other profile uses.
func chooseSubnet(p cluster.Profile) (*net.IPNet, error) {
	if st, err := p.LoadState(); err == nil && st.Subnet != "" {
		_, subnet, err := net.ParseCIDR(st.Subnet)
		if err == nil {
			return subnet, nil
		}
	}
	var taken []*net.IPNet
	names, err := cluster.ListProfiles(p.Home)
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		if name == p.Name {
			continue
		}
		if st, err := cluster.NewProfile(p.Home, name).LoadState(); err == nil && st.Subnet != "" {
			if _, sn, err := net.ParseCIDR(st.Subnet); err == nil {
				taken = append(taken, sn)
			}
		}
	}
	subnet, err := network.PickSubnet(taken)
	if err != nil {
		return nil, fmt.Errorf("pick a subnet for the profile network: %w", err)
	}
	return subnet, nil
}

func gatewayOf(subnet *net.IPNet) net.IP {
	ip := subnet.IP.To4()
	return net.IPv4(ip[0], ip[1], ip[2], ip[3]+1)
}

func (n *clusterNet) nodeIPs() []net.IP {
	if n.driver == "host" {
		return []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	ips := make([]net.IP, 0, len(n.nodes))
	for _, node := range n.nodes {
		ips = append(ips, node.IP)
	}
	return ips
}

// apiIP is the address clients use for the API server.
func (n *clusterNet) apiIP() net.IP { return n.nodeIPs()[0] }

// apiListenIP is where the API server listens (inside node 1's netns).
func (n *clusterNet) apiListenIP() net.IP { return n.apiIP() }

func (n *clusterNet) listenAPI(addr string) (net.Listener, error) {
	ns := ""
	if n.driver != "host" {
		ns = network.NetnsPath(n.profile, n.nodes[0].Name)
	}
	return network.ListenTCP(ns, addr)
}

func (n *clusterNet) summary() string {
	if n.driver == "host" {
		return "host driver"
	}
	return fmt.Sprintf("%s on %s, %d node(s)", n.pnet.Bridge, n.pnet.Subnet, len(n.nodes))
}

func (n *clusterNet) state(cfg cluster.Config) cluster.State {
	st := cluster.State{APIEndpoint: fmt.Sprintf("https://%s", net.JoinHostPort(n.apiIP().String(), fmt.Sprint(cfg.APIServerPort)))}
	if n.driver != "host" {
		st.Subnet, st.Bridge = n.pnet.Subnet.String(), n.pnet.Bridge
	}
	for i, ip := range n.nodeIPs() {
		st.Nodes = append(st.Nodes, cluster.NodeState{Name: NodeName(n.profile, i+1), IP: ip.String()})
	}
	return st
}

// teardown removes the nodes' namespaces and the bridge.
func (n *clusterNet) teardown() error {
	if n.driver == "host" {
		return nil
	}
	for i := len(n.nodes) - 1; i >= 0; i-- {
		if err := network.DeleteNode(n.nodes[i]); err != nil {
			return fmt.Errorf("delete node %q network: %w", n.nodes[i].Name, err)
		}
	}
	if err := network.DeleteProfile(n.pnet); err != nil {
		return fmt.Errorf("delete profile network: %w", err)
	}
	return nil
}

// podNet is node i's (0-based) pod network: 10.244.i.0/24 on nk0.
func (n *clusterNet) podNet(i int) network.PodNet {
	nsPath := ""
	if n.driver != "host" {
		nsPath = network.NetnsPath(n.profile, n.nodes[i].Name)
	}
	return network.PodNet{
		Profile:     n.profile,
		Node:        NodeName(n.profile, i+1),
		NodeNetns:   nsPath,
		CIDR:        &net.IPNet{IP: net.IPv4(10, 244, byte(i), 0).To4(), Mask: net.CIDRMask(24, 32)},
		ClusterCIDR: &net.IPNet{IP: net.IPv4(10, 244, 0, 0).To4(), Mask: net.CIDRMask(16, 32)},
	}
}
