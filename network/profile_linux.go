//go:build linux

package network

import (
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/vishvananda/netlink"
)

// PickSubnet returns the first subnet of the series that overlaps no
// address or route in the current netns and none in taken.
func PickSubnet(taken []*net.IPNet) (*net.IPNet, error) {
	var used []*net.IPNet
	used = append(used, taken...)
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	for _, a := range addrs {
		used = append(used, a.IPNet)
	}
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	for _, r := range routes {
		if r.Dst != nil && r.Dst.IP != nil && !r.Dst.IP.IsUnspecified() {
			used = append(used, r.Dst)
		}
	}
next:
	for _, c := range candidateSubnets() {
		for _, u := range used {
			if overlaps(c, u) {
				continue next
			}
		}
		return c, nil
	}
	return nil, errors.New("every candidate subnet 192.168.49.0/24 … 192.168.247.0/24 is in use")
}

// EnsureProfile makes the profile bridge with the gateway address, up, and
// turns on forwarding in this netns.
func EnsureProfile(p ProfileNet) error {
	br, err := ensureBridge(p.Bridge, &net.IPNet{IP: p.Gateway, Mask: p.Subnet.Mask})
	if err != nil {
		return fmt.Errorf("bridge %s: %w", p.Bridge, err)
	}
	_ = br
	return setSysctl("net/ipv4/ip_forward", "1")
}

// DeleteProfile removes the bridge; a missing bridge is fine.
func DeleteProfile(p ProfileNet) error {
	return deleteLink(p.Bridge)
}

func ensureBridge(name string, addr *net.IPNet) (netlink.Link, error) {
	link, err := netlink.LinkByName(name)
	if _, ok := err.(netlink.LinkNotFoundError); ok {
		la := netlink.NewLinkAttrs()
		la.Name = name
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: la}); err != nil && !os.IsExist(err) {
			return nil, fmt.Errorf("create: %w", err)
		}
		link, err = netlink.LinkByName(name)
	}
	if err != nil {
		return nil, fmt.Errorf("look up: %w", err)
	}
	if err := ensureAddr(link, addr); err != nil {
		return nil, err
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("set up: %w", err)
	}
	return link, nil
}

// ensureAddr gives link exactly addr (other IPv4 addresses are removed).
func ensureAddr(link netlink.Link, addr *net.IPNet) error {
	addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("list addresses: %w", err)
	}
	have := false
	for _, a := range addrs {
		if a.IPNet.String() == addr.String() {
			have = true
			continue
		}
		if err := netlink.AddrDel(link, &a); err != nil {
			return fmt.Errorf("remove stale address %s: %w", a.IPNet, err)
		}
	}
	if !have {
		if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: addr}); err != nil && !os.IsExist(err) {
			return fmt.Errorf("add address %s: %w", addr, err)
		}
	}
	return nil
}

func deleteLink(name string) error {
	link, err := netlink.LinkByName(name)
	if _, ok := err.(netlink.LinkNotFoundError); ok {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up %s: %w", name, err)
	}
	if err := netlink.LinkDel(link); err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}

func setSysctl(key, value string) error {
	path := "/proc/sys/" + key
	if b, err := os.ReadFile(path); err == nil && string(b) == value+"\n" {
		return nil
	}
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", key, value, err)
	}
	return nil
}
