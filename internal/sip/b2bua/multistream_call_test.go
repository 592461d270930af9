package b2bua

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/media"
	"github.com/palisade-sbc/palisade/internal/media/sdp"
	"github.com/palisade-sbc/palisade/internal/testkit/siptest"
)

// End-to-end tests of calls with several media streams (audio + video)
// through the B2BUA and the real relay: a plain-RTP PBX inside, an SRTP
// trunk outside (AES_CM_128_HMAC_SHA1_80 required) with its own pion/srtp
// contexts built from the keys in the SDP.

// msStream is one media stream of a test peer: its RTP socket, where the
// unit wants the stream's RTP (from the unit's SDP) and, on the SRTP side,
// the peer's own contexts. Only the test goroutine touches it: the trunk's
// SIP handler hands what it learns over in a trunkStream (see lastOffer).
type msStream struct {
	kind  string
	pt    uint8
	conn  *net.UDPConn
	seq   uint16
	ssrc  uint32
	relay netip.AddrPort
	tx    *srtp.Context // nil: plain RTP
	rx    *srtp.Context
}

func newMSStream(t *testing.T, ip, kind string, ssrc uint32) *msStream {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(ip), 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	pt := uint8(8)
	if kind == "video" {
		pt = 96
	}
	return &msStream{kind: kind, pt: pt, conn: c, ssrc: ssrc}
}

func (s *msStream) port() int { return s.conn.LocalAddr().(*net.UDPAddr).Port }

// mLine writes the stream's m= section with port (0: declined) and profile.
func (s *msStream) mLine(b *strings.Builder, port int, proto, crypto string) {
	codec := "PCMA/8000"
	if s.kind == "video" {
		codec = "H264/90000"
	}
	fmt.Fprintf(b, "m=%s %d %s %d\r\na=rtpmap:%d %s\r\n", s.kind, port, proto, s.pt, s.pt, codec)
	if crypto != "" {
		b.WriteString("a=crypto:" + crypto + "\r\n")
	}
}

func msSessionHead(ip string, version int) *strings.Builder {
	var b strings.Builder
	fmt.Fprintf(&b, "v=0\r\no=- 42 %d IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\n", version, ip, ip)
	return &b
}

// pbxOffer is the PBX's plain-RTP offer; streams in off go with port 0.
func pbxOffer(ip string, version int, streams []*msStream, off ...int) []byte {
	b := msSessionHead(ip, version)
	for i, s := range streams {
		port := s.port()
		for _, o := range off {
			if o == i {
				port = 0
			}
		}
		s.mLine(b, port, "RTP/AVP", "")
	}
	return []byte(b.String())
}

// learnRelay reads an SDP the unit sent to a peer: the unit's address of
// every stream with a port (each must name a distinct port), and the ports
// of streams with port 0. It returns the unit's RTP and RTCP addresses.
func learnRelay(t *testing.T, body []byte, streams []*msStream) []netip.AddrPort {
	t.Helper()
	s, err := sdp.Parse(body)
	if err != nil {
		t.Fatalf("the unit sent SDP that does not parse: %v\n%s", err, body)
	}
	if len(s.Media) != len(streams) {
		t.Fatalf("the unit sent %d m= lines, want %d:\n%s", len(s.Media), len(streams), body)
	}
	var held []netip.AddrPort
	for i, m := range s.Media {
		if m.Kind != streams[i].kind {
			t.Fatalf("m= line %d is %s, want %s:\n%s", i, m.Kind, streams[i].kind, body)
		}
		if m.Port == 0 {
			streams[i].relay = netip.AddrPort{}
			continue
		}
		addr, ok := s.MediaConn(m)
		if !ok {
			t.Fatalf("m= line %d without an address:\n%s", i, body)
		}
		streams[i].relay = netip.AddrPortFrom(addr, uint16(m.Port))
		rtcpPort := m.Port + 1
		if r, ok := m.RTCPAttr(); ok {
			rtcpPort = r.Port
		}
		held = append(held, streams[i].relay, netip.AddrPortFrom(addr, uint16(rtcpPort)))
	}
	if len(held) == 4 && held[0] == held[2] {
		t.Fatalf("two streams share the unit's port %v:\n%s", held[0], body)
	}
	return held
}

