package media

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	dto "github.com/prometheus/client_model/go"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/media/sdp"
)

// setOutside gives the outside interface group g with requirement req.
func setOutside(cfg *config.Config, g, req string) {
	cfg.Media.Policies = []config.MediaPolicy{{Interface: "outside", Group: g, Requirement: req}}
}

// pbxToOutside sets up a call PBX (side A, plain RTP) -> outside (side B,
// SRTP answering with suite), returns both endpoints.
func pbxToOutside(t *testing.T, c *call, suite string) (pbx, ext *endpoint) {
	t.Helper()
	pbx, ext = newEndpoint(t), newEndpoint(t)
	offer, err := c.Offer(SideA, pbx.sdpBody("RTP/AVP"))
	if err != nil {
		t.Fatal(err)
	}
	os, _ := sdp.Parse(offer)
	m := os.Media[0]
	if m.Proto != "RTP/SAVP" || m.Port != c.port(0, SideB) {
		t.Fatalf("offer to the outside: %s port %d\n%s", m.Proto, m.Port, offer)
	}
	tag := 0
	for _, v := range m.Attrs("crypto") {
		k, _ := sdp.ParseCrypto(v)
		if k.Suite == suite {
			tag = k.Tag
		}
	}
	if tag == 0 {
		t.Fatalf("offer has no %s:\n%s", suite, offer)
	}
	ext.learn(offer, tag)
	answer, err := c.Answer(SideB, ext.sdpBody("RTP/SAVP", strings.Replace(ext.key(tag, suite), "crypto:", "crypto:", 1)))
	if err != nil {
		t.Fatal(err)
	}
	as := pbx.learn(answer, 0)
	if am := as.Media[0]; am.Proto != "RTP/AVP" || am.Has("crypto") || am.Port != c.port(0, SideA) {
		t.Fatalf("answer to the PBX is not plain RTP on our port:\n%s", answer)
	}
	if strings.Contains(string(answer), "rtcp:"+strconv.Itoa(ext.rtcpPort())) {
		t.Fatal("the outside's RTCP port leaked into the inside SDP")
	}
	return pbx, ext
}

func TestTranscodeRTPToSRTP(t *testing.T) {
	for _, suite := range []string{sdp.SuiteAES80, sdp.SuiteAES32, sdp.SuiteGCM128} {
		t.Run(suite, func(t *testing.T) {
			cfg := testConfig(t, 20)
			setOutside(cfg, "ALL", "srtp")
			r := newTestRelay(t, cfg)
			c := newTestCall(t, r)
			pbx, ext := pbxToOutside(t, c, suite)
			exchange(t, pbx, ext, suite)

			// SRTCP both ways.
			pbx.sendRTCP(0xaaaa)
			if got := ext.recvRTCP(); got != 0xaaaa {
				t.Fatalf("RTCP ssrc %x", got)
			}
			ext.sendRTCP(0xbbbb)
			if got := pbx.recvRTCP(); got != 0xbbbb {
				t.Fatalf("RTCP ssrc %x", got)
			}
			st := c.Stats()
			if !st.Legs[SideB].SRTP || st.Legs[SideB].Suite != suite || st.Legs[SideA].SRTP {
				t.Fatalf("stats: %+v", st)
			}
			if st.Legs[SideA].PacketsIn < 3 || st.Legs[SideB].PacketsOut < 3 || st.Legs[SideA].Codec != "PCMA/8000" {
				t.Fatalf("stats: %+v", st)
			}
		})
	}
}

func TestSRTPToSRTPDifferentKeys(t *testing.T) {
	cfg := testConfig(t, 20)
	cfg.Media.Policies = []config.MediaPolicy{
		{Interface: "outside", Group: "SRTP", Requirement: "srtp"},
		{Interface: "inside", Group: "SRTP", Requirement: "srtp"},
	}
	r := newTestRelay(t, cfg)
	c := newTestCall(t, r)
	a, b := newEndpoint(t), newEndpoint(t)
	offer, err := c.Offer(SideA, a.sdpBody("RTP/SAVP", a.key(1, sdp.SuiteAES80)))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(offer), a.txKey.String()) {
		t.Fatal("the offerer's key was passed on to the other leg")
	}
	b.learn(offer, 1)
	answer, err := c.Answer(SideB, b.sdpBody("RTP/SAVP", b.key(1, sdp.SuiteAES80)))
	if err != nil {
		t.Fatal(err)
	}
	a.learn(answer, 1)
	s1, _ := sdp.Parse(offer)
	s2, _ := sdp.Parse(answer)
	k1, _ := sdp.ParseCrypto(s1.Media[0].Attrs("crypto")[0])
	k2, _ := sdp.ParseCrypto(s2.Media[0].Attrs("crypto")[0])
	if bytes.Equal(k1.Key, k2.Key) {
		t.Fatal("both legs got the same key")
	}
	exchange(t, a, b, "srtp-srtp")
}

