//go:build linux

package network

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// inLab runs fn with the calling thread in a fresh network namespace, so
// the test never touches the host's network.
func inLab(t *testing.T, fn func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces)")
	}
	path := filepath.Join(t.TempDir(), "lab")
	if err := createNetns(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeNetns(path) })
	if err := Do(path, func() error { fn(); return nil }); err != nil {
		t.Fatal(err)
	}
}

func testProfile(t *testing.T) ProfileNet {
	name := fmt.Sprintf("nkt%d", os.Getpid()%100000)
	// The nodes' netns bind mounts go away with the nodes; their
	// directory under RunDir is the profile's, which these tests never
	// delete as a whole.
	t.Cleanup(func() { os.RemoveAll(filepath.Join(RunDir, name)) })
	_, subnet, _ := net.ParseCIDR("192.168.49.0/24")
	return ProfileNet{Profile: name, Bridge: BridgeName(name), Subnet: subnet, Gateway: net.IPv4(192, 168, 49, 1)}
}

func TestProfileAndNodes(t *testing.T) {
	inLab(t, func() {
		p := testProfile(t)
		if err := EnsureProfile(p); err != nil {
			t.Fatal(err)
		}
		nodes := []Node{
			{Profile: p.Profile, Name: p.Profile, Index: 1, IP: NodeIP(p, 1), Net: p},
			{Profile: p.Profile, Name: p.Profile + "-m02", Index: 2, IP: NodeIP(p, 2), Net: p},
		}
		for _, n := range nodes {
			if err := EnsureNode(n); err != nil {
				t.Fatal(err)
			}
			// Declarative: a second run is a no-op.
			if err := EnsureNode(n); err != nil {
				t.Fatalf("second EnsureNode: %v", err)
			}
		}
		if err := EnsureProfile(p); err != nil {
			t.Fatalf("second EnsureProfile: %v", err)
		}
		if got := NodeIP(p, 2).String(); got != "192.168.49.3" {
			t.Errorf("NodeIP(2) = %s", got)
		}
		// node 2 serves, node 1 dials it; the host (lab) reaches node 1 too.
		l, err := ListenTCP(NetnsPath(p.Profile, nodes[1].Name), "192.168.49.3:7000")
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
				c.Write([]byte("hello from node 2"))
				c.Close()
			}
		}()
		for _, from := range []string{NetnsPath(p.Profile, nodes[0].Name), ""} {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			c, err := DialContext(ctx, from, "tcp", "192.168.49.3:7000")
			cancel()
			if err != nil {
				t.Fatalf("dial node 2 from %q: %v", from, err)
			}
			b, _ := io.ReadAll(c)
			c.Close()
			if string(b) != "hello from node 2" {
				t.Errorf("read %q", b)
			}
		}
		// A taken subnet is skipped.
		sn, err := PickSubnet(nil)
		if err != nil || sn.String() != "192.168.58.0/24" {
			t.Errorf("PickSubnet with 192.168.49.0/24 on the bridge = %v, %v; want 192.168.58.0/24", sn, err)
		}
		_, other, _ := net.ParseCIDR("192.168.58.0/24")
		if sn, _ := PickSubnet([]*net.IPNet{other}); sn.String() != "192.168.67.0/24" {
			t.Errorf("PickSubnet with 58 taken = %v, want 192.168.67.0/24", sn)
		}
		left, _ := Residue(p.Profile)
		if len(left) == 0 {
			t.Errorf("Residue of a running profile is empty")
		}
		for _, n := range nodes {
			if err := DeleteNode(n); err != nil {
				t.Fatal(err)
			}
			if err := DeleteNode(n); err != nil {
				t.Fatalf("second DeleteNode: %v", err)
			}
		}
		if err := DeleteProfile(p); err != nil {
			t.Fatal(err)
		}
		os.RemoveAll(filepath.Join(RunDir, p.Profile))
		left, err = Residue(p.Profile)
		if err != nil || len(left) != 0 {
			t.Errorf("Residue after delete = %v, %v", left, err)
		}
	})
}

func TestBridgeNameFitsIFNAMSIZ(t *testing.T) {
	for _, p := range []string{"nanokube", "a", "a-very-long-profile-name-indeed"} {
		if n := BridgeName(p); len(n) > 15 {
			t.Errorf("BridgeName(%q) = %q is longer than 15", p, n)
		}
	}
	if BridgeName("a-very-long-profile-name-1") == BridgeName("a-very-long-profile-name-2") {
		t.Errorf("long profile names collide")
	}
	if n := vethName("nanokube", "nanokube-m02"); len(n) > 15 {
		t.Errorf("vethName too long: %q", n)
	}
}