// srtpTrunk answers the unit's offers like an SRTP trunk: every stream
// with a port gets its own fresh AES_CM_128_HMAC_SHA1_80 key, and the
// relay's key of that stream becomes the stream's receiving context.
// Streams in decline are answered with port 0.
type srtpTrunk struct {
	mu      sync.Mutex
	streams []*msStream
	decline map[int]bool
	offers  [][]byte
	keys    [][]string // the relay's key (base64) per offer and stream
	answers [][]trunkStream
	err     error
}

// trunkStream is what the trunk's answer set up for one stream: where the
// relay wants its SRTP and the trunk's contexts (zero: not answered).
type trunkStream struct {
	relay  netip.AddrPort
	rx, tx *srtp.Context
}

func srtpCtx(k sdp.Crypto) (*srtp.Context, error) {
	return srtp.CreateContext(k.Key[:16], k.Key[16:], srtp.ProtectionProfileAes128CmHmacSha1_80,
		srtp.SRTPReplayProtection(64), srtp.SRTCPReplayProtection(64))
}

func (tr *srtpTrunk) answer(offer []byte) ([]byte, error) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	body, err := tr.answerLocked(offer)
	if err != nil && tr.err == nil {
		tr.err = err
	}
	return body, err
}

func (tr *srtpTrunk) answerLocked(offer []byte) ([]byte, error) {
	tr.offers = append(tr.offers, offer)
	s, err := sdp.Parse(offer)
	if err != nil {
		return nil, fmt.Errorf("offer does not parse: %w", err)
	}
	if len(s.Media) != len(tr.streams) {
		return nil, fmt.Errorf("offer has %d m= lines, want %d", len(s.Media), len(tr.streams))
	}
	b := msSessionHead("127.0.0.3", len(tr.offers))
	keys := make([]string, len(tr.streams))
	ans := make([]trunkStream, len(tr.streams))
	for i, m := range s.Media {
		st := tr.streams[i]
		if m.Port == 0 {
			st.mLine(b, 0, m.Proto, "")
			continue
		}
		if m.Proto != "RTP/SAVP" {
			return nil, fmt.Errorf("m= line %d offered as %s, the trunk requires RTP/SAVP", i, m.Proto)
		}
		var rk *sdp.Crypto
		for _, v := range m.Attrs("crypto") {
			k, err := sdp.ParseCrypto(v)
			if err != nil || k.Suite != sdp.SuiteAES80 {
				return nil, fmt.Errorf("m= line %d: a=crypto %q is not the one suite of the policy (%v)", i, v, err)
			}
			if rk == nil {
				rk = &k
			}
		}
		if rk == nil {
			return nil, fmt.Errorf("m= line %d offers no SRTP key", i)
		}
		addr, _ := s.MediaConn(m)
		ans[i].relay = netip.AddrPortFrom(addr, uint16(m.Port))
		keys[i] = string(rk.Key)
		if tr.decline[i] {
			st.mLine(b, 0, m.Proto, "")
			continue
		}
		if ans[i].rx, err = srtpCtx(*rk); err != nil {
			return nil, err
		}
		own := sdp.Crypto{Tag: rk.Tag, Suite: sdp.SuiteAES80, Key: make([]byte, 30)}
		if _, err := rand.Read(own.Key); err != nil {
			return nil, err
		}
		if ans[i].tx, err = srtpCtx(own); err != nil {
			return nil, err
		}
		st.mLine(b, st.port(), "RTP/SAVP", own.String())
	}
	tr.keys = append(tr.keys, keys)
	tr.answers = append(tr.answers, ans)
	return []byte(b.String()), nil
}

// lastOffer is the latest offer the trunk got and the relay's keys in it;
// it fails the test unless the trunk got want offers so far. It hands the
// trunk's answer to that offer over to the streams (the test goroutine is
// the only one that touches them; the SIP handler only writes tr).
func (tr *srtpTrunk) lastOffer(t *testing.T, want int) ([]byte, []string) {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.err != nil {
		t.Fatalf("the trunk refused the unit's offer: %v", tr.err)
	}
	if len(tr.offers) != want {
		t.Fatalf("the trunk got %d offers, want %d", len(tr.offers), want)
	}
	for i, a := range tr.answers[len(tr.answers)-1] {
		st := tr.streams[i]
		if a.relay.IsValid() {
			st.relay = a.relay
		}
		if a.rx != nil {
			st.rx, st.tx = a.rx, a.tx
		}
	}
	return tr.offers[len(tr.offers)-1], tr.keys[len(tr.keys)-1]
}