func TestRekeyOnReOffer(t *testing.T) {
	cfg := testConfig(t, 20)
	r := newTestRelay(t, cfg)
	c := newTestCall(t, r)
	pbx, ext := pbxToOutside(t, c, sdp.SuiteAES80)
	exchange(t, pbx, ext, "before")
	oldRx := ext.rx
	oldTx := ext.tx

	// The outside sends a re-INVITE with a new key.
	reoffer, err := c.Offer(SideB, ext.sdpBody("RTP/SAVP", ext.key(7, sdp.SuiteAES32)))
	if err != nil {
		t.Fatal(err)
	}
	pbx.learn(reoffer, 0)
	answer, err := c.Answer(SideA, pbx.sdpBody("RTP/AVP"))
	if err != nil {
		t.Fatal(err)
	}
	s := ext.learn(answer, 7)
	if v := s.Media[0].Attrs("crypto"); len(v) != 1 || !strings.HasPrefix(v[0], "7 AES_CM_128_HMAC_SHA1_32 ") {
		t.Fatalf("answer crypto %v", v)
	}
	if ext.rx == oldRx {
		t.Fatal("no new key")
	}
	exchange(t, pbx, ext, "after")

	// A packet under the old key is now dropped and counted.
	ext.tx = oldTx
	ext.sendRTP([]byte("old key"))
	waitFor(t, "auth failure counted", func() bool { return c.Stats().Legs[SideB].AuthFailures == 1 })
	ext.key(7, sdp.SuiteAES32) // a fresh key the relay does not know either
	ext.sendRTP([]byte("unknown key"))
	waitFor(t, "auth failure counted", func() bool { return c.Stats().Legs[SideB].AuthFailures == 2 })
}

func TestWrongKeyDroppedAndCounted(t *testing.T) {
	r := newTestRelay(t, testConfig(t, 20))
	c := newTestCall(t, r)
	pbx, ext := pbxToOutside(t, c, sdp.SuiteAES80)
	good := ext.tx
	metricBefore := counterValue(t, authFailures)
	ext.key(1, sdp.SuiteAES80) // same tag and suite, other key
	ext.sendRTP([]byte("forged"))
	ext.tx = good
	ext.sendRTP([]byte("genuine"))
	if got := pbx.recvRTP(); string(got) != "genuine" {
		t.Fatalf("PBX got %q", got)
	}
	if n := c.Stats().Legs[SideB].AuthFailures; n != 1 {
		t.Fatalf("auth failures %d, want 1", n)
	}
	if d := counterValue(t, authFailures) - metricBefore; d < 1 {
		t.Fatalf("palisade_media_srtp_auth_failures_total rose by %v", d)
	}
	// A replayed packet is dropped too (replay protection is on).
	ext.seq--
	ext.sendRTP([]byte("replayed"))
	ext.sendRTP([]byte("next"))
	if got := pbx.recvRTP(); string(got) != "next" {
		t.Fatalf("PBX got %q after a replay", got)
	}
}

func TestLatchingGuard(t *testing.T) {
	r := newTestRelay(t, testConfig(t, 20))
	c := newTestCall(t, r)
	pbx, ext := pbxToOutside(t, c, sdp.SuiteAES80)
	exchange(t, pbx, ext, "latch")
	// Another host sends plain RTP at the inside port: dropped.
	intruder := newEndpoint(t)
	intruder.remote = pbx.remote
	intruder.sendRTP([]byte("injected"))
	pbx.sendRTP([]byte("real"))
	if got := ext.recvRTP(); string(got) != "real" {
		t.Fatalf("outside got %q", got)
	}
	if l := c.Stats().Legs[SideA]; l.Remote.Port() != uint16(pbx.port()) {
		t.Fatalf("latched to %v", l.Remote)
	}
}

