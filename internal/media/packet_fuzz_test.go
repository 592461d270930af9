package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/media/sdp"
)

// Modes of FuzzPacketPath (bits of its first argument).
const (
	fzFromOutside = 1 << iota // sent by the SRTP peer (else by the plain RTP PBX)
	fzRTCPPort                // to the leg's RTCP port (the RTP port when rtcp-mux)
	fzProtect                 // SRTP peer only: protected with its real key first
	fzMuxCall                 // the AEAD_AES_128_GCM call with rtcp-mux (else AES_CM_80, separate RTCP)
)

// fuzzSentinelSSRC marks the packets the harness sends after each input; a
// fuzzed packet never uses it (see FuzzPacketPath).
const fuzzSentinelSSRC = 0x5e471e1

var fuzzSentinelBytes = binary.BigEndian.AppendUint32(nil, fuzzSentinelSSRC)

// fuzzLab is one call through the relay: a PBX on plain RTP (side A) and an
// outside peer on SRTP (side B), with the contexts the harness protects with.
type fuzzLab struct {
	c        *call
	pbx, ext *endpoint
	protect  *srtp.Context // the outside peer's key, for fuzzed packets
	sentinel *srtp.Context // the same key, only for sentinel packets
	seq      uint16
}

func newFuzzLab(tb testing.TB, r *Relay, id, suite string, mux bool) *fuzzLab {
	tb.Helper()
	fail := func(format string, args ...any) { tb.Helper(); tb.Fatalf(format, args...) }
	c0, err := r.NewCall(id, Leg{Interface: "inside", Bind: lo}, Leg{Interface: "outside", Bind: lo})
	if err != nil {
		fail("new call: %v", err)
	}
	tb.Cleanup(c0.Close)
	c := c0.(*call)
	pbx, ext := newEndpoint(tb), newEndpoint(tb)
	pbx.mux, ext.mux = mux, mux
	var extra []string
	if mux {
		extra = append(extra, "rtcp-mux")
	}
	offer, err := c.Offer(SideA, pbx.sdpBody("RTP/AVP", extra...))
	if err != nil {
		fail("offer: %v", err)
	}
	out, err := sdp.Parse(offer)
	if err != nil {
		fail("offer out: %v", err)
	}
	tag := 0
	for _, v := range out.Media[0].Attrs("crypto") {
		if k, err := sdp.ParseCrypto(v); err == nil && k.Suite == suite {
			tag = k.Tag
		}
	}
	if tag == 0 {
		fail("the relay offered no %s:\n%s", suite, offer)
	}
	ext.learn(offer, tag)
	answer, err := c.Answer(SideB, ext.sdpBody("RTP/SAVP", append(extra, ext.key(tag, suite))...))
	if err != nil {
		fail("answer: %v", err)
	}
	pbx.learn(answer, 0)
	if mux {
		pbx.remoteRTCP, ext.remoteRTCP = pbx.remote, ext.remote
	}
	l := &fuzzLab{c: c, pbx: pbx, ext: ext}
	if l.protect, err = newContext(ext.txKey); err != nil {
		fail("srtp: %v", err)
	}
	if l.sentinel, err = newContext(ext.txKey); err != nil {
		fail("srtp: %v", err)
	}
	return l
}

// drain empties a socket without waiting.
func drain(c *net.UDPConn) {
	buf := make([]byte, 2048)
	c.SetReadDeadline(time.Now().Add(-time.Second))
	for {
		if _, _, err := c.ReadFromUDPAddrPort(buf); err != nil {
			return
		}
	}
}

// waitIn waits (bounded) until side's PacketsIn passes n: the worker has
// handled the datagram, so a panic it causes belongs to this input.
func (l *fuzzLab) waitIn(side Side, n uint64) bool {
	for i := range 3000 {
		if l.c.Stats().Legs[side].PacketsIn > n {
			return true
		}
		if i < 1000 {
			runtime.Gosched() // usually a few microseconds
		} else {
			time.Sleep(time.Millisecond)
		}
	}
	return false
}