// failure is why the trunk refused an offer (nil: it did not).
func (tr *srtpTrunk) failure() error {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.err
}

// srtpTrunkPeer is a trunk UA that answers INVITE and re-INVITE with tr.
func srtpTrunkPeer(t *testing.T, tr *srtpTrunk) *peerUA {
	return newPeerUAWith(t, "trunk", "127.0.0.3", "udp", func(p *peerUA) {
		p.OnInvite = func(s *sipgo.DialogServerSession, req *sip.Request) {
			body, err := tr.answer(req.Body())
			if err != nil {
				_ = s.Respond(488, "Not Acceptable Here", nil)
				return
			}
			_ = s.RespondSDP(body)
		}
		p.Respond = func(req *sip.Request) (int, []byte) {
			if req.Method != sip.INVITE {
				return 200, nil
			}
			body, err := tr.answer(req.Body())
			if err != nil {
				return 488, nil
			}
			return 200, body
		}
	})
}

// msUnit is the unit with the real relay: the inside plain RTP, the outside
// requiring SRTP with AES_CM_128_HMAC_SHA1_80 only.
func msUnit(t *testing.T, pbx, itsp *peerUA) (*testUnit, *media.Relay) {
	t.Helper()
	cfg, relay := plainRelay(t, 0)
	cfg.Media.CryptoSuiteGroups = append(cfg.Media.CryptoSuiteGroups,
		config.CryptoSuiteGroup{Name: "SRTP80", Suites: []string{sdp.SuiteAES80}})
	cfg.Media.Policies = []config.MediaPolicy{{Interface: "outside", Group: "SRTP80", Requirement: "srtp"}}
	if err := relay.Apply(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	u := newTestUnitWith(t, pbx, itsp, Deps{Media: relay}, func(c *config.Config) { c.Media = cfg.Media })
	return u, relay
}

func (s *msStream) send(t *testing.T, payload []byte) {
	t.Helper()
	s.seq++
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: s.pt, SequenceNumber: s.seq,
		Timestamp: uint32(s.seq) * 160, SSRC: s.ssrc}, Payload: payload}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if s.tx != nil {
		if b, err = s.tx.EncryptRTP(nil, b, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.conn.WriteToUDPAddrPort(b, s.relay); err != nil {
		t.Fatal(err)
	}
}

// recv reads what arrives on the stream's socket for at most wait and
// reports whether one packet (decrypted on an SRTP stream) carried payload
// with payload type pt. Packets of an older key (before the answer switched
// the path) fail authentication and are skipped. The bound is overall: a
// stream of other packets does not keep it reading.
func (s *msStream) recv(payload []byte, pt uint8, wait time.Duration) bool {
	buf := make([]byte, 1500)
	_ = s.conn.SetReadDeadline(time.Now().Add(wait))
	for {
		n, _, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return false
		}
		b := buf[:n]
		if s.rx != nil {
			if b, err = s.rx.DecryptRTP(nil, b, nil); err != nil {
				continue
			}
		}
		var p rtp.Packet
		if p.Unmarshal(b) == nil && p.PayloadType == pt && bytes.Equal(p.Payload, payload) {
			return true
		}
	}
}

// throughWithin bounds through: loopback loses nothing, so only a machine
// too busy to run the relay for this long fails it.
const throughWithin = 20 * time.Second

