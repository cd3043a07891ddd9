package network

import (
	"crypto/sha256"
	"encoding/json"
	"net"
	"sort"

	corev1 "k8s.io/api/core/v1"
)

// Overlay backends: how a node reaches the pod ranges of the other nodes.
const (
	// BackendVXLAN is flannel's vxlan backend: one VXLAN device per node,
	// and per remote node one onlink route, one ARP and one FDB entry.
	BackendVXLAN = "vxlan"
	// BackendHostGW routes each remote pod range via the remote node's IP;
	// it needs every node on one L2 segment (true on one host).
	BackendHostGW = "host-gw"
)

// VXLAN parameters (flannel's defaults).
const (
	VXLANDevice   = "vxlan.1"
	VXLANID       = 1
	VXLANPort     = 8472
	VXLANOverhead = 50 // outer Ethernet + IPv4 + UDP + VXLAN headers
)

// Flannel's Node annotations: what the other nodes need to reach this
// node's pods.
const (
	AnnotationBackendType       = "flannel.alpha.coreos.com/backend-type"
	AnnotationBackendData       = "flannel.alpha.coreos.com/backend-data"
	AnnotationPublicIP          = "flannel.alpha.coreos.com/public-ip"
	AnnotationKubeSubnetManager = "flannel.alpha.coreos.com/kube-subnet-manager"
)

// VtepMAC is the VXLAN device address of a node: derived from the profile
// and node names, so it stays the same when the node's netns is made again
// and the other nodes' FDB entries stay valid across restarts.
func VtepMAC(profile, node string) net.HardwareAddr {
	h := sha256.Sum256([]byte(profile + "/" + node))
	mac := net.HardwareAddr(h[:6])
	mac[0] = mac[0]&0xfe | 0x02 // unicast, locally administered
	return mac
}

type backendData struct {
	VNI     int    `json:"VNI"`
	VtepMAC string `json:"VtepMAC"`
}

// NodeAnnotations are the annotations a node publishes for the overlay.
func NodeAnnotations(backend string, publicIP net.IP, mac net.HardwareAddr) map[string]string {
	a := map[string]string{
		AnnotationBackendType:       backend,
		AnnotationPublicIP:          publicIP.String(),
		AnnotationKubeSubnetManager: "true",
	}
	if backend == BackendVXLAN {
		b, _ := json.Marshal(backendData{VNI: VXLANID, VtepMAC: mac.String()})
		a[AnnotationBackendData] = string(b)
	} else {
		a[AnnotationBackendData] = "null"
	}
	return a
}

// RemoteNode is what a node needs to know of another node to reach its pods.
type RemoteNode struct {
	Name     string
	PodCIDR  *net.IPNet
	PublicIP net.IP
	VtepMAC  net.HardwareAddr // vxlan backend only
}

// RemoteNodes is the desired overlay state of node self: every other Node
// with a pod range and an address (and, for vxlan, a VTEP address), sorted
// by pod range. Nodes that have not published what is needed yet are left
// out until they do (the watch brings the update).
func RemoteNodes(nodes []*corev1.Node, self, backend string) []RemoteNode {
	var out []RemoteNode
	for _, n := range nodes {
		if n.Name == self || n.DeletionTimestamp != nil {
			continue
		}
		_, cidr, err := net.ParseCIDR(n.Spec.PodCIDR)
		if err != nil || cidr.IP.To4() == nil {
			continue
		}
		r := RemoteNode{Name: n.Name, PodCIDR: cidr, PublicIP: net.ParseIP(n.Annotations[AnnotationPublicIP]).To4()}
		if r.PublicIP == nil {
			for _, a := range n.Status.Addresses {
				if a.Type == corev1.NodeInternalIP {
					r.PublicIP = net.ParseIP(a.Address).To4()
				}
			}
		}
		if r.PublicIP == nil {
			continue
		}
		if backend == BackendVXLAN {
			var bd backendData
			if err := json.Unmarshal([]byte(n.Annotations[AnnotationBackendData]), &bd); err != nil {
				continue
			}
			mac, err := net.ParseMAC(bd.VtepMAC)
			if err != nil {
				continue
			}
			r.VtepMAC = mac
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PodCIDR.String() < out[j].PodCIDR.String() })
	return out
}
