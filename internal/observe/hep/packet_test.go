package hep

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
	"time"
)

func TestPacketRoundTrip(t *testing.T) {
	at := time.Date(2026, 12, 7, 10, 0, 0, 123456000, time.UTC)
	for _, p := range []Packet{
		{Src: netip.MustParseAddrPort("127.0.0.1:5060"), Dst: netip.MustParseAddrPort("127.0.0.2:5061"), Proto: ProtoUDP,
			Time: at, Type: TypeSIP, NodeID: 2001, NodeName: "sbc-1", CorrelationID: "u-1", Payload: []byte("OPTIONS sip:x SIP/2.0\r\n\r\n")},
		{Src: netip.MustParseAddrPort("[2001:db8::1]:5061"), Dst: netip.MustParseAddrPort("[2001:db8::2]:40000"), Proto: ProtoTCP,
			Time: at, Type: TypeSIP, AuthKey: "secret", Payload: []byte("SIP/2.0 200 OK\r\n\r\n")},
		{Src: netip.MustParseAddrPort("[::ffff:10.0.0.1]:5060"), Dst: netip.MustParseAddrPort("10.0.0.2:5060"), Proto: ProtoUDP,
			Time: at, Type: TypeSIP, Payload: []byte("x")},
	} {
		b, err := p.Append([]byte("prefix"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte("prefixHEP3")) {
			t.Fatalf("encoding does not follow what was there: %q", b[:12])
		}
		b = b[len("prefix"):]
		if n := int(binary.BigEndian.Uint16(b[4:])); n != len(b) {
			t.Errorf("length field %d, packet %d bytes", n, len(b))
		}
		got, n, err := Decode(b)
		if err != nil || n != len(b) {
			t.Fatalf("decode: %v (%d of %d bytes)", err, n, len(b))
		}
		want := p
		want.Src = netip.AddrPortFrom(p.Src.Addr().Unmap(), p.Src.Port())
		if !got.Time.Equal(want.Time) || got.Src != want.Src || got.Dst != want.Dst || got.Proto != want.Proto ||
			got.Type != want.Type || got.NodeID != want.NodeID || got.NodeName != want.NodeName || got.AuthKey != want.AuthKey ||
			got.CorrelationID != want.CorrelationID || !bytes.Equal(got.Payload, want.Payload) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
		}
	}
}

// TestPacketBytes pins the wire layout of the chunks a collector reads.
func TestPacketBytes(t *testing.T) {
	p := Packet{Src: netip.MustParseAddrPort("1.2.3.4:5060"), Dst: netip.MustParseAddrPort("5.6.7.8:5061"), Proto: ProtoUDP,
		Time: time.Unix(0x01020304, 5000), Type: TypeSIP, NodeID: 9, Payload: []byte("AB")}
	b, err := p.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte("HEP3\x00\x65" +
		"\x00\x00\x00\x01\x00\x07\x02" + "\x00\x00\x00\x02\x00\x07\x11" +
		"\x00\x00\x00\x03\x00\x0a\x01\x02\x03\x04" + "\x00\x00\x00\x04\x00\x0a\x05\x06\x07\x08" +
		"\x00\x00\x00\x07\x00\x08\x13\xc4" + "\x00\x00\x00\x08\x00\x08\x13\xc5" +
		"\x00\x00\x00\x09\x00\x0a\x01\x02\x03\x04" + "\x00\x00\x00\x0a\x00\x0a\x00\x00\x00\x05" +
		"\x00\x00\x00\x0b\x00\x07\x01" + "\x00\x00\x00\x0c\x00\x0a\x00\x00\x00\x09" +
		"\x00\x00\x00\x0f\x00\x08AB")
	if !bytes.Equal(b, want) {
		t.Errorf("packet\n got %x\nwant %x", b, want)
	}
}

func TestPacketTooLarge(t *testing.T) {
	p := Packet{Src: netip.MustParseAddrPort("1.2.3.4:1"), Dst: netip.MustParseAddrPort("1.2.3.5:2"), Payload: make([]byte, MaxPacket)}
	b, err := p.Append([]byte("keep"))
	if !errors.Is(err, ErrTooLarge) || string(b) != "keep" {
		t.Fatalf("got %v, %q", err, b)
	}
}

func TestDecodeRefuses(t *testing.T) {
	good, _ := (&Packet{Src: netip.MustParseAddrPort("1.2.3.4:1"), Dst: netip.MustParseAddrPort("1.2.3.5:2"), Payload: []byte("x")}).Append(nil)
	for name, b := range map[string][]byte{
		"empty":          nil,
		"HEP2":           append([]byte("HEP2"), good[4:]...),
		"length short":   append(append([]byte(nil), good[:4]...), 0, 3),
		"length long":    append(append([]byte(nil), good[:4]...), append([]byte{0xff, 0xff}, good[6:]...)...),
		"chunk too long": append([]byte("HEP3\x00\x0c"), 0, 0, 0, 1, 0, 9),
		"chunk header":   []byte("HEP3\x00\x08\x00\x00"),
		"port size":      []byte("HEP3\x00\x0d\x00\x00\x00\x07\x00\x07\x01"),
	} {
		if _, _, err := Decode(b); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

func FuzzDecode(f *testing.F) {
	good, _ := (&Packet{Src: netip.MustParseAddrPort("1.2.3.4:1"), Dst: netip.MustParseAddrPort("[::1]:2"), NodeName: "n",
		CorrelationID: "c", Payload: []byte("INVITE")}).Append(nil)
	f.Add(good)
	f.Add([]byte("HEP3\x00\x06"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, n, err := Decode(b)
		if err != nil {
			return
		}
		if n < headerSize || n > len(b) {
			t.Fatalf("length %d of %d bytes", n, len(b))
		}
		// What decodes re-encodes to something that decodes the same way.
		p.Src = netip.AddrPortFrom(p.Src.Addr(), p.Src.Port())
		out, err := p.Append(nil)
		if err != nil {
			return
		}
		q, _, err := Decode(out)
		if err != nil || !bytes.Equal(q.Payload, p.Payload) || q.CorrelationID != p.CorrelationID || q.NodeID != p.NodeID {
			t.Fatalf("re-decode: %v", err)
		}
	})
}