// through sends RTP on stream from every 20 ms, like a phone, until its
// payload arrives intact on stream to (bounded by throughWithin: the first
// packets may be late or dropped while the relay latches), then checks
// that it did not also arrive on the receiving peer's other stream.
func through(t *testing.T, from, to, other *msStream, label string) {
	t.Helper()
	payload := bytes.Repeat([]byte(label+"|"), 160/(len(label)+1)+1)[:160]
	deadline := time.Now().Add(throughWithin)
	for sent := 0; sent == 0 || time.Now().Before(deadline); sent++ {
		from.send(t, payload)
		if to.recv(payload, from.pt, 20*time.Millisecond) {
			// Every packet sent so far had its chance to go astray.
			if other != nil && other.relay.IsValid() && other.recv(payload, from.pt, 100*time.Millisecond) {
				t.Fatalf("%s: the payload also arrived on the %s stream", label, other.kind)
			}
			return
		}
	}
	t.Fatalf("%s: no RTP with the payload arrived on the %s stream within %v", label, to.kind, throughWithin)
}

// relayPortsInUse is the media package's palisade_media_ports_in_use gauge:
// the relay's own count of the ports its calls hold (every relay of this
// test binary; the tests of this package do not run in parallel).
func relayPortsInUse(t *testing.T) float64 {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "palisade_media_ports_in_use" && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("the media package exports no palisade_media_ports_in_use gauge")
	return 0
}

// heldHere reports whether this process has a UDP socket bound to a, from
// /proc/net/udp and /proc/self/fd (ok false where there is no /proc). Unlike
// binding the port again it cannot be fooled by another program that took
// the port after the relay let it go.
func heldHere(a netip.AddrPort) (held, ok bool) {
	if !a.Addr().Is4() {
		return false, false
	}
	tab, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		return false, false
	}
	ip := a.Addr().As4()
	local := fmt.Sprintf("%08X:%04X", binary.NativeEndian.Uint32(ip[:]), a.Port())
	inodes := map[string]bool{}
	for _, line := range strings.Split(string(tab), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 9 && f[1] == local {
			inodes["socket:["+f[9]+"]"] = true
		}
	}
	if len(inodes) == 0 {
		return false, true
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return false, false
	}
	for _, fd := range fds {
		if l, err := os.Readlink("/proc/self/fd/" + fd.Name()); err == nil && inodes[l] {
			return true, true
		}
	}
	return false, true
}

// portsReleased waits until the relay's count of ports in use is want and
// no socket of this process is bound to any address in addrs any more.
func portsReleased(t *testing.T, what string, want float64, addrs []netip.AddrPort) {
	t.Helper()
	waitFor(t, func() bool { return relayPortsInUse(t) == want },
		fmt.Sprintf("%s: the relay's ports in use to drop to %v", what, want))
	for _, a := range addrs {
		waitFor(t, func() bool { held, _ := heldHere(a); return !held },
			fmt.Sprintf("%s: the relay to close its socket on %v", what, a))
	}
	if got := relayPortsInUse(t); got != want {
		t.Fatalf("%s: %v relay ports in use, want %v", what, got, want)
	}
}

// wireHas reports whether a raw message that starts with prefix and holds
// line was received.
func wireHas(w *siptest.WireLog, prefix, line string) bool {
	for _, m := range w.All() {
		if strings.HasPrefix(m, prefix) && strings.Contains(m, line) {
			return true
		}
	}
	return false
}

func mediaLine(t *testing.T, body []byte, i int) *sdp.Media {
	t.Helper()
	s, err := sdp.Parse(body)
	if err != nil || len(s.Media) <= i {
		t.Fatalf("SDP without m= line %d (%v):\n%s", i, err, body)
	}
	return s.Media[i]
}

// msFixture is an established audio + video call from the plain PBX
// through the unit and the real relay to the SRTP trunk.
type msFixture struct {
	u          *testUnit
	relay      *media.Relay
	itsp       *peerUA
	tr         *srtpTrunk
	sess       *sipgo.DialogClientSession
	pbxS, trS  []*msStream
	ctx        context.Context
	firstOffer []byte   // the unit's offer to the trunk
	firstKeys  []string // the relay's keys in it
	basePorts  float64  // relay ports in use before the call
}