// sentinelPacket is a valid plain RTP or RTCP packet with the sentinel SSRC.
func (l *fuzzLab) sentinelPacket(isRTCP bool) []byte {
	l.seq++
	var b []byte
	if isRTCP {
		b, _ = (&rtcp.ReceiverReport{SSRC: fuzzSentinelSSRC, ProfileExtensions: []byte{0, 0, byte(l.seq >> 8), byte(l.seq)}}).Marshal()
	} else {
		b, _ = (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 8, SequenceNumber: l.seq, Timestamp: uint32(l.seq) * 160,
			SSRC: fuzzSentinelSSRC}, Payload: []byte("sentinel")}).Marshal()
	}
	return b
}

// FuzzPacketPath sends arbitrary datagrams to a call's relay sockets as a
// media peer would: on the RTP and the RTCP port, from the PBX's plain leg
// and from the outside SRTP leg, raw or (outside only) protected first with
// the peer's real key, so that what lies behind a passed authentication is
// fuzzed too. Two calls: AES_CM_128_HMAC_SHA1_80 with RTCP on its own port,
// and AEAD_AES_128_GCM with rtcp-mux.
//
// The relay must not panic, and on the SRTP leg it must never pass on
// bytes that did not authenticate; what did authenticate arrives at the PBX
// exactly as the peer protected it. The harness checks this with a valid
// sentinel packet sent after each input on the same socket: the relay
// keeps the order, so anything the PBX gets before the sentinel came from
// the fuzzed datagram.
func FuzzPacketPath(f *testing.F) {
	rtpPkt := func(h rtp.Header, payload []byte) []byte {
		h.Version = 2
		b, _ := (&rtp.Packet{Header: h, Payload: payload}).Marshal()
		return b
	}
	rr, _ := (&rtcp.ReceiverReport{SSRC: 7, Reports: []rtcp.ReceptionReport{{SSRC: 9, FractionLost: 3, LastSequenceNumber: 100}}}).Marshal()
	compound, _ := rtcp.Marshal([]rtcp.Packet{
		&rtcp.SenderReport{SSRC: 7, NTPTime: 1 << 40, RTPTime: 160, PacketCount: 1, OctetCount: 160},
		&rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{Source: 7, Items: []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: "pbx"}}}}},
		&rtcp.Goodbye{Sources: []uint32{7}, Reason: "bye"},
	})
	seeds := [][]byte{
		rtpPkt(rtp.Header{PayloadType: 8, SequenceNumber: 1, Timestamp: 160, SSRC: 42}, make([]byte, 160)),
		rtpPkt(rtp.Header{PayloadType: 101, Marker: true, SequenceNumber: 2, SSRC: 42, CSRC: []uint32{1, 2}}, []byte{1, 0x8a, 0, 160}),
		rtpPkt(rtp.Header{PayloadType: 0, SequenceNumber: 65535, SSRC: 42, Extension: true, ExtensionProfile: 0xBEDE,
			Extensions: []rtp.Extension{{}}}, []byte("x")),
		rtpPkt(rtp.Header{PayloadType: 8, SequenceNumber: 3, SSRC: 42, Padding: true, PaddingSize: 4}, []byte("abcd")),
		{0x80, 8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 42},                         // header only
		{0xa0, 8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 42, 0xff},                   // padding count beyond the packet
		{0x9f, 8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 42},                         // 15 CSRCs announced, none there
		{0x90, 8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 42, 0xbe, 0xde, 0xff, 0xff}, // extension longer than the packet
		rr, compound,
		{0x80, 200, 0xff, 0xff, 0, 0, 0, 7}, // RTCP length beyond the packet
		{0x80, 0xc8},
		{},
	}
	for _, p := range seeds {
		for mode := range uint8(16) {
			f.Add(mode, p)
		}
	}

	cfg := testConfig(f, 20)
	cfg.Media.Policies = []config.MediaPolicy{{Interface: "outside", Group: "ALL", Requirement: "srtp"}}
	r := newTestRelay(f, cfg)
	labs := [2]*fuzzLab{
		newFuzzLab(f, r, "fuzz-aes80", sdp.SuiteAES80, false),
		newFuzzLab(f, r, "fuzz-gcm-mux", sdp.SuiteGCM128, true),
	}
	f.Fuzz(func(t *testing.T, mode uint8, pkt []byte) {
		if len(pkt) > 1200 {
			pkt = pkt[:1200] // a datagram the relay reads whole, with room for the tag
		}
		l := labs[0]
		if mode&fzMuxCall != 0 {
			l = labs[1]
		}
		isRTCP := mode&fzRTCPPort != 0
		from, to, side := l.pbx, l.ext, SideA
		if mode&fzFromOutside != 0 {
			from, to, side = l.ext, l.pbx, SideB
		}
		sock, dst := from.rtp, from.remote
		if isRTCP && !l.pbx.mux {
			sock, dst = from.rtcp, from.remoteRTCP
		}
		recv := to.rtp
		if isRTCP && !l.pbx.mux {
			recv = to.rtcp
		}
		// The SSRC sits at bytes 8-11 of RTP and 4-7 of RTCP; the
		// sentinel's is kept for the sentinel, so that a fuzzed packet
		// never moves its replay window.
		ssrcAt := 8
		if isRTCP {
			ssrcAt = 4
		}
		if len(pkt) >= ssrcAt+4 && bytes.Equal(pkt[ssrcAt:ssrcAt+4], fuzzSentinelBytes) {
			pkt = bytes.Clone(pkt)
			pkt[ssrcAt+3] ^= 1
		}
		wire := pkt
		protected := mode&fzProtect != 0 && side == SideB
		if protected {
			var err error
			if isRTCP {
				wire, err = l.protect.EncryptRTCP(nil, pkt, nil)
			} else {
				wire, err = l.protect.EncryptRTP(nil, pkt, nil)
			}
			if err != nil {
				return // pion cannot protect it, so no peer could send it
			}
		}
		drain(to.rtp)
		drain(to.rtcp)
		in := l.c.Stats().Legs[side].PacketsIn
		if _, err := sock.WriteToUDPAddrPort(wire, dst); err != nil {
			t.Fatalf("send: %v", err)
		}
		if !l.waitIn(side, in) {
			return // the machine is too busy to tell; not a finding
		}
		if side == SideA {
			return
		}
		// Outside leg: a valid protected sentinel follows on the same socket.
		sent := l.sentinelPacket(isRTCP)
		var sw []byte
		var err error
		if isRTCP {
			sw, err = l.sentinel.EncryptRTCP(nil, sent, nil)
		} else {
			sw, err = l.sentinel.EncryptRTP(nil, sent, nil)
		}
		if err != nil {
			t.Fatalf("protect the sentinel: %v", err)
		}
		if _, err := sock.WriteToUDPAddrPort(sw, dst); err != nil {
			t.Fatalf("send: %v", err)
		}
		buf := make([]byte, 2048)
		recv.SetReadDeadline(time.Now().Add(3 * time.Second))
		for {
			n, _, err := recv.ReadFromUDPAddrPort(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					return // busy machine, or the relay refused the sentinel as a replay: not a finding
				}
				t.Fatalf("read: %v", err)
			}
			got := buf[:n]
			if bytes.Equal(got, sent) {
				return
			}
			if len(got) >= ssrcAt+4 && bytes.Equal(got[ssrcAt:ssrcAt+4], fuzzSentinelBytes) {
				continue // an earlier sentinel that arrived late
			}
			switch {
			case !protected:
				t.Fatalf("the relay passed on an unauthenticated datagram from the SRTP leg:\nsent %x\ngot  %x", wire, got)
			case !bytes.Equal(got, pkt):
				t.Fatalf("an authenticated datagram arrived changed:\nprotected %x\ngot       %x", pkt, got)
			}
		}
	})
}
