package vip

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv6"
)

var testMAC = net.HardwareAddr{0x02, 0x00, 0x5e, 0x10, 0x20, 0x30}

func TestGratuitousARP(t *testing.T) {
	ip := netip.MustParseAddr("192.0.2.10").As4()
	for _, op := range []uint16{1, 2} {
		b := garp(testMAC, ip, op)
		if len(b) != 42 || !bytes.Equal(b[0:6], bytes.Repeat([]byte{0xff}, 6)) || !bytes.Equal(b[6:12], testMAC) {
			t.Fatalf("op %d: Ethernet header % x", op, b[:14])
		}
		if binary.BigEndian.Uint16(b[12:]) != 0x0806 || binary.BigEndian.Uint16(b[20:]) != op {
			t.Fatalf("op %d: type or op % x", op, b)
		}
		// Sender and target protocol address are both the floating address.
		if !bytes.Equal(b[22:28], testMAC) || !bytes.Equal(b[28:32], ip[:]) || !bytes.Equal(b[38:42], ip[:]) {
			t.Fatalf("op %d: ARP body % x", op, b[14:])
		}
	}
}

func TestUnsolicitedNA(t *testing.T) {
	ip := netip.MustParseAddr("2001:db8::10").As16()
	b := unsolicitedNA(testMAC, ip)
	if !bytes.Equal(b[0:6], []byte{0x33, 0x33, 0, 0, 0, 1}) || binary.BigEndian.Uint16(b[12:]) != 0x86dd {
		t.Fatalf("Ethernet header % x", b[:14])
	}
	h, err := ipv6.ParseHeader(b[14:])
	if err != nil {
		t.Fatal(err)
	}
	if h.NextHeader != 58 || h.HopLimit != 255 || !h.Dst.Equal(net.ParseIP("ff02::1")) ||
		!h.Src.Equal(net.IP(ip[:])) || h.PayloadLen != len(b)-54 {
		t.Fatalf("IPv6 header %+v", h)
	}
	m, err := icmp.ParseMessage(58, b[54:])
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != ipv6.ICMPTypeNeighborAdvertisement || m.Code != 0 {
		t.Fatalf("ICMPv6 type %v code %d", m.Type, m.Code)
	}
	body := b[54:]
	if body[4] != 0x20 || !bytes.Equal(body[8:24], ip[:]) || body[24] != 2 || body[25] != 1 || !bytes.Equal(body[26:32], testMAC) {
		t.Fatalf("advertisement: flags, target or option wrong: % x", body)
	}
	// The same message marshalled by x/net/icmp, which computes the
	// checksum over the pseudo-header itself.
	ref := icmp.Message{Type: ipv6.ICMPTypeNeighborAdvertisement, Body: &icmp.RawBody{Data: body[4:]}}
	want, err := ref.Marshal(icmp.IPv6PseudoHeader(net.IP(ip[:]), net.ParseIP("ff02::1")))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(body, want) {
		t.Fatalf("advertisement\n% x\nx/net/icmp makes\n% x", body, want)
	}
}