// Symmetric RTP: a peer behind NAT sends from another port than its SDP says.
func TestLatchingFollowsNAT(t *testing.T) {
	r := newTestRelay(t, testConfig(t, 20))
	c := newTestCall(t, r)
	pbx, ext := pbxToOutside(t, c, sdp.SuiteAES80)
	natted := newEndpoint(t)
	natted.tx, natted.rx, natted.remote, natted.ssrc = ext.tx, ext.rx, ext.remote, ext.ssrc
	natted.sendRTP([]byte("from NAT"))
	if got := pbx.recvRTP(); string(got) != "from NAT" {
		t.Fatalf("got %q", got)
	}
	pbx.sendRTP([]byte("back"))
	if got := natted.recvRTP(); string(got) != "back" {
		t.Fatalf("reply did not follow the latched address: %q", got)
	}
}

func TestHold(t *testing.T) {
	r := newTestRelay(t, testConfig(t, 20))
	c := newTestCall(t, r)
	pbx, ext := pbxToOutside(t, c, sdp.SuiteAES80)
	exchange(t, pbx, ext, "talk")
	// Old-style hold from the PBX: c=0.0.0.0 and sendonly.
	hold := strings.Replace(string(pbx.sdpBody("RTP/AVP", "sendonly")), "c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0", 1)
	out, err := c.Offer(SideA, []byte(hold))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "a=sendonly") || !strings.Contains(string(out), "c=IN IP4 0.0.0.0") {
		t.Fatalf("hold not passed on:\n%s", out)
	}
	ext.learn(out, 1)
	if _, err := c.Answer(SideB, ext.sdpBody("RTP/SAVP", "recvonly", ext.key(1, sdp.SuiteAES80))); err != nil {
		t.Fatal(err)
	}
	// Counters are added after the batch is sent: let them settle first.
	waitFor(t, "counters", func() bool { return c.Stats().Legs[SideA].PacketsOut == 3 })
	before := c.Stats().Legs[SideA].PacketsOut
	ext.sendRTP([]byte("to a held PBX"))
	waitFor(t, "packet in", func() bool { return c.Stats().Legs[SideB].PacketsIn > 3 })
	if got := c.Stats().Legs[SideA].PacketsOut; got != before {
		t.Fatalf("media sent to a PBX on hold (c=0.0.0.0)")
	}
	// Resume.
	out, err = c.Offer(SideA, pbx.sdpBody("RTP/AVP"))
	if err != nil {
		t.Fatal(err)
	}
	ext.learn(out, 1)
	ans, err := c.Answer(SideB, ext.sdpBody("RTP/SAVP", ext.key(1, sdp.SuiteAES80)))
	if err != nil {
		t.Fatal(err)
	}
	pbx.learn(ans, 0)
	exchange(t, pbx, ext, "resumed")
}

