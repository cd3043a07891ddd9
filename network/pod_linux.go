//go:build linux

package network

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/coreos/go-iptables/iptables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// PodBridge is the bridge every pod of a node hangs on.
const PodBridge = "nk0"

// PodNet is one node's pod network: a /24 on nk0 inside the node netns.
type PodNet struct {
	Profile   string
	Node      string
	NodeNetns string
	CIDR      *net.IPNet // e.g. 10.244.0.0/24
	// ClusterCIDR is the pod range of the whole cluster (10.244.0.0/16);
	// traffic leaving it is masqueraded.
	ClusterCIDR *net.IPNet
	// MTU of the pods' interfaces (0: the bridge's); the VXLAN overlay
	// needs 50 bytes below the underlay.
	MTU int
}

// Gateway is the node's address on nk0 (.1 of the pod range).
func (p PodNet) Gateway() net.IP { return p.gateway() }

func (p PodNet) gateway() net.IP {
	ip := p.CIDR.IP.To4()
	return net.IPv4(ip[0], ip[1], ip[2], 1)
}

func (p PodNet) ipamDir() string { return filepath.Join(RunDir, p.Profile, "ipam", p.Node) }

// PodNetnsPath is where a pod's netns is bind-mounted.
func (p PodNet) PodNetnsPath(uid string) string {
	return filepath.Join(RunDir, p.Profile, "pods", uid)
}

// Ensure makes nk0 with the gateway address inside the node netns, turns
// on forwarding and masquerades pod traffic that leaves the pod range.
func (p PodNet) Ensure() error {
	return Do(p.NodeNetns, func() error {
		if _, err := ensureBridge(PodBridge, &net.IPNet{IP: p.gateway(), Mask: p.CIDR.Mask}); err != nil {
			return fmt.Errorf("pod bridge: %w", err)
		}
		if err := setSysctl("net/ipv4/ip_forward", "1"); err != nil {
			return err
		}
		ipt, err := iptables.New()
		if err != nil {
			return fmt.Errorf("iptables: %w", err)
		}
		rule := []string{"-s", p.CIDR.String(), "!", "-d", p.ClusterCIDR.String(), "-m", "comment", "--comment", "nanokube:" + p.Profile + " pod masquerade", "-j", "MASQUERADE"}
		if err := ipt.AppendUnique("nat", "POSTROUTING", rule...); err != nil {
			return fmt.Errorf("masquerade rule: %w", err)
		}
		return nil
	})
}

// Setup gives pod uid a netns with eth0 on nk0 and an address; the same
// uid keeps its address across daemon restarts.
func (p PodNet) Setup(uid string) (string, net.IP, error) {
	path := p.PodNetnsPath(uid)
	ip, err := p.allocate(uid)
	if err != nil {
		return "", nil, err
	}
	if !isNetnsMount(path) {
		if err := createNetns(path); err != nil {
			return "", nil, err
		}
	}
	podNS, err := netns.GetFromPath(path)
	if err != nil {
		return "", nil, fmt.Errorf("open pod netns: %w", err)
	}
	defer podNS.Close()
	host := "nkp" + uid[:8] + uid[9:13]
	host = host[:min(len(host), 15)]
	err = Do(p.NodeNetns, func() error {
		br, err := netlink.LinkByName(PodBridge)
		if err != nil {
			return fmt.Errorf("look up %s: %w", PodBridge, err)
		}
		link, err := netlink.LinkByName(host)
		if _, ok := err.(netlink.LinkNotFoundError); ok {
			la := netlink.NewLinkAttrs()
			la.Name, la.MTU = host, br.Attrs().MTU
			if p.MTU > 0 {
				la.MTU = p.MTU
			}
			if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(podNS))}); err != nil && !os.IsExist(err) {
				return fmt.Errorf("create veth %s: %w", host, err)
			}
			link, err = netlink.LinkByName(host)
		}
		if err != nil {
			return fmt.Errorf("look up veth %s: %w", host, err)
		}
		if err := netlink.LinkSetMaster(link, br); err != nil {
			return err
		}
		if err := netlink.LinkSetHairpin(link, true); err != nil {
			return fmt.Errorf("hairpin on %s: %w", host, err)
		}
		return netlink.LinkSetUp(link)
	})
	if err != nil {
		return "", nil, err
	}
	err = Do(path, func() error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		if err := netlink.LinkSetUp(lo); err != nil {
			return err
		}
		eth, err := netlink.LinkByName("eth0")
		if err != nil {
			return fmt.Errorf("look up pod eth0: %w", err)
		}
		if err := ensureAddr(eth, &net.IPNet{IP: ip, Mask: p.CIDR.Mask}); err != nil {
			return err
		}
		if err := netlink.LinkSetUp(eth); err != nil {
			return err
		}
		return netlink.RouteReplace(&netlink.Route{LinkIndex: eth.Attrs().Index, Gw: p.gateway()})
	})
	if err != nil {
		return "", nil, fmt.Errorf("configure pod %s network: %w", uid, err)
	}
	return path, ip, nil
}

