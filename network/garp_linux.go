//go:build linux

package network

import (
	"encoding/binary"
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// gratuitousARP tells the segment of link ifindex (hardware address mac)
// that ip now lives here: a broadcast ARP request whose sender and
// target are both ip, as `arping -U` sends and as MetalLB's layer 2 mode
// does when an address moves to another node. Linux adds no such
// announcement when an IPv4 address is added, so without it the host
// would keep sending to the node that served the address before until
// its neighbour entry goes stale. Receivers with an entry for ip replace
// its hardware address (the kernel's is_garp override); receivers
// without one ignore it unless arp_accept is set.
func gratuitousARP(ifindex int, mac net.HardwareAddr, ip net.IP) error {
	ip4 := ip.To4()
	if ip4 == nil || len(mac) != 6 {
		return fmt.Errorf("gratuitous ARP for %s from %s: need an IPv4 address and an Ethernet address", ip, mac)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ARP)))
	if err != nil {
		return fmt.Errorf("gratuitous ARP for %s: open packet socket: %w", ip, err)
	}
	defer unix.Close(fd)
	to := &unix.SockaddrLinklayer{
		Protocol: htons(unix.ETH_P_ARP),
		Ifindex:  ifindex,
		Halen:    6,
		Addr:     [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
	}
	if err := unix.Sendto(fd, arpRequest(mac, ip4), 0, to); err != nil {
		return fmt.Errorf("gratuitous ARP for %s: send: %w", ip, err)
	}
	return nil
}

// arpRequest is the ARP payload (RFC 826, Ethernet/IPv4) of a gratuitous
// request: sender and target protocol address ip, target hardware
// address zero.
func arpRequest(mac net.HardwareAddr, ip4 net.IP) []byte {
	b := make([]byte, 28)
	binary.BigEndian.PutUint16(b[0:], 1)             // hardware type Ethernet
	binary.BigEndian.PutUint16(b[2:], unix.ETH_P_IP) // protocol type IPv4
	b[4], b[5] = 6, 4                                // address lengths
	binary.BigEndian.PutUint16(b[6:], 1)             // operation: request
	copy(b[8:14], mac)                               // sender hardware address
	copy(b[14:18], ip4)                              // sender protocol address
	copy(b[24:28], ip4)                              // target protocol address
	return b
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