func TestEarlyMediaRepeatedAnswer(t *testing.T) {
	r := newTestRelay(t, testConfig(t, 20))
	cl, err := r.NewCall(t.Name(), Leg{Interface: "outside", Bind: lo}, Leg{Interface: "inside", Bind: lo})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ext, pbx := newEndpoint(t), newEndpoint(t)
	offer, err := cl.Offer(SideA, ext.sdpBody("RTP/SAVP", ext.key(3, sdp.SuiteAES32), "crypto:4 FOO_SUITE inline:AAAA"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(offer), "crypto") || !strings.Contains(string(offer), "RTP/AVP") {
		t.Fatalf("inside offer should be plain RTP:\n%s", offer)
	}
	pbx.learn(offer, 0)
	a183, err := cl.Answer(SideB, pbx.sdpBody("RTP/AVP"))
	if err != nil {
		t.Fatal(err)
	}
	ext.learn(a183, 3)
	exchange(t, ext, pbx, "early")
	a200, err := cl.Answer(SideB, pbx.sdpBody("RTP/AVP"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a183, a200) {
		t.Fatalf("the 200 answer differs from the 183 answer:\n%s\n%s", a183, a200)
	}
	exchange(t, ext, pbx, "answered")
}

func TestPortsExhaustedAndReleased(t *testing.T) {
	r := newTestRelay(t, testConfig(t, 4)) // two pairs: one call
	c1, err := r.NewCall("one", Leg{Interface: "inside", Bind: lo}, Leg{Interface: "outside", Bind: lo})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.NewCall("two", Leg{Interface: "inside", Bind: lo}, Leg{Interface: "outside", Bind: lo}); !errors.Is(err, ErrNoPorts) {
		t.Fatalf("err = %v, want ErrNoPorts", err)
	}
	if r.ports.inUse() != 2 {
		t.Fatalf("a failed call kept ports: %d in use", r.ports.inUse())
	}
	// The call in progress is unaffected.
	pbx, ext := pbxToOutside(t, c1.(*call), sdp.SuiteAES80)
	exchange(t, pbx, ext, "busy")
	c1.Close()
	c1.Close() // twice is fine
	if r.ports.inUse() != 0 {
		t.Fatalf("ports not released: %d", r.ports.inUse())
	}
	c3, err := r.NewCall("three", Leg{Interface: "inside", Bind: lo}, Leg{Interface: "outside", Bind: lo})
	if err != nil {
		t.Fatalf("ports not reusable after Close: %v", err)
	}
	c3.Close()
}

func TestApplyKeepsCallsInProgress(t *testing.T) {
	cfg := testConfig(t, 20)
	r := newTestRelay(t, cfg)
	c := newTestCall(t, r)
	pbx, ext := pbxToOutside(t, c, sdp.SuiteAES80)
	next := testConfig(t, 20)
	setOutside(next, "RTP", "rtp")
	if err := r.Apply(t.Context(), next); err != nil {
		t.Fatal(err)
	}
	exchange(t, pbx, ext, "after apply")
	bad := testConfig(t, 20)
	bad.Media.PortMin, bad.Media.PortMax = 5000, 5000
	if err := r.Apply(t.Context(), bad); err == nil {
		t.Fatal("a port range without a pair was applied")
	}
	if p := r.PolicyFor("outside"); p.Requirement != RequireRTP {
		t.Fatalf("new policy not in force: %+v", p)
	}
	c2 := newTestCall(t, r)
	out, err := c2.Offer(SideA, newEndpoint(t).sdpBody("RTP/AVP"))
	if err != nil || strings.Contains(string(out), "crypto") || c2.port(0, SideA) < next.Media.PortMin || c2.port(0, SideA) > next.Media.PortMax {
		t.Fatalf("new call does not follow the new configuration: %v\n%s", err, out)
	}
}

func TestInactivity(t *testing.T) {
	cfg := testConfig(t, 20)
	cfg.Media.InactivityTimeout = config.Duration(200 * time.Millisecond)
	r := newTestRelay(t, cfg)
	c := newTestCall(t, r)
	fired := make(chan struct{}, 2)
	c.OnInactive(func() { fired <- struct{}{} })
	// Ringing (an offer, no answer yet) is not inactivity.
	if _, err := c.Offer(SideA, newEndpoint(t).sdpBody("RTP/AVP")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-fired:
		t.Fatal("OnInactive fired before the call was answered")
	case <-time.After(600 * time.Millisecond):
	}
	pbxToOutside(t, c, sdp.SuiteAES80)
	select {
	case <-fired:
	case <-time.After(10 * time.Second):
		t.Fatal("OnInactive never called")
	}
	select {
	case <-fired:
		t.Fatal("OnInactive called twice")
	case <-time.After(300 * time.Millisecond):
	}
}

func TestRTCPMuxAndIPv6(t *testing.T) {
	v6 := netip.MustParseAddr("::1")
	if c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback}); err != nil {
		t.Skip("no IPv6 loopback")
	} else {
		c.Close()
	}
	r := newTestRelay(t, testConfig(t, 20))
	cl, err := r.NewCall(t.Name(), Leg{Interface: "inside", Bind: v6}, Leg{Interface: "outside", Bind: v6})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	pbx, ext := newEndpointAt(t, v6), newEndpointAt(t, v6)
	pbx.mux, ext.mux = true, true
	out, err := cl.Offer(SideA, pbx.sdpBody("RTP/AVP", "rtcp-mux"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "c=IN IP6 ::1") || !strings.Contains(string(out), "a=rtcp-mux") {
		t.Fatalf("offer:\n%s", out)
	}
	ext.learn(out, 1)
	ans, err := cl.Answer(SideB, ext.sdpBody("RTP/SAVP", "rtcp-mux", ext.key(1, sdp.SuiteAES80)))
	if err != nil {
		t.Fatal(err)
	}
	pbx.learn(ans, 0)
	exchange(t, pbx, ext, "v6")
	checkPeer(t, cl.(*call).stream0(SideA).rtp, netip.AddrPortFrom(v6, uint16(pbx.port())))
	pbx.sendRTCP(0x1111)
	if got := ext.recvRTCP(); got != 0x1111 {
		t.Fatalf("muxed RTCP %x", got)
	}
	ext.sendRTCP(0x2222)
	if got := pbx.recvRTCP(); got != 0x2222 {
		t.Fatalf("muxed RTCP %x", got)
	}
}

// A re-INVITE moves the PBX to another address and port: media follows,
// and the old address is no longer latched. On Linux a latched socket is
// connected to its peer; the move disconnects it before Answer returns, so
// the new address's first packet is not dropped by the kernel.
func TestReOfferNewAddress(t *testing.T) {
	r := newTestRelay(t, testConfig(t, 20))
	c := newTestCall(t, r)
	pbx, ext := pbxToOutside(t, c, sdp.SuiteAES80)
	a, b := c.stream0(SideA).rtp, c.stream0(SideB).rtp
	checkPeer(t, a, netip.AddrPort{})
	exchange(t, pbx, ext, "first")
	checkPeer(t, a, netip.AddrPortFrom(lo, uint16(pbx.port())))
	checkPeer(t, b, netip.AddrPortFrom(lo, uint16(ext.port())))
	moved := newEndpoint(t)
	out, err := c.Offer(SideA, moved.sdpBody("RTP/AVP"))
	if err != nil {
		t.Fatal(err)
	}
	ext.learn(out, 1)
	ans, err := c.Answer(SideB, ext.sdpBody("RTP/SAVP", ext.key(1, sdp.SuiteAES80)))
	if err != nil {
		t.Fatal(err)
	}
	checkPeer(t, a, netip.AddrPort{})
	checkPeer(t, b, netip.AddrPortFrom(lo, uint16(ext.port()))) // its peer stayed
	moved.learn(ans, 0)
	exchange(t, moved, ext, "moved")
	if l := c.Stats().Legs[SideA]; l.Remote.Port() != uint16(moved.port()) {
		t.Fatalf("inside leg still latched to %v", l.Remote)
	}
	checkPeer(t, a, netip.AddrPortFrom(lo, uint16(moved.port())))
	// The old address is shut out now.
	pbx.remote = moved.remote
	pbx.sendRTP([]byte("stale"))
	moved.sendRTP([]byte("current"))
	if got := ext.recvRTP(); string(got) != "current" {
		t.Fatalf("outside got %q", got)
	}
}

// RTP header fields pass untouched (DTMF telephone-event with its marker
// bit and payload type), and sequence gaps are counted as lost.
func TestPayloadTypesAndLoss(t *testing.T) {
	r := newTestRelay(t, testConfig(t, 20))
	c := newTestCall(t, r)
	pbx, ext := pbxToOutside(t, c, sdp.SuiteAES80)
	send := func(pt uint8, marker bool, seq uint16) {
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, Marker: marker, SequenceNumber: seq, Timestamp: 99, SSRC: pbx.ssrc}, Payload: []byte{1, 0x8a, 0, 160}}
		b, _ := p.Marshal()
		if _, err := pbx.rtp.WriteToUDPAddrPort(b, pbx.remote); err != nil {
			t.Fatal(err)
		}
	}
	recv := func() rtp.Header {
		buf := make([]byte, 2048)
		ext.rtp.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := ext.rtp.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatal(err)
		}
		plain, err := ext.rx.DecryptRTP(nil, buf[:n], nil)
		if err != nil {
			t.Fatal(err)
		}
		var p rtp.Packet
		p.Unmarshal(plain)
		return p.Header
	}
	send(101, true, 100)
	if h := recv(); h.PayloadType != 101 || !h.Marker || h.SequenceNumber != 100 || h.Timestamp != 99 {
		t.Fatalf("header changed: %+v", h)
	}
	send(13, false, 105) // comfort noise, 4 packets missing
	if h := recv(); h.PayloadType != 13 {
		t.Fatalf("CN payload type %d", h.PayloadType)
	}
	if lost := c.Stats().Legs[SideA].Lost; lost != 4 {
		t.Fatalf("lost %d, want 4", lost)
	}
}

