package vip

import (
	"encoding/binary"
	"net"
)

const (
	etherARP  = 0x0806
	etherIPv6 = 0x86dd
)

// garp is an Ethernet frame with an ARP packet (op 1 request, 2 reply)
// announcing ip at mac: sender and target address are both ip.
func garp(mac net.HardwareAddr, ip [4]byte, op uint16) []byte {
	b := make([]byte, 42)
	copy(b[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(b[6:12], mac)
	binary.BigEndian.PutUint16(b[12:], etherARP)
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

// allNodes is ff02::1.
var allNodes = [16]byte{0: 0xff, 1: 0x02, 15: 1}

// unsolicitedNA is an Ethernet frame with an IPv6 neighbour advertisement
// from ip to all nodes: override set, solicited not, and the target
// link-layer address option carrying mac.
func unsolicitedNA(mac net.HardwareAddr, ip [16]byte) []byte {
	const icmpLen = 24 + 8
	b := make([]byte, 14+40+icmpLen)
	copy(b[0:6], []byte{0x33, 0x33, 0, 0, 0, 1})
	copy(b[6:12], mac)
	binary.BigEndian.PutUint16(b[12:], etherIPv6)
	h := b[14:54]
	h[0] = 6 << 4
	binary.BigEndian.PutUint16(h[4:], icmpLen)
	h[6], h[7] = 58, 255 // ICMPv6; hop limit 255 or receivers drop it
	copy(h[8:24], ip[:])
	copy(h[24:40], allNodes[:])
	m := b[54:]
	m[0] = 136           // neighbour advertisement
	m[4] = 0x20          // override
	copy(m[8:24], ip[:]) // target
	m[24], m[25] = 2, 1  // target link-layer address, 8 bytes
	copy(m[26:32], mac)
	binary.BigEndian.PutUint16(m[2:], icmp6Checksum(ip, allNodes, m))
	return b
}

// icmp6Checksum is the ICMPv6 checksum over the pseudo-header and msg
// (whose checksum field is zero).
func icmp6Checksum(src, dst [16]byte, msg []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	add(src[:])
	add(dst[:])
	var l [8]byte
	binary.BigEndian.PutUint32(l[0:], uint32(len(msg)))
	l[7] = 58
	add(l[:])
	add(msg)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
