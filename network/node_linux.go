//go:build linux

package network

import (
	"fmt"
	"net"
	"os"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// EnsureNode makes node n's netns (kept if present), its veth pair (host
// side on the bridge, eth0 inside with the node IP), loopback, the default
// route via the gateway and forwarding inside.
func EnsureNode(n Node) error {
	path := NetnsPath(n.Profile, n.Name)
	if !isNetnsMount(path) {
		if err := createNetns(path); err != nil {
			return err
		}
	}
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", path, err)
	}
	defer ns.Close()
	br, err := netlink.LinkByName(n.Net.Bridge)
	if err != nil {
		return fmt.Errorf("look up bridge %s: %w", n.Net.Bridge, err)
	}
	host := vethName(n.Profile, n.Name)
	link, err := netlink.LinkByName(host)
	if _, ok := err.(netlink.LinkNotFoundError); ok {
		la := netlink.NewLinkAttrs()
		la.Name, la.MTU = host, br.Attrs().MTU
		veth := &netlink.Veth{LinkAttrs: la, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(ns))}
		if err := netlink.LinkAdd(veth); err != nil && !os.IsExist(err) {
			return fmt.Errorf("create veth %s: %w", host, err)
		}
		link, err = netlink.LinkByName(host)
	}
	if err != nil {
		return fmt.Errorf("look up veth %s: %w", host, err)
	}
	if link.Attrs().MasterIndex != br.Attrs().Index {
		if err := netlink.LinkSetMaster(link, br); err != nil {
			return fmt.Errorf("attach %s to %s: %w", host, n.Net.Bridge, err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("set %s up: %w", host, err)
	}
	return Do(path, func() error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return fmt.Errorf("look up lo: %w", err)
		}
		if err := netlink.LinkSetUp(lo); err != nil {
			return fmt.Errorf("set lo up: %w", err)
		}
		eth, err := netlink.LinkByName("eth0")
		if err != nil {
			return fmt.Errorf("look up eth0 in node %s: %w", n.Name, err)
		}
		if err := ensureAddr(eth, &net.IPNet{IP: n.IP, Mask: n.Net.Subnet.Mask}); err != nil {
			return fmt.Errorf("node %s eth0: %w", n.Name, err)
		}
		if err := netlink.LinkSetUp(eth); err != nil {
			return fmt.Errorf("set eth0 up: %w", err)
		}
		def := &netlink.Route{LinkIndex: eth.Attrs().Index, Gw: n.Net.Gateway}
		if err := netlink.RouteReplace(def); err != nil {
			return fmt.Errorf("default route via %s: %w", n.Net.Gateway, err)
		}
		return setSysctl("net/ipv4/ip_forward", "1")
	})
}

// DeleteNode removes the node's veth and netns; missing pieces are fine.
func DeleteNode(n Node) error {
	if err := deleteLink(vethName(n.Profile, n.Name)); err != nil {
		return err
	}
	return removeNetns(NetnsPath(n.Profile, n.Name))
}
