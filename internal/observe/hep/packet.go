// Package hep sends the unit's SIP traces to HEP v3 collectors (Homer,
// sngrep, heplify-server): the same cleartext messages of both legs that the
// call-flow view shows, correlated by the unit's call id.
package hep

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// HEP v3 chunk types (generic vendor 0), as the sipcapture HEP-EEP
// specification numbers them.
const (
	chunkFamily     = 1
	chunkProto      = 2
	chunkSrcIPv4    = 3
	chunkDstIPv4    = 4
	chunkSrcIPv6    = 5
	chunkDstIPv6    = 6
	chunkSrcPort    = 7
	chunkDstPort    = 8
	chunkTimeSec    = 9
	chunkTimeUsec   = 10
	chunkProtoType  = 11
	chunkCaptureID  = 12
	chunkAuthKey    = 14
	chunkPayload    = 15
	chunkCorrelate  = 17
	chunkNodeName   = 19
	chunkHeaderSize = 6
	headerSize      = 6
	// MaxPacket is the largest HEP packet: its length field has 16 bits.
	MaxPacket = 0xffff
)

// Payload types (chunk 11).
const (
	TypeSIP  = 1
	TypeRTCP = 5 // RTCP report as JSON
)

// IP protocols (chunk 2). TLS is sent as TCP: the payload is already clear.
const (
	ProtoTCP = 6
	ProtoUDP = 17
)

// Packet is one captured message in HEP terms.
type Packet struct {
	Src, Dst      netip.AddrPort
	Proto         uint8 // ProtoUDP or ProtoTCP
	Time          time.Time
	Type          uint8 // TypeSIP, TypeRTCP
	NodeID        uint32
	NodeName      string // "" = no chunk
	AuthKey       string // "" = no chunk
	CorrelationID string // "" = no chunk
	Payload       []byte
}

// ErrTooLarge is returned for a message that does not fit in one packet.
var ErrTooLarge = errors.New("hep: message larger than a HEP packet")

// Append encodes p after b.
func (p *Packet) Append(b []byte) ([]byte, error) {
	src, dst := p.Src.Addr().Unmap(), p.Dst.Addr().Unmap()
	v6 := src.Is6() || dst.Is6()
	start := len(b)
	b = append(b, "HEP3\x00\x00"...)
	family := byte(2) // AF_INET
	if v6 {
		family = 10 // AF_INET6
	}
	b = appendChunk(b, chunkFamily, family)
	b = appendChunk(b, chunkProto, p.Proto)
	if v6 {
		s, d := src.As16(), dst.As16()
		b = appendChunk(b, chunkSrcIPv6, s[:]...)
		b = appendChunk(b, chunkDstIPv6, d[:]...)
	} else {
		s, d := as4(src), as4(dst)
		b = appendChunk(b, chunkSrcIPv4, s[:]...)
		b = appendChunk(b, chunkDstIPv4, d[:]...)
	}
	b = appendChunk(b, chunkSrcPort, byte(p.Src.Port()>>8), byte(p.Src.Port()))
	b = appendChunk(b, chunkDstPort, byte(p.Dst.Port()>>8), byte(p.Dst.Port()))
	b = appendChunk(b, chunkTimeSec, binary.BigEndian.AppendUint32(nil, uint32(p.Time.Unix()))...)
	b = appendChunk(b, chunkTimeUsec, binary.BigEndian.AppendUint32(nil, uint32(p.Time.Nanosecond()/1000))...)
	b = appendChunk(b, chunkProtoType, p.Type)
	b = appendChunk(b, chunkCaptureID, binary.BigEndian.AppendUint32(nil, p.NodeID)...)
	for _, s := range []struct {
		typ uint16
		v   string
	}{{chunkAuthKey, p.AuthKey}, {chunkCorrelate, p.CorrelationID}, {chunkNodeName, p.NodeName}} {
		if s.v != "" {
			b = appendChunk(b, s.typ, []byte(s.v)...)
		}
	}
	if len(b)-start+chunkHeaderSize+len(p.Payload) > MaxPacket {
		return b[:start], ErrTooLarge
	}
	b = appendChunk(b, chunkPayload, p.Payload...)
	binary.BigEndian.PutUint16(b[start+4:], uint16(len(b)-start))
	return b, nil
}

