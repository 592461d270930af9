package vip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"runtime"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Netlink configures addresses with rtnetlink in a network namespace (the
// unit's own when NewNetlink gets ""), and announces them with gratuitous
// ARP from a packet socket made in that namespace.
type Netlink struct {
	ns string
	h  *netlink.Handle
}

// NewNetlink opens rtnetlink in the named namespace ("" = the current one).
func NewNetlink(ns string) (*Netlink, error) {
	if ns == "" {
		h, err := netlink.NewHandle()
		if err != nil {
			return nil, fmt.Errorf("vip: rtnetlink: %w", err)
		}
		return &Netlink{h: h}, nil
	}
	nh, err := netns.GetFromName(ns)
	if err != nil {
		return nil, fmt.Errorf("vip: namespace %s: %w", ns, err)
	}
	defer nh.Close()
	h, err := netlink.NewHandleAt(nh)
	if err != nil {
		return nil, fmt.Errorf("vip: rtnetlink in %s: %w", ns, err)
	}
	return &Netlink{ns: ns, h: h}, nil
}

// Close releases the netlink socket.
func (n *Netlink) Close() { n.h.Close() }

func (n *Netlink) addr(a Address, lifetime time.Duration) (netlink.Link, *netlink.Addr, error) {
	l, err := n.h.LinkByName(a.Link)
	if err != nil {
		return nil, nil, fmt.Errorf("interface %s: %w", a.Link, err)
	}
	ad := &netlink.Addr{IPNet: &net.IPNet{IP: a.Prefix.Addr().AsSlice(),
		Mask: net.CIDRMask(a.Prefix.Bits(), a.Prefix.Addr().BitLen())}}
	if lifetime > 0 {
		s := int((lifetime + time.Second - 1) / time.Second)
		ad.ValidLft, ad.PreferedLft = s, s
	}
	return l, ad, nil
}

// Add adds the address, or renews its lifetime when it is there.
func (n *Netlink) Add(a Address, lifetime time.Duration) error {
	l, ad, err := n.addr(a, lifetime)
	if err != nil {
		return err
	}
	return n.h.AddrReplace(l, ad)
}

// Remove deletes the address; no error when it is not there.
func (n *Netlink) Remove(a Address) error {
	l, ad, err := n.addr(a, 0)
	if err != nil {
		return err
	}
	if err := n.h.AddrDel(l, ad); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
		return err
	}
	return nil
}

// Announce sends a gratuitous ARP request and reply for an IPv4 address,
// so that the link's neighbours point the address at this interface now
// rather than when their cache entries expire. IPv6 (an unsolicited
// neighbour advertisement) is not sent yet: see docs/ha.md.
func (n *Netlink) Announce(a Address) error {
	ip := a.Prefix.Addr()
	if !ip.Is4() {
		return nil
	}
	l, err := n.h.LinkByName(a.Link)
	if err != nil {
		return fmt.Errorf("interface %s: %w", a.Link, err)
	}
	mac := l.Attrs().HardwareAddr
	if len(mac) != 6 {
		return fmt.Errorf("interface %s has no Ethernet address", a.Link)
	}
	fd, err := n.packetSocket()
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	to := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: l.Attrs().Index, Halen: 6,
		Addr: [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
	for _, op := range []uint16{1, 2} { // request, reply: hosts honour one or the other
		if err := unix.Sendto(fd, garp(mac, ip.As4(), op), 0, to); err != nil {
			return fmt.Errorf("vip: gratuitous ARP on %s: %w", a.Link, err)
		}
	}
	return nil
}

// packetSocket opens an AF_PACKET socket in the handle's namespace; a
// socket stays in the namespace it was made in.
func (n *Netlink) packetSocket() (int, error) {
	open := func() (int, error) {
		return unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ARP)))
	}
	if n.ns == "" {
		return open()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return -1, err
	}
	defer orig.Close()
	target, err := netns.GetFromName(n.ns)
	if err != nil {
		return -1, err
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		return -1, err
	}
	fd, err := open()
	if err2 := netns.Set(orig); err2 != nil {
		// The thread is in the wrong namespace: keep it locked so that
		// the runtime ends it with the goroutine.
		runtime.LockOSThread()
		if err == nil {
			unix.Close(fd)
		}
		return -1, err2
	}
	return fd, err
}

// garp is an Ethernet frame with an ARP packet announcing ip at mac.
func garp(mac net.HardwareAddr, ip [4]byte, op uint16) []byte {
	b := make([]byte, 42)
	copy(b[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(b[6:12], mac)
	binary.BigEndian.PutUint16(b[12:], unix.ETH_P_ARP)
	binary.BigEndian.PutUint16(b[14:], 1)      // Ethernet
	binary.BigEndian.PutUint16(b[16:], 0x0800) // IPv4
	b[18], b[19] = 6, 4
	binary.BigEndian.PutUint16(b[20:], op)
	copy(b[22:28], mac)
	copy(b[28:32], ip[:])
	if op == 2 {
		copy(b[32:38], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	}
	copy(b[38:42], ip[:])
	return b
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
