package media

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	psdp "github.com/pion/sdp/v3"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/media/sdp"
)

// mline is one m= line of a test SDP: the endpoint its media goes to (nil:
// port 0, a declined stream), the profile and extra a= values.
type mline struct {
	kind  string
	e     *endpoint
	proto string
	attrs []string
}

// buildSDP writes an SDP the way Palisade generates SDP of its own: with
// pion/sdp/v3 (see docs/media.md). The relay reads it with its lenient parser.
func buildSDP(t testing.TB, addr netip.Addr, lines ...mline) []byte {
	t.Helper()
	at := "IP4"
	if addr.Is6() {
		at = "IP6"
	}
	s := &psdp.SessionDescription{
		Origin: psdp.Origin{Username: "-", SessionID: 1, SessionVersion: 1, NetworkType: "IN",
			AddressType: at, UnicastAddress: addr.String()},
		SessionName:           "-",
		ConnectionInformation: &psdp.ConnectionInformation{NetworkType: "IN", AddressType: at, Address: &psdp.Address{Address: addr.String()}},
		TimeDescriptions:      []psdp.TimeDescription{{}},
	}
	for _, l := range lines {
		md := &psdp.MediaDescription{MediaName: psdp.MediaName{Media: l.kind, Protos: strings.Split(l.proto, "/")}}
		switch l.kind {
		case "video":
			md.WithCodec(96, "H264", 90000, 0, "")
		case "image":
			md.MediaName.Formats = []string{"t38"}
		default:
			md.WithCodec(8, "PCMA", 8000, 0, "")
		}
		if l.e != nil {
			md.MediaName.Port = psdp.RangedPort{Value: l.e.port()}
			md.WithValueAttribute("rtcp", strconv.Itoa(l.e.rtcpPort()))
		}
		for _, a := range l.attrs {
			k, v, _ := strings.Cut(a, ":")
			md.WithValueAttribute(k, v)
		}
		s.MediaDescriptions = append(s.MediaDescriptions, md)
	}
	b, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// plainCall is a call on a relay with plain RTP on both sides and a range
// of n ports.
func plainCall(t *testing.T, n int) (*Relay, *call) {
	cfg := testConfig(t, n)
	cfg.Media.Policies = []config.MediaPolicy{}
	r := newTestRelay(t, cfg)
	return r, newTestCall(t, r)
}

// closeFreesPorts ends the call and checks that every port came back.
func closeFreesPorts(t *testing.T, r *Relay, c *call) {
	t.Helper()
	c.Close()
	if n := r.ports.inUse(); n != 0 {
		t.Fatalf("%d port pairs still in use after the call ended", n)
	}
}

// tagOf returns the tag of the relay's a=crypto line for suite on m= line i.
func tagOf(t *testing.T, body []byte, i int, suite string) int {
	t.Helper()
	s, err := sdp.Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range s.Media[i].Attrs("crypto") {
		if k, err := sdp.ParseCrypto(v); err == nil && k.Suite == suite {
			return k.Tag
		}
	}
	t.Fatalf("m= line %d has no %s key:\n%s", i, suite, body)
	return 0
}

// Two streams (audio + video, or two audio streams) from a plain-RTP PBX to
// an SRTP peer outside: each stream has its own ports and its own keys on
// each leg, and payloads arrive intact both ways on both streams.
func TestTwoStreamsRelayed(t *testing.T) {
	for _, kinds := range [][2]string{{"audio", "video"}, {"audio", "audio"}} {
		t.Run(kinds[0]+"+"+kinds[1], func(t *testing.T) {
			cfg := testConfig(t, 20)
			setOutside(cfg, "SRTP", "srtp")
			r := newTestRelay(t, cfg)
			c := newTestCall(t, r)
			pbx := [2]*endpoint{newEndpoint(t), newEndpoint(t)}
			ext := [2]*endpoint{newEndpoint(t), newEndpoint(t)}

			offer, err := c.Offer(SideA, buildSDP(t, lo,
				mline{kind: kinds[0], e: pbx[0], proto: "RTP/AVP"}, mline{kind: kinds[1], e: pbx[1], proto: "RTP/AVP"}))
			if err != nil {
				t.Fatal(err)
			}
			os, _ := sdp.Parse(offer)
			if len(os.Media) != 2 {
				t.Fatalf("offer to the outside:\n%s", offer)
			}
			keys := map[string]bool{}
			for i, m := range os.Media {
				if m.Proto != "RTP/SAVP" || m.Port != c.port(i, SideB) || m.Port == 0 {
					t.Fatalf("m= line %d to the outside: %s port %d\n%s", i, m.Proto, m.Port, offer)
				}
				for _, v := range m.Attrs("crypto") {
					k, _ := sdp.ParseCrypto(v)
					keys[string(k.Key)] = true
				}
			}
			if c.port(0, SideB) == c.port(1, SideB) || c.port(0, SideA) == c.port(1, SideA) {
				t.Fatal("both streams share a port")
			}
			if len(keys) != 4 { // two suites per stream, every key fresh
				t.Fatalf("%d distinct keys offered, want 4:\n%s", len(keys), offer)
			}
			var lines []mline
			for i := range 2 {
				tag := tagOf(t, offer, i, sdp.SuiteAES80)
				ext[i].learnLine(offer, i, tag)
				lines = append(lines, mline{kind: kinds[i], e: ext[i], proto: "RTP/SAVP", attrs: []string{ext[i].key(tag, sdp.SuiteAES80)}})
			}
			answer, err := c.Answer(SideB, buildSDP(t, lo, lines...))
			if err != nil {
				t.Fatal(err)
			}
			for i := range 2 {
				as := pbx[i].learnLine(answer, i, 0)
				if m := as.Media[i]; m.Proto != "RTP/AVP" || m.Has("crypto") || m.Port != c.port(i, SideA) {
					t.Fatalf("m= line %d to the PBX is not plain RTP on our port:\n%s", i, answer)
				}
			}
			for i := range 2 {
				exchange(t, pbx[i], ext[i], fmt.Sprintf("stream %d", i))
				// RTCP and SRTCP of each stream on its own ports, both ways.
				ssrc := uint32(0xa000 + i)
				pbx[i].sendRTCP(ssrc)
				if got := ext[i].recvRTCP(); got != ssrc {
					t.Fatalf("stream %d: RTCP ssrc %x reached the outside, want %x", i, got, ssrc)
				}
				ext[i].sendRTCP(ssrc + 0x100)
				if got := pbx[i].recvRTCP(); got != ssrc+0x100 {
					t.Fatalf("stream %d: RTCP ssrc %x reached the PBX, want %x", i, got, ssrc+0x100)
				}
			}
			waitFor(t, "counters of both streams (3 RTP + 1 RTCP each way per stream)", func() bool {
				st := c.Stats()
				return st.Legs[SideA].PacketsIn == 8 && st.Legs[SideB].PacketsIn == 8 && st.Legs[SideB].PacketsOut == 8
			})
			if st := c.Stats().Legs[SideB]; !st.SRTP || st.Suite != sdp.SuiteAES80 || st.Codec != "PCMA/8000" {
				t.Fatalf("outside leg summary %+v", st)
			}
			if n := r.ports.inUse(); n != 4 {
				t.Fatalf("%d port pairs in use, want 4 (2 streams x 2 legs)", n)
			}
			closeFreesPorts(t, r, c)
		})
	}
}

// A stream with port 0 stays declined at its position; streams after it
// are relayed.
func TestDeclinedStreamKeepsPosition(t *testing.T) {
	r, c := plainCall(t, 20)
	pbx, ext := newEndpoint(t), newEndpoint(t)
	offer, err := c.Offer(SideA, buildSDP(t, lo,
		mline{kind: "video", proto: "RTP/AVP"}, mline{kind: "audio", e: pbx, proto: "RTP/AVP"}))
	if err != nil {
		t.Fatal(err)
	}
	os, _ := sdp.Parse(offer)
	if len(os.Media) != 2 || os.Media[0].Port != 0 || os.Media[0].Kind != "video" || os.Media[1].Port != c.port(1, SideB) {
		t.Fatalf("offer:\n%s", offer)
	}
	if n := r.ports.inUse(); n != 2 {
		t.Fatalf("%d port pairs in use, want 2: the declined stream must take none", n)
	}
	ext.learnLine(offer, 1, 0)
	answer, err := c.Answer(SideB, buildSDP(t, lo, mline{kind: "video", proto: "RTP/AVP"}, mline{kind: "audio", e: ext, proto: "RTP/AVP"}))
	if err != nil {
		t.Fatal(err)
	}
	as := pbx.learnLine(answer, 1, 0)
	if as.Media[0].Port != 0 {
		t.Fatalf("answer:\n%s", answer)
	}
	exchange(t, pbx, ext, "after a declined stream")
	closeFreesPorts(t, r, c)
}

// A re-offer adds a video stream, then removes it (port 0): the audio
// stream keeps its ports and flows throughout; the video ports are taken
// and given back.
func TestReofferAddsAndRemovesStream(t *testing.T) {
	r, c := plainCall(t, 20)
	pa, ea, pv, ev := newEndpoint(t), newEndpoint(t), newEndpoint(t), newEndpoint(t)
	round := func(from Side, offerer, answerer []mline, learn func(offer, answer []byte)) {
		t.Helper()
		offer, err := c.Offer(from, buildSDP(t, lo, offerer...))
		if err != nil {
			t.Fatal(err)
		}
		answer, err := c.Answer(from.Other(), buildSDP(t, lo, answerer...))
		if err != nil {
			t.Fatal(err)
		}
		learn(offer, answer)
	}
	audioA, audioB := mline{kind: "audio", e: pa, proto: "RTP/AVP"}, mline{kind: "audio", e: ea, proto: "RTP/AVP"}
	round(SideA, []mline{audioA}, []mline{audioB}, func(o, a []byte) { ea.learn(o, 0); pa.learn(a, 0) })
	exchange(t, pa, ea, "audio only")
	audioPort := c.port(0, SideB)

	// The outside adds video.
	round(SideB, []mline{audioB, {kind: "video", e: ev, proto: "RTP/AVP"}}, []mline{audioA, {kind: "video", e: pv, proto: "RTP/AVP"}},
		func(o, a []byte) { pa.learn(o, 0); pv.learnLine(o, 1, 0); ea.learn(a, 0); ev.learnLine(a, 1, 0) })
	if n := r.ports.inUse(); n != 4 || c.port(0, SideB) != audioPort {
		t.Fatalf("after adding video: %d port pairs (want 4), audio port %d (was %d)", n, c.port(0, SideB), audioPort)
	}
	exchange(t, pa, ea, "audio with video")
	exchange(t, pv, ev, "video")

	// The inside removes it again.
	var answer []byte
	round(SideA, []mline{audioA, {kind: "video", proto: "RTP/AVP"}}, []mline{audioB, {kind: "video", proto: "RTP/AVP"}},
		func(o, a []byte) { answer = a })
	if s, _ := sdp.Parse(answer); len(s.Media) != 2 || s.Media[1].Port != 0 {
		t.Fatalf("answer keeps the removed stream:\n%s", answer)
	}
	if n := r.ports.inUse(); n != 2 {
		t.Fatalf("after removing video: %d port pairs, want 2", n)
	}
	exchange(t, pa, ea, "audio after video")
	if st := c.Stats(); st.Legs[SideA].PacketsIn != 9+3 {
		// 3 audio rounds of 3 packets, plus the removed video stream's 3
		t.Fatalf("PBX leg counted %d packets in, want 12", st.Legs[SideA].PacketsIn)
	}
	closeFreesPorts(t, r, c)
}

// Policy applies per stream: a plain video stream offered on a leg that
// requires SRTP is declined while the SRTP audio stream goes on.
func TestPolicyPerStream(t *testing.T) {
	cfg := testConfig(t, 20)
	setOutside(cfg, "SRTP", "srtp")
	r := newTestRelay(t, cfg)
	c := newTestCall(t, r)
	ext, extV, pbx := newEndpoint(t), newEndpoint(t), newEndpoint(t)
	offer, err := c.Offer(SideB, buildSDP(t, lo,
		mline{kind: "audio", e: ext, proto: "RTP/SAVP", attrs: []string{ext.key(1, sdp.SuiteAES80)}},
		mline{kind: "video", e: extV, proto: "RTP/AVP"}))
	if err != nil {
		t.Fatal(err)
	}
	os := pbx.learn(offer, 0)
	if os.Media[0].Proto != "RTP/AVP" || os.Media[1].Port != 0 {
		t.Fatalf("offer to the PBX:\n%s", offer)
	}
	answer, err := c.Answer(SideA, buildSDP(t, lo, mline{kind: "audio", e: pbx, proto: "RTP/AVP"}, mline{kind: "video", proto: "RTP/AVP"}))
	if err != nil {
		t.Fatal(err)
	}
	as := ext.learn(answer, 1)
	if as.Media[0].Proto != "RTP/SAVP" || !as.Media[0].Has("crypto") || as.Media[1].Port != 0 {
		t.Fatalf("answer to the outside:\n%s", answer)
	}
	exchange(t, pbx, ext, "srtp audio")

	// With only the plain stream, nothing is left: 488 with the reason.
	_, err = c.Offer(SideB, buildSDP(t, lo, mline{kind: "video", e: extV, proto: "RTP/AVP"}))
	if !errors.Is(err, ErrNotAcceptable) || !strings.Contains(err.Error(), "requires SRTP") {
		t.Fatalf("plain-only offer on an SRTP leg: %v", err)
	}
}

// Hostile SDP: too many streams, too many m= lines, too many bytes. Each
// gets a clear error; the call is unharmed and takes no ports for it.
func TestStreamLimits(t *testing.T) {
	r, c := plainCall(t, 40)
	many := func(n, port int) []byte {
		var b strings.Builder
		b.WriteString("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n")
		for i := range n {
			fmt.Fprintf(&b, "m=audio %d RTP/AVP 0\r\n", port+2*i)
		}
		return []byte(b.String())
	}
	big := []byte("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n")
	for len(big) <= sdp.MaxSize {
		big = append(big, "a=x-filler:0123456789abcdef0123456789abcdef0123456789\r\n"...)
	}
	for _, tc := range []struct {
		name string
		body []byte
		err  error
		msg  string
	}{
		{"9 streams", many(MaxStreams+1, 5000), ErrNotAcceptable, "at most 8"},
		{"100 m= lines", many(100, 5000), ErrBadSDP, "m= lines"},
		{"100 declined m= lines", many(100, 0), ErrBadSDP, "m= lines"},
		{"64 KB", big, ErrBadSDP, "byte limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Offer(SideA, tc.body)
			if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v, want %v mentioning %q", err, tc.err, tc.msg)
			}
			if n := r.ports.inUse(); n != 2 {
				t.Fatalf("%d port pairs in use, want the call's 2 (one stream)", n)
			}
		})
	}
	// The most streams allowed work, each with its own ports.
	out, err := c.Offer(SideA, many(MaxStreams, 5000))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := sdp.Parse(out)
	seen := map[int]bool{}
	for _, m := range s.Media {
		if m.Port == 0 || seen[m.Port] {
			t.Fatalf("stream without its own port:\n%s", out)
		}
		seen[m.Port] = true
	}
	if n := r.ports.inUse(); n != 2*MaxStreams {
		t.Fatalf("%d port pairs in use, want %d", n, 2*MaxStreams)
	}
	closeFreesPorts(t, r, c)
}

// A re-offer adding a stream when the port range is used up is refused with
// ErrNoPorts (503); the call keeps its media.
func TestAddStreamPortsExhausted(t *testing.T) {
	_, c := plainCall(t, 4) // room for one stream: 2 pairs
	pa, ea, pv := newEndpoint(t), newEndpoint(t), newEndpoint(t)
	o, err := c.Offer(SideA, buildSDP(t, lo, mline{kind: "audio", e: pa, proto: "RTP/AVP"}))
	if err != nil {
		t.Fatal(err)
	}
	ea.learn(o, 0)
	a, err := c.Answer(SideB, buildSDP(t, lo, mline{kind: "audio", e: ea, proto: "RTP/AVP"}))
	if err != nil {
		t.Fatal(err)
	}
	pa.learn(a, 0)
	_, err = c.Offer(SideA, buildSDP(t, lo, mline{kind: "audio", e: pa, proto: "RTP/AVP"}, mline{kind: "video", e: pv, proto: "RTP/AVP"}))
	if !errors.Is(err, ErrNoPorts) {
		t.Fatalf("adding a stream with no ports left: %v", err)
	}
	exchange(t, pa, ea, "audio after a refused re-offer")
}
