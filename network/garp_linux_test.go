//go:build linux

package network

import (
	"net"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// TestGratuitousARPMovesAddress: the host holds a neighbour entry for a
// LoadBalancer address that points at another node's hardware address;
// after the node that now serves the address announces it, the host's
// entry carries that node's address.
func TestGratuitousARPMovesAddress(t *testing.T) {
	inLab(t, func() {
		p := testProfile(t)
		if err := EnsureProfile(p); err != nil {
			t.Fatal(err)
		}
		n := Node{Profile: p.Profile, Name: p.Profile, Index: 1, IP: NodeIP(p, 1), Net: p}
		if err := EnsureNode(n); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { DeleteNode(n) })
		lb := net.IPv4(192, 168, 49, 200).To4()
		bridge, err := netlink.LinkByName(p.Bridge)
		if err != nil {
			t.Fatal(err)
		}
		before, _ := net.ParseMAC("02:00:00:00:00:99")
		if err := netlink.NeighSet(&netlink.Neigh{LinkIndex: bridge.Attrs().Index, Family: netlink.FAMILY_V4,
			State: netlink.NUD_STALE, IP: lb, HardwareAddr: before}); err != nil {
			t.Fatal(err)
		}
		var nodeMAC net.HardwareAddr
		err = Do(NetnsPath(p.Profile, n.Name), func() error {
			link, err := netlink.LinkByName("eth0")
			if err != nil {
				return err
			}
			nodeMAC = link.Attrs().HardwareAddr
			return gratuitousARP(link.Attrs().Index, nodeMAC, lb)
		})
		if err != nil {
			t.Fatal(err)
		}
		// The kernel handles the frame in softirq after the send returns.
		deadline := time.Now().Add(5 * time.Second)
		for {
			neighs, err := netlink.NeighList(bridge.Attrs().Index, netlink.FAMILY_V4)
			if err != nil {
				t.Fatal(err)
			}
			var got net.HardwareAddr
			for _, ne := range neighs {
				if ne.IP.Equal(lb) {
					got = ne.HardwareAddr
				}
			}
			if got.String() == nodeMAC.String() {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("host's entry for %s is %s, want the announcing node's %s", lb, got, nodeMAC)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

func TestARPRequestLayout(t *testing.T) {
	mac, _ := net.ParseMAC("02:42:c0:a8:31:02")
	b := arpRequest(mac, net.IPv4(192, 168, 49, 200).To4())
	want := []byte{0, 1, 8, 0, 6, 4, 0, 1, 0x02, 0x42, 0xc0, 0xa8, 0x31, 0x02, 192, 168, 49, 200, 0, 0, 0, 0, 0, 0, 192, 168, 49, 200}
	if string(b) != string(want) {
		t.Fatalf("arp payload\n got %v\nwant %v", b, want)
	}
}