// as4 returns the IPv4 bytes of a (0.0.0.0 when a is not IPv4, e.g. unset).
func as4(a netip.Addr) [4]byte {
	if a.Is4() {
		return a.As4()
	}
	return [4]byte{}
}

func appendChunk(b []byte, typ uint16, v ...byte) []byte {
	b = binary.BigEndian.AppendUint16(b, 0) // generic vendor
	b = binary.BigEndian.AppendUint16(b, typ)
	b = binary.BigEndian.AppendUint16(b, uint16(chunkHeaderSize+len(v)))
	return append(b, v...)
}

// Decode reads one HEP v3 packet from the start of b and returns it with
// its length. Chunks of other vendors or unknown types are skipped. The
// payload is a copy.
func Decode(b []byte) (Packet, int, error) {
	var p Packet
	if len(b) < headerSize || string(b[:4]) != "HEP3" {
		return p, 0, errors.New("hep: not a HEP v3 packet")
	}
	total := int(binary.BigEndian.Uint16(b[4:]))
	if total < headerSize || total > len(b) {
		return p, 0, fmt.Errorf("hep: packet length %d, %d bytes at hand", total, len(b))
	}
	var src, dst netip.Addr
	var sport, dport uint16
	var sec, usec uint32
	for rest := b[headerSize:total]; len(rest) > 0; {
		if len(rest) < chunkHeaderSize {
			return p, 0, errors.New("hep: truncated chunk header")
		}
		vendor, typ := binary.BigEndian.Uint16(rest), binary.BigEndian.Uint16(rest[2:])
		n := int(binary.BigEndian.Uint16(rest[4:]))
		if n < chunkHeaderSize || n > len(rest) {
			return p, 0, fmt.Errorf("hep: chunk %d length %d, %d bytes left", typ, n, len(rest))
		}
		v := rest[chunkHeaderSize:n]
		rest = rest[n:]
		if vendor != 0 {
			continue
		}
		if err := p.setChunk(typ, v, &src, &dst, &sport, &dport, &sec, &usec); err != nil {
			return p, 0, err
		}
	}
	p.Src, p.Dst = netip.AddrPortFrom(src, sport), netip.AddrPortFrom(dst, dport)
	p.Time = time.Unix(int64(sec), int64(usec)*1000)
	return p, total, nil
}

// fixedSize is the length of the chunks that have one.
var fixedSize = map[uint16]int{chunkFamily: 1, chunkProto: 1, chunkSrcIPv4: 4, chunkDstIPv4: 4, chunkSrcIPv6: 16,
	chunkDstIPv6: 16, chunkSrcPort: 2, chunkDstPort: 2, chunkTimeSec: 4, chunkTimeUsec: 4, chunkProtoType: 1, chunkCaptureID: 4}

func (p *Packet) setChunk(typ uint16, v []byte, src, dst *netip.Addr, sport, dport *uint16, sec, usec *uint32) error {
	if n, fixed := fixedSize[typ]; fixed && len(v) != n {
		return fmt.Errorf("hep: chunk %d has %d bytes, want %d", typ, len(v), n)
	}
	switch typ {
	case chunkProto:
		p.Proto = v[0]
	case chunkSrcIPv4, chunkSrcIPv6:
		*src, _ = netip.AddrFromSlice(v)
	case chunkDstIPv4, chunkDstIPv6:
		*dst, _ = netip.AddrFromSlice(v)
	case chunkSrcPort:
		*sport = binary.BigEndian.Uint16(v)
	case chunkDstPort:
		*dport = binary.BigEndian.Uint16(v)
	case chunkTimeSec:
		*sec = binary.BigEndian.Uint32(v)
	case chunkTimeUsec:
		*usec = binary.BigEndian.Uint32(v)
	case chunkProtoType:
		p.Type = v[0]
	case chunkCaptureID:
		p.NodeID = binary.BigEndian.Uint32(v)
	case chunkAuthKey:
		p.AuthKey = string(v)
	case chunkCorrelate:
		p.CorrelationID = string(v)
	case chunkNodeName:
		p.NodeName = string(v)
	case chunkPayload:
		p.Payload = append([]byte(nil), v...)
	}
	return nil
}
