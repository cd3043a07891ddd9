//go:build linux

package daemon

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/nanokube/nanokube/cluster"
	"github.com/nanokube/nanokube/network"
)

// maxNodes bounds a profile's nodes (node i gets .1+i on the /24).
const maxNodes = 32

// clusterCIDR holds every node's /24 pod range.
var clusterCIDR = &net.IPNet{IP: net.IPv4(10, 244, 0, 0).To4(), Mask: net.CIDRMask(16, 32)}

// clusterNet is the profile's network: a bridge and one netns per node for
// the netns driver, nothing for the host driver.
type clusterNet struct {
	profile string
	driver  string
	backend string // network.BackendVXLAN or network.BackendHostGW
	pnet    network.ProfileNet
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

// nodeIndex is the inverse of NodeName; 0 when name is not a node name of
// the profile.
func nodeIndex(profile, name string) int {
	if name == profile {
		return 1
	}
	s, ok := strings.CutPrefix(name, profile+"-m")
	if !ok || len(s) < 2 {
		return 0
	}
	i, err := strconv.Atoi(s)
	if err != nil || i < 2 || i > maxNodes || NodeName(profile, i) != name {
		return 0
	}
	return i
}

// podCIDROf is node i's pod range: 10.244.(i-1).0/24.
func podCIDROf(i int) *net.IPNet {
	return &net.IPNet{IP: net.IPv4(10, 244, byte(i-1), 0).To4(), Mask: net.CIDRMask(24, 32)}
}

// setupNetwork makes the profile bridge (netns driver).
func setupNetwork(p cluster.Profile, cfg cluster.Config) (*clusterNet, error) {
	n := &clusterNet{profile: p.Name, driver: cfg.Driver, backend: cfg.NetworkBackend, port: cfg.APIServerPort}
	if n.backend == "" {
		n.backend = network.BackendVXLAN
	}
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
	return n, nil
}

// initialNodes are the nodes of an earlier run (state.json: nodes added
// with `node add` come back too), or cfg.Nodes new ones.
func (n *clusterNet) initialNodes(p cluster.Profile, cfg cluster.Config) []cluster.NodeState {
	if st, err := p.LoadState(); err == nil && len(st.Nodes) > 0 && (n.driver == "host" || st.Subnet == n.pnet.Subnet.String()) {
		out := make([]cluster.NodeState, 0, len(st.Nodes))
		for _, ns := range st.Nodes {
			if i := nodeIndex(p.Name, ns.Name); i > 0 {
				out = append(out, n.nodeState(i))
			}
		}
		if len(out) > 0 && out[0].Name == p.Name {
			return out
		}
	}
	nodes := cfg.Nodes
	if n.driver == "host" || nodes < 1 {
		nodes = 1
	}
	var out []cluster.NodeState
	for i := 1; i <= nodes; i++ {
		out = append(out, n.nodeState(i))
	}
	return out
}

// nodeState is node i's name, address and pod range.
func (n *clusterNet) nodeState(i int) cluster.NodeState {
	ip := net.IPv4(127, 0, 0, 1)
	if n.driver != "host" {
		ip = network.NodeIP(n.pnet, i)
	}
	return cluster.NodeState{Name: NodeName(n.profile, i), IP: ip.String(), PodCIDR: podCIDROf(i).String()}
}

func (n *clusterNet) node(ns cluster.NodeState) network.Node {
	return network.Node{Profile: n.profile, Name: ns.Name, Index: nodeIndex(n.profile, ns.Name), IP: net.ParseIP(ns.IP).To4(), Net: n.pnet}
}

// ensureNode makes a node's netns and its link to the profile bridge.
func (n *clusterNet) ensureNode(ns cluster.NodeState) error {
	if n.driver == "host" {
		return nil
	}
	if err := network.EnsureNode(n.node(ns)); err != nil {
		return fmt.Errorf("set up node %q: %w", ns.Name, err)
	}
	return nil
}

// deleteNode removes a node's veth, netns and address allocations.
func (n *clusterNet) deleteNode(ns cluster.NodeState) error {
	if n.driver != "host" {
		if err := network.DeleteNode(n.node(ns)); err != nil {
			return fmt.Errorf("delete node %q network: %w", ns.Name, err)
		}
	}
	if err := os.RemoveAll(filepath.Join(network.RunDir, n.profile, "ipam", ns.Name)); err != nil {
		return fmt.Errorf("remove node %q address allocations: %w", ns.Name, err)
	}
	return nil
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

// nodeNetns is the node's netns path ("" for the host driver).
func (n *clusterNet) nodeNetns(name string) string {
	if n.driver == "host" {
		return ""
	}
	return network.NetnsPath(n.profile, name)
}

func (n *clusterNet) listenAPI(node cluster.NodeState, addr string) (net.Listener, error) {
	return network.ListenTCP(n.nodeNetns(node.Name), addr)
}

func (n *clusterNet) summary(nodes int) string {
	if n.driver == "host" {
		return "host driver"
	}
	return fmt.Sprintf("%s on %s, %d node(s), %s", n.pnet.Bridge, n.pnet.Subnet, nodes, n.backend)
}

func (n *clusterNet) state(nodes []cluster.NodeState) cluster.State {
	st := cluster.State{APIEndpoint: fmt.Sprintf("https://%s", net.JoinHostPort(nodes[0].IP, fmt.Sprint(n.port))), Nodes: nodes}
	if n.driver != "host" {
		st.Subnet, st.Bridge = n.pnet.Subnet.String(), n.pnet.Bridge
	}
	return st
}

// teardown removes the nodes' namespaces and the bridge.
func (n *clusterNet) teardown(nodes []cluster.NodeState) error {
	if n.driver == "host" {
		return nil
	}
	for i := len(nodes) - 1; i >= 0; i-- {
		if err := network.DeleteNode(n.node(nodes[i])); err != nil {
			return fmt.Errorf("delete node %q network: %w", nodes[i].Name, err)
		}
	}
	if err := network.DeleteProfile(n.pnet); err != nil {
		return fmt.Errorf("delete profile network: %w", err)
	}
	return nil
}

// podNet is a node's pod network: its /24 on nk0.
func (n *clusterNet) podNet(ns cluster.NodeState) network.PodNet {
	_, cidr, err := net.ParseCIDR(ns.PodCIDR)
	if err != nil {
		cidr = podCIDROf(max(1, nodeIndex(n.profile, ns.Name)))
	}
	pn := network.PodNet{
		Profile:     n.profile,
		Node:        ns.Name,
		NodeNetns:   n.nodeNetns(ns.Name),
		CIDR:        cidr,
		ClusterCIDR: clusterCIDR,
	}
	if n.driver != "host" && n.backend == network.BackendVXLAN {
		pn.MTU = 1500 - network.VXLANOverhead // the profile bridge's veths carry 1500
	}
	return pn
}

// overlay builds a node's overlay (netns driver only).
func (n *clusterNet) overlayConfig(ns cluster.NodeState) network.OverlayConfig {
	pn := n.podNet(ns)
	return network.OverlayConfig{Backend: n.backend, Node: ns.Name, NodeNetns: pn.NodeNetns, Underlay: "eth0", PublicIP: net.ParseIP(ns.IP).To4(),
		PodCIDR: pn.CIDR, ClusterCIDR: clusterCIDR, VtepMAC: network.VtepMAC(n.profile, ns.Name)}
}