// allocate returns uid's address, taking a free one on first use. Each
// address is a file named after it holding the uid (created exclusively).
func (p PodNet) allocate(uid string) (net.IP, error) {
	dir := p.ipamDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if b, err := os.ReadFile(filepath.Join(dir, e.Name())); err == nil && strings.TrimSpace(string(b)) == uid {
			return net.ParseIP(e.Name()), nil
		}
	}
	base := p.CIDR.IP.To4()
	for host := 2; host < 255; host++ {
		ip := net.IPv4(base[0], base[1], base[2], byte(host))
		f, err := os.OpenFile(filepath.Join(dir, ip.String()), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		_, err = f.WriteString(uid)
		f.Close()
		return ip, err
	}
	return nil, fmt.Errorf("no free pod address in %s", p.CIDR)
}

// Teardown removes the pod's netns (its veth goes with it) and frees its address.
func (p PodNet) Teardown(uid string) error {
	if err := removeNetns(p.PodNetnsPath(uid)); err != nil {
		return err
	}
	dir := p.ipamDir()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if b, err := os.ReadFile(filepath.Join(dir, e.Name())); err == nil && strings.TrimSpace(string(b)) == uid {
			return os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	return nil
}

// RemoveNetns removes the pod's netns but keeps its address reserved (the
// daemon stops; the pod comes back with the same IP).
func (p PodNet) RemoveNetns(uid string) error { return removeNetns(p.PodNetnsPath(uid)) }

// UnmountAll removes every netns mount of the profile (delete's last resort
// after a crash left some behind).
func UnmountAll(profile string) error {
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	prefix := filepath.Join(RunDir, profile) + "/"
	for _, line := range strings.Split(string(mi), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], prefix) {
			if err := removeNetns(f[4]); err != nil {
				return err
			}
		}
	}
	return nil
}

// Remove deletes what Ensure made where the node netns outlives the
// profile (the host driver): nk0, the masquerade rule and the proxy table.
func (p PodNet) Remove() error {
	return Do(p.NodeNetns, func() error {
		if err := deleteLink(PodBridge); err != nil {
			return err
		}
		ipt, err := iptables.New()
		if err != nil {
			return fmt.Errorf("iptables: %w", err)
		}
		rule := []string{"-s", p.CIDR.String(), "!", "-d", p.ClusterCIDR.String(), "-m", "comment", "--comment", "nanokube:" + p.Profile + " pod masquerade", "-j", "MASQUERADE"}
		if ok, _ := ipt.Exists("nat", "POSTROUTING", rule...); ok {
			if err := ipt.Delete("nat", "POSTROUTING", rule...); err != nil {
				return fmt.Errorf("delete masquerade rule: %w", err)
			}
		}
		return RemoveProxy("")
	})
}
