//go:build linux

package network

import (
	"context"
	"io"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestOverlayVXLAN: two nodes on a profile bridge reach each other's pod
// ranges through their VXLAN devices; a second apply changes nothing and
// an apply without remote nodes removes every entry.
func TestOverlayVXLAN(t *testing.T) {
	inLab(t, func() {
		p := testProfile(t)
		if err := EnsureProfile(p); err != nil {
			t.Fatal(err)
		}
		_, cluster, _ := net.ParseCIDR("10.244.0.0/16")
		var overlays []*Overlay
		var remotes []RemoteNode
		for i := 1; i <= 2; i++ {
			name := p.Profile + "-m0" + string(rune('0'+i))
			n := Node{Profile: p.Profile, Name: name, Index: i, IP: NodeIP(p, i), Net: p}
			if err := EnsureNode(n); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { DeleteNode(n) })
			cidr := &net.IPNet{IP: net.IPv4(10, 244, byte(i-1), 0).To4(), Mask: net.CIDRMask(24, 32)}
			o := &Overlay{cfg: OverlayConfig{Backend: BackendVXLAN, Node: name, NodeNetns: NetnsPath(p.Profile, name), Underlay: "eth0",
				PublicIP: n.IP.To4(), PodCIDR: cidr, ClusterCIDR: cluster, VtepMAC: VtepMAC(p.Profile, name)}}
			if err := o.Ensure(); err != nil {
				t.Fatal(err)
			}
			overlays = append(overlays, o)
			remotes = append(remotes, RemoteNode{Name: name, PodCIDR: cidr, PublicIP: n.IP.To4(), VtepMAC: o.cfg.VtepMAC})
			// A "pod" address of the node's range on loopback.
			err := Do(o.cfg.NodeNetns, func() error {
				lo, err := netlink.LinkByName("lo")
				if err != nil {
					return err
				}
				return netlink.AddrAdd(lo, &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(10, 244, byte(i-1), 10), Mask: net.CIDRMask(32, 32)}})
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		apply := func(o *Overlay, rs []RemoteNode) {
			t.Helper()
			if err := Do(o.cfg.NodeNetns, func() error { return o.apply(rs) }); err != nil {
				t.Fatal(err)
			}
		}
		for round := 0; round < 2; round++ {
			apply(overlays[0], remotes[1:])
			apply(overlays[1], remotes[:1])
		}
		show := func(ns string, args ...string) string {
			out, err := exec.Command("nsenter", append([]string{"--net=" + ns, "--"}, args...)...).CombinedOutput()
			if err != nil {
				t.Fatalf("%v: %v: %s", args, err, out)
			}
			return string(out)
		}
		ns1 := overlays[0].cfg.NodeNetns
		if out := show(ns1, "ip", "-d", "link", "show", VXLANDevice); !strings.Contains(out, "vxlan id 1 ") || !strings.Contains(out, "dstport 8472") ||
			!strings.Contains(out, "mtu 1450") || !strings.Contains(out, "nolearning") || !strings.Contains(out, VtepMAC(p.Profile, overlays[0].cfg.Node).String()) {
			t.Errorf("vxlan device:\n%s", out)
		}
		if out := show(ns1, "ip", "route", "show", "10.244.1.0/24"); !strings.Contains(out, "10.244.1.0/24 via 10.244.1.0 dev vxlan.1 onlink") {
			t.Errorf("route: %q", out)
		}
		if out := show(ns1, "bridge", "fdb", "show", "dev", VXLANDevice); strings.Count(out, "dst ") != 1 || !strings.Contains(out, remotes[1].VtepMAC.String()+" dst 192.168.49.3") {
			t.Errorf("fdb: %q", out)
		}
		if out := show(ns1, "ip", "neigh", "show", "dev", VXLANDevice); strings.TrimSpace(out) != "10.244.1.0 lladdr "+remotes[1].VtepMAC.String()+" PERMANENT" {
			t.Errorf("neigh: %q", out)
		}
		// Node 2's "pod" serves, node 1 dials it over the overlay.
		l, err := ListenTCP(overlays[1].cfg.NodeNetns, "10.244.1.10:7001")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Write([]byte(c.RemoteAddr().(*net.TCPAddr).IP.String()))
				c.Close()
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var c net.Conn
		err = Do(ns1, func() (err error) {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(10, 244, 0, 10)}}
			c, err = d.DialContext(ctx, "tcp", "10.244.1.10:7001")
			return err
		})
		if err != nil {
			t.Fatalf("dial node 2's pod over vxlan: %v", err)
		}
		b, _ := io.ReadAll(c)
		c.Close()
		if string(b) != "10.244.0.10" {
			t.Errorf("node 2 saw the client as %q, want 10.244.0.10 (no NAT)", b)
		}
		// The remote node went away: its entries go too.
		apply(overlays[0], nil)
		err = Do(ns1, func() error {
			vx, err := netlink.LinkByName(VXLANDevice)
			if err != nil {
				return err
			}
			neigh, _ := netlink.NeighList(vx.Attrs().Index, netlink.FAMILY_V4)
			fdb, _ := netlink.NeighList(vx.Attrs().Index, unix.AF_BRIDGE)
			routes, _ := netlink.RouteList(vx, netlink.FAMILY_V4)
			for _, f := range fdb {
				if f.IP != nil {
					t.Errorf("fdb entry left: %v", f)
				}
			}
			if len(neigh) != 0 {
				t.Errorf("neighbours left: %v", neigh)
			}
			for _, r := range routes {
				if r.Dst != nil && r.Dst.String() == "10.244.1.0/24" {
					t.Errorf("route left: %v", r)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		// host-gw replaces the device by a route via the node IP.
		overlays[0].cfg.Backend = BackendHostGW
		apply(overlays[0], []RemoteNode{{Name: "x", PodCIDR: remotes[1].PodCIDR, PublicIP: remotes[1].PublicIP}})
		if out := show(ns1, "ip", "route", "show", "10.244.1.0/24"); !strings.Contains(out, "10.244.1.0/24 via 192.168.49.3 dev eth0") {
			t.Errorf("host-gw route: %q", out)
		}
		if out := show(ns1, "ip", "link"); strings.Contains(out, VXLANDevice) {
			t.Errorf("host-gw kept the vxlan device:\n%s", out)
		}
		DeleteProfile(p)
	})
}