// msCtx bounds one test's SIP exchanges. It is longer than ctxT's because
// every RTP check may take up to throughWithin on a busy machine.
func msCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// msCall places the call; the trunk answers the m= lines in decline with
// port 0.
func msCall(t *testing.T, decline map[int]bool) *msFixture {
	t.Helper()
	f := &msFixture{
		pbxS: []*msStream{newMSStream(t, "127.0.0.1", "audio", 0xa1), newMSStream(t, "127.0.0.1", "video", 0xb1)},
		trS:  []*msStream{newMSStream(t, "127.0.0.3", "audio", 0xa2), newMSStream(t, "127.0.0.3", "video", 0xb2)},
		ctx:  msCtx(t),
	}
	f.tr = &srtpTrunk{streams: f.trS, decline: decline}
	pbx := newPeerUA(t, "pbx", "127.0.0.1", "udp")
	f.itsp = srtpTrunkPeer(t, f.tr)
	f.u, f.relay = msUnit(t, pbx, f.itsp)
	f.basePorts = relayPortsInUse(t)
	sess, err := pbx.Call(f.ctx, f.u.inside(), "4930123456", pbxOffer("127.0.0.1", 1, f.pbxS))
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.WaitAnswer(f.ctx, sipgo.AnswerOptions{}); err != nil {
		var de *sipgo.ErrDialogResponse
		if errors.As(err, &de) {
			t.Fatalf("call refused with %d %s (trunk: %v)", de.Res.StatusCode, de.Res.Reason, f.tr.failure())
		}
		t.Fatal(err)
	}
	if err := sess.Ack(f.ctx); err != nil {
		t.Fatal(err)
	}
	f.sess = sess
	f.firstOffer, f.firstKeys = f.tr.lastOffer(t, 1)
	return f
}

// hangUp ends the call from the PBX and checks that the unit and the
// relay let go of it and that every relay address in held is free.
func (f *msFixture) hangUp(t *testing.T, held []netip.AddrPort) {
	t.Helper()
	if err := f.sess.Bye(f.ctx); err != nil {
		t.Fatal(err)
	}
	f.itsp.Next(sip.BYE)
	waitNoCalls(t, f.u.Service)
	waitFor(t, func() bool { return f.relay.ActiveCalls() == 0 }, "the relay to forget the call")
	portsReleased(t, "after BYE", f.basePorts, held)
}

