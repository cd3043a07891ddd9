//go:build linux

package network

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"

	"github.com/nanokube/nanokube/internal/syncloop"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// OverlayConfig builds one node's overlay.
type OverlayConfig struct {
	Backend   string // BackendVXLAN (default) or BackendHostGW
	Node      string // this node's name
	NodeNetns string
	Underlay  string // the node's link on the profile network ("eth0")
	PublicIP  net.IP // the node's address on the underlay
	PodCIDR   *net.IPNet
	// ClusterCIDR holds every node's pod range; routes inside it that no
	// Node asks for are removed.
	ClusterCIDR *net.IPNet
	VtepMAC     net.HardwareAddr
	Informers   informers.SharedInformerFactory
	Log         *slog.Logger
}

// Overlay keeps a node's routes to the other nodes' pods in line with the
// Node objects, the way flannel's vxlan (or host-gw) backend does: every
// change of a Node recomputes the whole desired state, and only the
// difference is applied, so a restart converges.
type Overlay struct {
	cfg    OverlayConfig
	nodes  corelisters.NodeLister
	synced cache.InformerSynced
	queue  workqueue.TypedRateLimitingInterface[string]
}

// NewOverlay builds the overlay of one node.
func NewOverlay(cfg OverlayConfig) (*Overlay, error) {
	if cfg.Backend == "" {
		cfg.Backend = BackendVXLAN
	}
	if cfg.Backend != BackendVXLAN && cfg.Backend != BackendHostGW {
		return nil, fmt.Errorf("unknown overlay backend %q: use %s or %s", cfg.Backend, BackendVXLAN, BackendHostGW)
	}
	inf := cfg.Informers.Core().V1().Nodes()
	o := &Overlay{cfg: cfg, nodes: inf.Lister(), synced: inf.Informer().HasSynced,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](), workqueue.TypedRateLimitingQueueConfig[string]{Name: "overlay-" + cfg.Node})}
	kick := func(any) { o.queue.Add(syncloop.Key) }
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: kick, UpdateFunc: func(_, n any) { kick(n) }, DeleteFunc: kick}); err != nil {
		return nil, err
	}
	return o, nil
}

// Ensure makes the node's own overlay device (nothing for host-gw) before
// the node runs pods.
func (o *Overlay) Ensure() error {
	return Do(o.cfg.NodeNetns, func() error {
		if o.cfg.Backend != BackendVXLAN {
			return deleteLink(VXLANDevice)
		}
		_, err := o.ensureVXLAN()
		return err
	})
}

// Run syncs on every Node change until ctx ends.
func (o *Overlay) Run(ctx context.Context) error {
	defer o.queue.ShutDown()
	if err := o.Ensure(); err != nil {
		return fmt.Errorf("node %s overlay device: %w", o.cfg.Node, err)
	}
	return syncloop.Run(ctx, o.queue, []cache.InformerSynced{o.synced}, o.Sync, func(err error) {
		o.cfg.Log.Info("overlay sync failed", "node", o.cfg.Node, "err", err)
	})
}

// Sync applies the desired state computed from the current Nodes.
func (o *Overlay) Sync() error {
	nodes, err := o.nodes.List(labels.Everything())
	if err != nil {
		return err
	}
	remotes := RemoteNodes(nodes, o.cfg.Node, o.cfg.Backend)
	return Do(o.cfg.NodeNetns, func() error { return o.apply(remotes) })
}

func (o *Overlay) apply(remotes []RemoteNode) error {
	under, err := netlink.LinkByName(o.cfg.Underlay)
	if err != nil {
		return fmt.Errorf("look up %s: %w", o.cfg.Underlay, err)
	}
	var vx netlink.Link
	if o.cfg.Backend == BackendVXLAN {
		if vx, err = o.ensureVXLAN(); err != nil {
			return err
		}
	} else if err := deleteLink(VXLANDevice); err != nil {
		return err
	}
	// Desired routes, by destination.
	want := map[string]netlink.Route{}
	for _, r := range remotes {
		if o.cfg.Backend == BackendVXLAN {
			want[r.PodCIDR.String()] = netlink.Route{LinkIndex: vx.Attrs().Index, Dst: r.PodCIDR, Gw: r.PodCIDR.IP, Flags: int(netlink.FLAG_ONLINK)}
		} else {
			want[r.PodCIDR.String()] = netlink.Route{LinkIndex: under.Attrs().Index, Dst: r.PodCIDR, Gw: r.PublicIP}
		}
	}
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("list routes: %w", err)
	}
	for _, rt := range routes {
		if rt.Dst == nil || rt.Table != unix.RT_TABLE_MAIN || !o.cfg.ClusterCIDR.Contains(rt.Dst.IP) || rt.Dst.String() == o.cfg.PodCIDR.String() {
			continue
		}
		if w, ok := want[rt.Dst.String()]; ok && w.LinkIndex == rt.LinkIndex && w.Gw.Equal(rt.Gw) && (w.Flags&int(netlink.FLAG_ONLINK)) == (rt.Flags&int(netlink.FLAG_ONLINK)) {
			delete(want, rt.Dst.String())
			continue
		}
		if _, ok := want[rt.Dst.String()]; ok {
			continue // replaced below
		}
		if err := netlink.RouteDel(&rt); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("remove stale route %s: %w", rt.Dst, err)
		}
	}
	if vx != nil {
		if err := o.syncNeighbours(vx, remotes); err != nil {
			return err
		}
	}
	for _, rt := range want {
		if err := netlink.RouteReplace(&rt); err != nil {
			return fmt.Errorf("route %s via %s: %w", rt.Dst, rt.Gw, err)
		}
	}
	return nil
}