func counterValue(t *testing.T, c interface{ Write(*dto.Metric) error }) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// A peer key with an MKI: the relay decrypts packets that carry it.
func TestPeerKeyWithMKI(t *testing.T) {
	r := newTestRelay(t, testConfig(t, 20))
	cl, err := r.NewCall(t.Name(), Leg{Interface: "outside", Bind: lo}, Leg{Interface: "inside", Bind: lo})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ext, pbx := newEndpoint(t), newEndpoint(t)
	ext.key(1, sdp.SuiteAES80)
	ext.txKey.MKI = []byte{0, 7}
	ext.txKey.Lifetime = 1 << 31
	if ext.tx, err = newContext(ext.txKey); err != nil {
		t.Fatal(err)
	}
	offer := ext.sdpBody("RTP/SAVP", "crypto:"+ext.txKey.String())
	if !strings.Contains(string(offer), "|2^31|7:2") {
		t.Fatalf("test key line: %s", offer)
	}
	out, err := cl.Offer(SideA, offer)
	if err != nil {
		t.Fatal(err)
	}
	pbx.learn(out, 0)
	ans, err := cl.Answer(SideB, pbx.sdpBody("RTP/AVP"))
	if err != nil {
		t.Fatal(err)
	}
	ext.learn(ans, 1)
	exchange(t, ext, pbx, "mki")
}

