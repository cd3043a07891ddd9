package network

import (
	"fmt"
	"hash/fnv"
	"net"
	"path/filepath"
)

// RunDir is where netns bind mounts and other runtime files live.
const RunDir = "/run/nanokube"

// BridgeName is the profile bridge's name: nk-<profile>, or nk- and a hash
// when that does not fit IFNAMSIZ.
func BridgeName(profile string) string {
	if name := "nk-" + profile; len(name) <= 15 {
		return name
	}
	return fmt.Sprintf("nk-%.6s%05x", profile, shortHash(profile)&0xfffff)
}

// vethName is the host side of a node's veth pair.
func vethName(profile, node string) string {
	return fmt.Sprintf("nkv%08x", shortHash(profile+"/"+node))
}

func shortHash(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}

// NetnsPath is the bind mount of a node's network namespace.
func NetnsPath(profile, node string) string {
	return filepath.Join(RunDir, profile, "netns", node)
}

// ProfileNet is a profile's bridge network.
type ProfileNet struct {
	Profile string
	Bridge  string
	Subnet  *net.IPNet
	Gateway net.IP
}

// Node is one node's place on the profile network.
type Node struct {
	Profile string
	Name    string
	Index   int // 1-based
	IP      net.IP
	Net     ProfileNet
}

// NodeIP is node i's address: .1+i of the subnet (node 1 is .2).
func NodeIP(p ProfileNet, index int) net.IP {
	ip := p.Subnet.IP.To4()
	return net.IPv4(ip[0], ip[1], ip[2], ip[3]+byte(1+index))
}

// candidateSubnets is minikube's series: 192.168.49.0/24, then the third
// octet in steps of 9.
func candidateSubnets() []*net.IPNet {
	var out []*net.IPNet
	for third := 49; third <= 254; third += 9 {
		out = append(out, &net.IPNet{IP: net.IPv4(192, 168, byte(third), 0).To4(), Mask: net.CIDRMask(24, 32)})
	}
	return out
}

func overlaps(a, b *net.IPNet) bool {
	return a.Contains(b.IP) || b.Contains(a.IP)
}