// TestMultiStreamCallSRTPTrunk: a PBX call with audio and video to an SRTP
// trunk. Both streams are anchored with their own ports and keys, RTP
// flows both ways on each stream with its bytes intact; a re-INVITE from
// the PBX that turns video off (port 0) reaches the trunk with video port
// 0 and the audio key kept (media.Reoffer), audio keeps flowing, video ports are released;
// after BYE every relay port is free.
func TestMultiStreamCallSRTPTrunk(t *testing.T) {
	f := msCall(t, nil)
	pbxS, trS, sess, ctx := f.pbxS, f.trS, f.sess, f.ctx
	offer, keys1 := f.firstOffer, f.firstKeys
	if bytes.Contains(offer, []byte("127.0.0.1")) {
		t.Fatalf("the inside address reached the trunk:\n%s", offer)
	}
	for i := range 2 {
		if m := mediaLine(t, offer, i); m.Proto != "RTP/SAVP" || m.Port == 0 {
			t.Fatalf("m= line %d to the trunk is not SRTP on a port:\n%s", i, offer)
		}
	}
	if keys1[0] == keys1[1] {
		t.Fatal("audio and video got the same SRTP key")
	}
	outside := learnRelay(t, offer, trS)
	answer := sess.InviteResponse.Body()
	inside := learnRelay(t, answer, pbxS)
	// Two streams, a pair on each leg: 8 ports (the check of the release
	// below would pass on a relay that never counted them).
	if got := relayPortsInUse(t); got != f.basePorts+8 {
		t.Fatalf("%v relay ports in use during the call, want %v", got-f.basePorts, 8)
	}
	for _, a := range append(append([]netip.AddrPort(nil), inside...), outside...) {
		if held, ok := heldHere(a); ok && !held {
			t.Fatalf("no socket of the relay on %v during the call", a)
		}
	}
	for i := range 2 {
		if m := mediaLine(t, answer, i); m.Proto != "RTP/AVP" || m.Has("crypto") {
			t.Fatalf("m= line %d to the PBX is not plain RTP:\n%s", i, answer)
		}
	}

	for i, kind := range []string{"audio", "video"} {
		j := 1 - i
		through(t, pbxS[i], trS[i], trS[j], kind+" pbx to trunk")
		through(t, trS[i], pbxS[i], pbxS[j], kind+" trunk to pbx")
	}

	// The PBX turns video off.
	re := sip.NewRequest(sip.INVITE, sess.InviteResponse.Contact().Address)
	re.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	re.SetBody(pbxOffer("127.0.0.1", 2, pbxS, 1))
	res, err := sess.Do(ctx, re)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("re-INVITE: %v %v (trunk: %v)", res, err, f.tr.failure())
	}
	if err := sess.WriteRequest(sip.NewRequest(sip.ACK, sess.InviteResponse.Contact().Address)); err != nil {
		t.Fatal(err)
	}
	reOffer, keys2 := f.tr.lastOffer(t, 2)
	if v := mediaLine(t, reOffer, 1); v.Port != 0 || v.Kind != "video" {
		t.Fatalf("re-offer to the trunk does not turn video off:\n%s", reOffer)
	}
	// The removed line keeps the offerer's profile (RTP/AVP): RFC 3264
	// lets a port-0 line carry anything, so only the port is checked.
	if !wireHas(f.itsp.Wire, "INVITE ", "\nm=video 0 RTP/") {
		t.Fatal("no re-INVITE with \"m=video 0\" on the trunk's wire")
	}
	// A re-INVITE within the dialogs keeps the audio key (media.Reoffer):
	// the trunk need not switch keys.
	if keys2[0] == "" || keys2[0] != keys1[0] {
		t.Fatalf("the re-offer changed the audio key (or has none), was %q:\n%s", keys1[0], reOffer)
	}
	if v := mediaLine(t, res.Body(), 1); v.Port != 0 {
		t.Fatalf("answer to the PBX keeps video on:\n%s", res.Body())
	}
	// Audio keeps its ports on both legs.
	if got := learnRelay(t, reOffer, trS); len(got) != 2 || got[0] != outside[0] {
		t.Fatalf("audio moved on the outside: %v, was %v", got, outside[:2])
	}
	if got := learnRelay(t, res.Body(), pbxS); len(got) != 2 || got[0] != inside[0] {
		t.Fatalf("audio moved on the inside: %v, was %v", got, inside[:2])
	}
	// Audio's pair on each leg stays (2 legs × RTP+RTCP), video's is gone.
	portsReleased(t, "video off", f.basePorts+4, append(append([]netip.AddrPort(nil), inside[2:]...), outside[2:]...))
	through(t, pbxS[0], trS[0], nil, "audio pbx to trunk after re-INVITE")
	through(t, trS[0], pbxS[0], nil, "audio trunk to pbx after re-INVITE")

	f.hangUp(t, append(inside, outside...))
}

// TestMultiStreamVideoDeclinedByTrunk: the trunk answers the video stream
// with port 0. The call is up with audio flowing both ways, the PBX's
// answer declines video, and after BYE every port is free (the relay
// keeps a stream declined in an answer until the next offer or the end of
// the call, so the video ports are checked only then).
func TestMultiStreamVideoDeclinedByTrunk(t *testing.T) {
	f := msCall(t, map[int]bool{1: true})
	pbxS, trS, offer := f.pbxS, f.trS, f.firstOffer
	if v := mediaLine(t, offer, 1); v.Port == 0 {
		t.Fatalf("video was not offered to the trunk:\n%s", offer)
	}
	outside := learnRelay(t, offer, trS)
	answer := f.sess.InviteResponse.Body()
	if v := mediaLine(t, answer, 1); v.Port != 0 || v.Kind != "video" {
		t.Fatalf("the PBX's answer does not decline video:\n%s", answer)
	}
	if a := mediaLine(t, answer, 0); a.Port == 0 || a.Proto != "RTP/AVP" {
		t.Fatalf("the PBX's answer has no plain audio:\n%s", answer)
	}
	inside := learnRelay(t, answer, pbxS)
	through(t, pbxS[0], trS[0], nil, "audio pbx to trunk")
	through(t, trS[0], pbxS[0], nil, "audio trunk to pbx")

	f.hangUp(t, append(inside, outside...))
}