// syncNeighbours keeps one permanent ARP entry (remote VTEP address → its
// MAC) and one FDB entry (MAC → remote node IP) per remote node.
func (o *Overlay) syncNeighbours(vx netlink.Link, remotes []RemoteNode) error {
	idx := vx.Attrs().Index
	arp := map[string]net.HardwareAddr{}
	fdb := map[string]net.IP{}
	for _, r := range remotes {
		arp[r.PodCIDR.IP.String()] = r.VtepMAC
		fdb[r.VtepMAC.String()] = r.PublicIP
	}
	have, err := netlink.NeighList(idx, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("list ARP entries of %s: %w", VXLANDevice, err)
	}
	for _, n := range have {
		if mac, ok := arp[n.IP.String()]; ok && bytes.Equal(mac, n.HardwareAddr) && n.State == netlink.NUD_PERMANENT {
			delete(arp, n.IP.String())
			continue
		}
		if err := netlink.NeighDel(&n); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("remove ARP entry %s: %w", n.IP, err)
		}
	}
	for ip, mac := range arp {
		n := &netlink.Neigh{LinkIndex: idx, Family: netlink.FAMILY_V4, State: netlink.NUD_PERMANENT, Type: unix.RTN_UNICAST, IP: net.ParseIP(ip), HardwareAddr: mac}
		if err := netlink.NeighSet(n); err != nil {
			return fmt.Errorf("ARP entry %s → %s: %w", ip, mac, err)
		}
	}
	have, err = netlink.NeighList(idx, unix.AF_BRIDGE)
	if err != nil {
		return fmt.Errorf("list FDB entries of %s: %w", VXLANDevice, err)
	}
	for _, n := range have {
		if n.Flags&netlink.NTF_SELF == 0 || n.IP == nil {
			continue // the kernel's own entries (the device's MAC)
		}
		if dst, ok := fdb[n.HardwareAddr.String()]; ok && dst.Equal(n.IP) {
			delete(fdb, n.HardwareAddr.String())
			continue
		}
		if err := netlink.NeighDel(&n); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("remove FDB entry %s: %w", n.HardwareAddr, err)
		}
	}
	for m, dst := range fdb {
		mac, _ := net.ParseMAC(m)
		n := &netlink.Neigh{LinkIndex: idx, Family: unix.AF_BRIDGE, State: netlink.NUD_PERMANENT, Flags: netlink.NTF_SELF, IP: dst, HardwareAddr: mac}
		if err := netlink.NeighSet(n); err != nil {
			return fmt.Errorf("FDB entry %s → %s: %w", mac, dst, err)
		}
	}
	return nil
}

// ensureVXLAN makes the node's VXLAN device (VNI 1, port 8472, learning
// off, on the underlay link, MTU 50 below it) with the node's VTEP MAC and
// the network address of its pod range as a /32, like flannel.1.
func (o *Overlay) ensureVXLAN() (netlink.Link, error) {
	under, err := netlink.LinkByName(o.cfg.Underlay)
	if err != nil {
		return nil, fmt.Errorf("look up %s: %w", o.cfg.Underlay, err)
	}
	mtu := under.Attrs().MTU - VXLANOverhead
	link, err := netlink.LinkByName(VXLANDevice)
	if err == nil {
		vx, ok := link.(*netlink.Vxlan)
		if !ok || vx.VxlanId != VXLANID || vx.Port != VXLANPort || !vx.SrcAddr.Equal(o.cfg.PublicIP) || vx.VtepDevIndex != under.Attrs().Index || vx.Learning {
			if err := netlink.LinkDel(link); err != nil {
				return nil, fmt.Errorf("replace %s: %w", VXLANDevice, err)
			}
			link = nil
		}
	} else if _, ok := err.(netlink.LinkNotFoundError); !ok {
		return nil, fmt.Errorf("look up %s: %w", VXLANDevice, err)
	} else {
		link = nil
	}
	if link == nil {
		la := netlink.NewLinkAttrs()
		la.Name, la.MTU, la.HardwareAddr = VXLANDevice, mtu, o.cfg.VtepMAC
		vx := &netlink.Vxlan{LinkAttrs: la, VxlanId: VXLANID, VtepDevIndex: under.Attrs().Index, SrcAddr: o.cfg.PublicIP, Port: VXLANPort, Learning: false}
		if err := netlink.LinkAdd(vx); err != nil && !os.IsExist(err) {
			return nil, fmt.Errorf("create %s: %w", VXLANDevice, err)
		}
		if link, err = netlink.LinkByName(VXLANDevice); err != nil {
			return nil, fmt.Errorf("look up %s: %w", VXLANDevice, err)
		}
	}
	if o.cfg.VtepMAC != nil && !bytes.Equal(link.Attrs().HardwareAddr, o.cfg.VtepMAC) {
		if err := netlink.LinkSetHardwareAddr(link, o.cfg.VtepMAC); err != nil {
			return nil, fmt.Errorf("set %s address: %w", VXLANDevice, err)
		}
	}
	if link.Attrs().MTU != mtu {
		if err := netlink.LinkSetMTU(link, mtu); err != nil {
			return nil, fmt.Errorf("set %s MTU: %w", VXLANDevice, err)
		}
	}
	if err := ensureAddr(link, &net.IPNet{IP: o.cfg.PodCIDR.IP.To4(), Mask: net.CIDRMask(32, 32)}); err != nil {
		return nil, fmt.Errorf("%s: %w", VXLANDevice, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("set %s up: %w", VXLANDevice, err)
	}
	return link, nil
}
