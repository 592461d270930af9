package observe

import (
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
)

// pcap export: classic libpcap format (not pcapng, which every tool reads
// too but is more to write) with LINKTYPE_RAW, so each record starts with
// an IPv4 or IPv6 header and both families can share one file.
//
// Every message is written as one UDP datagram between the real addresses
// and ports of its leg, whatever transport carried it: a TCP or TLS stream
// would need invented sequence numbers and handshakes, and as UDP Wireshark
// dissects the cleartext as SIP on any port.
const (
	pcapMagic      = 0xa1b2c3d4 // microsecond timestamps
	linktypeRaw    = 101
	pcapSnaplen    = 65535
	maxUDPPayload4 = 65535 - 20 - 8
	maxUDPPayload6 = 65535 - 8 // IPv6 payload length excludes its own header
)

// WritePCAP writes msgs (in the order given) as a pcap file.
func WritePCAP(w io.Writer, msgs []Message) error {
	var hdr [24]byte
	binary.LittleEndian.PutUint32(hdr[0:], pcapMagic)
	binary.LittleEndian.PutUint16(hdr[4:], 2)
	binary.LittleEndian.PutUint16(hdr[6:], 4)
	// thiszone and sigfigs stay 0
	binary.LittleEndian.PutUint32(hdr[16:], pcapSnaplen+60)
	binary.LittleEndian.PutUint32(hdr[20:], linktypeRaw)
	if _, err := w.Write(hdr[:]); err != nil {
		return fmt.Errorf("write pcap header: %w", err)
	}
	for i := range msgs {
		m := &msgs[i]
		src, dst := m.Remote, m.Local
		if m.Direction == "out" {
			src, dst = m.Local, m.Remote
		}
		pkt := udpPacket(src, dst, []byte(m.Text))
		var rec [16]byte
		us := m.Time.UnixMicro()
		binary.LittleEndian.PutUint32(rec[0:], uint32(us/1e6))
		binary.LittleEndian.PutUint32(rec[4:], uint32(us%1e6))
		binary.LittleEndian.PutUint32(rec[8:], uint32(len(pkt)))
		binary.LittleEndian.PutUint32(rec[12:], uint32(len(pkt)))
		if _, err := w.Write(rec[:]); err != nil {
			return fmt.Errorf("write pcap record: %w", err)
		}
		if _, err := w.Write(pkt); err != nil {
			return fmt.Errorf("write pcap record: %w", err)
		}
	}
	return nil
}

// udpPacket builds an IP+UDP packet. Addresses of different families (or
// missing ones) are made to fit: IPv4 when both can be IPv4, else IPv6 with
// IPv4-mapped addresses. Payloads too large for one datagram are cut.
func udpPacket(src, dst netip.AddrPort, payload []byte) []byte {
	sa, da := src.Addr().Unmap(), dst.Addr().Unmap()
	if !sa.IsValid() {
		sa = netip.IPv4Unspecified()
	}
	if !da.IsValid() {
		da = netip.IPv4Unspecified()
	}
	if sa.Is4() && da.Is4() {
		payload = payload[:min(len(payload), maxUDPPayload4)]
		return ipv4UDP(sa, da, src.Port(), dst.Port(), payload)
	}
	payload = payload[:min(len(payload), maxUDPPayload6)]
	return ipv6UDP(as16(sa), as16(da), src.Port(), dst.Port(), payload)
}

func as16(a netip.Addr) netip.Addr {
	if a.Is4() {
		return netip.AddrFrom16(a.As16())
	}
	return a
}

func ipv4UDP(src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	total := 20 + 8 + len(payload)
	p := make([]byte, total)
	p[0] = 0x45 // version 4, header length 5 words
	binary.BigEndian.PutUint16(p[2:], uint16(total))
	p[6] = 0x40 // don't fragment
	p[8] = 64   // TTL
	p[9] = 17   // UDP
	s, d := src.As4(), dst.As4()
	copy(p[12:16], s[:])
	copy(p[16:20], d[:])
	binary.BigEndian.PutUint16(p[10:], checksum(0, p[:20]))
	u := p[20:]
	putUDP(u, sport, dport, payload)
	// Pseudo-header: addresses, protocol, UDP length.
	sum := sumBytes(0, p[12:20])
	sum += 17 + uint32(len(u))
	binary.BigEndian.PutUint16(u[6:], udpChecksum(sum, u))
	return p
}

func ipv6UDP(src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	ulen := 8 + len(payload)
	p := make([]byte, 40+ulen)
	p[0] = 0x60 // version 6
	binary.BigEndian.PutUint16(p[4:], uint16(ulen))
	p[6] = 17 // next header: UDP
	p[7] = 64 // hop limit
	s, d := src.As16(), dst.As16()
	copy(p[8:24], s[:])
	copy(p[24:40], d[:])
	u := p[40:]
	putUDP(u, sport, dport, payload)
	sum := sumBytes(0, p[8:40])
	sum += 17 + uint32(ulen)
	binary.BigEndian.PutUint16(u[6:], udpChecksum(sum, u))
	return p
}

func putUDP(u []byte, sport, dport uint16, payload []byte) {
	binary.BigEndian.PutUint16(u[0:], sport)
	binary.BigEndian.PutUint16(u[2:], dport)
	binary.BigEndian.PutUint16(u[4:], uint16(len(u)))
	copy(u[8:], payload)
}

// udpChecksum finishes a UDP checksum; 0 is sent as 0xffff (RFC 768).
func udpChecksum(sum uint32, u []byte) uint16 {
	c := checksum(sum, u)
	if c == 0 {
		c = 0xffff
	}
	return c
}

// sumBytes adds b as big-endian 16-bit words (RFC 1071).
func sumBytes(sum uint32, b []byte) uint32 {
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	return sum
}

func checksum(sum uint32, b []byte) uint16 {
	sum = sumBytes(sum, b)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