// The unit closes a subsystem after a failed first apply; a later apply
// must bring it back.
func TestApplyAfterClose(t *testing.T) {
	cfg := testConfig(t, 20)
	r := newTestRelay(t, cfg)
	r.Close()
	if _, err := r.NewCall("x", Leg{Interface: "inside", Bind: lo}, Leg{Interface: "outside", Bind: lo}); err == nil {
		t.Fatal("a closed relay took a call")
	}
	if err := r.Apply(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	c := newTestCall(t, r)
	pbx, ext := pbxToOutside(t, c, sdp.SuiteAES80)
	exchange(t, pbx, ext, "reopened")
}

// With advertised_address set on the interface, the SDP carries it even
// when the SIP layer passes the bind address as Advertised.
func TestAdvertisedAddressFromInterface(t *testing.T) {
	cfg := testConfig(t, 20)
	cfg.Network.Interfaces[1].AdvertisedAddress = "203.0.113.9"
	r := newTestRelay(t, cfg)
	cl, err := r.NewCall(t.Name(), Leg{Interface: "inside", Bind: lo, Advertised: lo}, Leg{Interface: "outside", Bind: lo, Advertised: lo})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	out, err := cl.Offer(SideA, newEndpoint(t).sdpBody("RTP/AVP"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "c=IN IP4 203.0.113.9") || !strings.Contains(string(out), "IN IP4 203.0.113.9\r\nt=") {
		t.Fatalf("outside SDP does not carry the advertised address:\n%s", out)
	}
	if l := cl.Stats().Legs[SideA]; l.Local.Addr() != lo {
		t.Fatalf("inside leg advertises %v", l.Local)
	}
}

// A flood of forged SRTP and injected RTP on one call does not disturb another.
func TestBadTrafficStaysInItsCall(t *testing.T) {
	r := newTestRelay(t, testConfig(t, 20))
	victim := newTestCall(t, r)
	vp, ve := pbxToOutside(t, victim, sdp.SuiteAES80)
	cl2, err := r.NewCall("other", Leg{Interface: "inside", Bind: lo}, Leg{Interface: "outside", Bind: lo})
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	op, oe := pbxToOutside(t, cl2.(*call), sdp.SuiteAES80)
	exchange(t, vp, ve, "victim latched")
	// The forger spoofs the latched source address (it sends from the
	// victim's own socket): from any other address the kernel drops its
	// packets before the relay sees them (the socket is connected).
	forger := newEndpoint(t)
	forger.rtp, forger.remote = ve.rtp, ve.remote
	forger.key(1, sdp.SuiteAES80)
	intruder := newEndpoint(t)
	intruder.remote = vp.remote
	for range 500 {
		forger.sendRTP(make([]byte, 160))
		intruder.sendRTP(make([]byte, 160))
	}
	exchange(t, op, oe, "other call")
	// The worker counts a packet after its send returns, so the endpoint
	// may hold the last one before it is counted.
	waitFor(t, "the other call's packets counted", func() bool { return cl2.Stats().Legs[SideA].PacketsOut >= 3 })
	if s := cl2.Stats(); s.Legs[SideB].AuthFailures != 0 || s.Legs[SideA].PacketsOut != 3 {
		t.Fatalf("other call disturbed: %+v", s)
	}
	// The burst may overflow the victim's socket buffers (the kernel drops
	// what does not fit, legitimate packets too): let the relay drain them.
	last := uint64(1 << 63)
	waitFor(t, "the flood drained", func() bool {
		n := victim.Stats().Legs[SideA].PacketsIn + victim.Stats().Legs[SideB].PacketsIn
		done := n == last
		last = n
		return done
	})
	exchange(t, vp, ve, "victim still works")
	// What arrived of the burst was counted.
	if n := victim.Stats().Legs[SideB].AuthFailures; n == 0 || n > 500 {
		t.Fatalf("forged packets counted %d", n)
	}
}

// A call closed after the relay itself was closed returns (its worker is gone).
func TestCloseCallAfterRelay(t *testing.T) {
	r := newTestRelay(t, testConfig(t, 20))
	c, err := r.NewCall("late", Leg{Interface: "inside", Bind: lo}, Leg{Interface: "outside", Bind: lo})
	if err != nil {
		t.Fatal(err)
	}
	cl := c.(*call)
	r.mu.Lock()
	delete(r.calls, cl) // as if it registered after Close took its snapshot
	r.mu.Unlock()
	r.Close()
	done := make(chan struct{})
	go func() { c.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close of a call hangs after the relay closed")
	}
	if r.ports.inUse() != 0 {
		t.Fatalf("%d ports still in use", r.ports.inUse())
	}
}

// TestReofferKeepsKey: a re-offer within the dialogs (a re-INVITE the PBX
// sends, Reoffer) offers the outside the key it has already, so the
// outside, answering with its own key of the call, goes on with the
// contexts it has (rollover and replay state kept) and no packet is lost
// to a key change. A new offer (Offer: a transfer's) brings a new key.
func TestReofferKeepsKey(t *testing.T) {
	c := newTestCall(t, newTestRelay(t, testConfig(t, 20)))
	pbx, ext := pbxToOutside(t, c, sdp.SuiteAES80)
	exchange(t, pbx, ext, "before")
	rx, tx := ext.rx, ext.tx
	// the offered key of the suite in use (the others are not kept)
	cryptoOf := func(body []byte) []string {
		t.Helper()
		s, err := sdp.Parse(body)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, v := range s.Media[0].Attrs("crypto") {
			if k, _ := sdp.ParseCrypto(v); k.Suite == sdp.SuiteAES80 {
				out = append(out, v)
			}
		}
		return out
	}
	re, err := Reoffer(c, SideA, pbx.sdpBody("RTP/AVP"))
	if err != nil {
		t.Fatal(err)
	}
	kept := cryptoOf(re)
	if len(kept) != 1 {
		t.Fatalf("the re-offer has %d keys of %s", len(kept), sdp.SuiteAES80)
	}
	answer, err := c.Answer(SideB, ext.sdpBody("RTP/SAVP", "crypto:"+ext.txKey.String()))
	if err != nil {
		t.Fatal(err)
	}
	pbx.learn(answer, 0)
	ext.rx, ext.tx = rx, tx // the outside keeps its contexts
	exchange(t, pbx, ext, "after the re-offer")
	if n := c.Stats().Legs[SideB].AuthFailures; n != 0 {
		t.Fatalf("%d authentication failures after a re-offer that kept the keys", n)
	}
	again, err := Reoffer(c, SideA, pbx.sdpBody("RTP/AVP"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cryptoOf(again), kept) {
		t.Fatalf("a second re-offer changed the keys: %v, then %v", kept, cryptoOf(again))
	}
	if _, err := c.Answer(SideB, ext.sdpBody("RTP/SAVP", "crypto:"+ext.txKey.String())); err != nil {
		t.Fatal(err)
	}
	fresh, err := c.Offer(SideA, pbx.sdpBody("RTP/AVP"))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range cryptoOf(fresh) {
		if slices.Contains(kept, k) {
			t.Fatalf("a new offer kept the key %q", k)
		}
	}
}
