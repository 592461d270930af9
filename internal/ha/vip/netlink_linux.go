package vip

import (
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
	if a.Prefix.Addr().Is6() {
		// No duplicate address detection: the address is ours by the
		// election, and DAD would keep it unusable for a second or more.
		ad.Flags = unix.IFA_F_NODAD
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

// Announce tells the link's neighbours that the address is here now rather
// than when their cache entries expire: a gratuitous ARP request and reply
// for IPv4, an unsolicited neighbour advertisement with the override flag
// to all nodes for IPv6 (RFC 4861 §7.2.6).
func (n *Netlink) Announce(a Address) error {
	l, err := n.h.LinkByName(a.Link)
	if err != nil {
		return fmt.Errorf("interface %s: %w", a.Link, err)
	}
	mac := l.Attrs().HardwareAddr
	if len(mac) != 6 {
		return fmt.Errorf("interface %s has no Ethernet address", a.Link)
	}
	ip := a.Prefix.Addr()
	var frames [][]byte
	dst, proto := [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, uint16(unix.ETH_P_ARP)
	if ip.Is4() {
		frames = [][]byte{garp(mac, ip.As4(), 1), garp(mac, ip.As4(), 2)} // hosts honour one or the other
	} else {
		frames = [][]byte{unsolicitedNA(mac, ip.As16())}
		dst, proto = [8]byte{0x33, 0x33, 0, 0, 0, 1}, unix.ETH_P_IPV6
	}
	fd, err := n.packetSocket()
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	to := &unix.SockaddrLinklayer{Protocol: htons(proto), Ifindex: l.Attrs().Index, Halen: 6, Addr: dst}
	for _, f := range frames {
		if err := unix.Sendto(fd, f, 0, to); err != nil {
			return fmt.Errorf("vip: announcing %s on %s: %w", ip, a.Link, err)
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

func htons(v uint16) uint16 { return v<<8 | v>>8 }
