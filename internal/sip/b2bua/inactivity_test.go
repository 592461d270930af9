package b2bua

import (
	"bytes"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/media"
	"github.com/palisade-sbc/palisade/internal/observe"
)

// plainRelay is the real media relay with plain RTP on both interfaces
// (inside 127.0.0.1, outside 127.0.0.2) and the given inactivity timeout.
func plainRelay(t *testing.T, inactivity time.Duration) (*config.Config, *media.Relay) {
	t.Helper()
	cfg := config.Default()
	cfg.Network.Interfaces = []config.Interface{{Name: "inside", Address: "127.0.0.1"}, {Name: "outside", Address: "127.0.0.2"}}
	cfg.Media.Policies = []config.MediaPolicy{}
	cfg.Media.InactivityTimeout = config.Duration(inactivity)
	base := 47000 + (time.Now().Nanosecond()/1000%400)*8
	cfg.Media.PortMin, cfg.Media.PortMax = base, base+39
	relay, err := media.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { relay.Close() })
	return cfg, relay
}

// relayMediaAddr is where an SDP the unit sent wants the first stream's RTP.
func relayMediaAddr(t *testing.T, body []byte) netip.AddrPort {
	t.Helper()
	m := sdpConn.FindStringSubmatch(string(body))
	if m == nil {
		t.Fatalf("SDP without a media address: %q", body)
	}
	ap, err := netip.ParseAddrPort(m[1] + ":" + m[2])
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

// rtpThrough sends RTP from one peer's media socket to the relay until a
// packet with the same payload arrives at the other peer (bounded).
func rtpThrough(t *testing.T, from *net.UDPConn, relay netip.AddrPort, to *net.UDPConn, label string) {
	t.Helper()
	pkt := make([]byte, 12+160)
	pkt[0], pkt[1] = 0x80, 8 // RTP version 2, PCMA
	binary.BigEndian.PutUint32(pkt[8:], 0x1eaf)
	copy(pkt[12:], label)
	buf := make([]byte, 1500)
	for seq := uint16(1); seq <= 200; seq++ {
		binary.BigEndian.PutUint16(pkt[2:], seq)
		binary.BigEndian.PutUint32(pkt[4:], uint32(seq)*160)
		if _, err := from.WriteToUDPAddrPort(pkt, relay); err != nil {
			t.Fatal(err)
		}
		to.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if n, _, err := to.ReadFromUDPAddrPort(buf); err == nil && bytes.Equal(buf[12:n], pkt[12:]) {
			return
		}
	}
	t.Fatalf("%s: no RTP arrived through the relay", label)
}

// TestMediaInactivityEndsCall: a call through the B2BUA with the real media
// relay; RTP flows both ways, then stops. After media.inactivity_timeout
// the unit sends BYE on both legs, and the call record names the reason.
func TestMediaInactivityEndsCall(t *testing.T) {
	listen := func(ip string) *net.UDPConn {
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(ip), 0)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	pbxRTP, itspRTP := listen("127.0.0.1"), listen("127.0.0.3")

	// Short, but far above the few milliseconds between the answer and the
	// first packet; the check runs four times per timeout.
	cfg, relay := plainRelay(t, time.Second)

	pbx := newPeerUA(t, "pbx", "127.0.0.1", "udp")
	itsp := newPeerUA(t, "trunk", "127.0.0.3", "udp")
	itsp.setOnInvite(answerWith("127.0.0.3", itspRTP.LocalAddr().(*net.UDPAddr).Port))
	rec := &fakeRecorder{}
	u := newTestUnitWith(t, pbx, itsp, Deps{Media: relay, Calls: rec}, func(c *config.Config) { c.Media = cfg.Media })

	ctx := ctxT(t)
	sess, err := pbx.call(ctx, u.inside(), "4930123456", testSDP("127.0.0.1", pbxRTP.LocalAddr().(*net.UDPAddr).Port))
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := sess.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	inside := relayMediaAddr(t, sess.InviteResponse.Body())
	outside := relayMediaAddr(t, itsp.next(sip.INVITE).Body())
	rtpThrough(t, pbxRTP, inside, itspRTP, "pbx to trunk")
	rtpThrough(t, itspRTP, outside, pbxRTP, "trunk to pbx")

	// Media stops: the unit ends the call on both legs.
	pbx.next(sip.BYE)
	itsp.next(sip.BYE)
	waitNoCalls(t, u.Service)
	waitFor(t, func() bool { return relay.ActiveCalls() == 0 }, "the relay to release the call's ports")

	if _, _, n := rec.counts(); n != 1 {
		t.Fatalf("%d call records, want 1", n)
	}
	rec.mu.Lock()
	end := rec.ends[0]
	rec.mu.Unlock()
	if end.Code != 200 || end.EndedBy != observe.EndedByUnit || !strings.Contains(end.Reason, "inactivity") {
		t.Fatalf("call record: code %d, ended by %q, reason %q; want 200, unit, media inactivity", end.Code, end.EndedBy, end.Reason)
	}
	if len(end.Media) != 2 || end.Media[0].PacketsIn == 0 || end.Media[1].PacketsIn == 0 {
		t.Fatalf("call record media: %+v", end.Media)
	}
}

// An offer with more streams than the relay carries is refused with 488
// and a reason phrase that says why.
func TestMediaStreamLimitReason(t *testing.T) {
	var b strings.Builder
	b.WriteString("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n")
	for i := range media.MaxStreams + 1 {
		b.WriteString("m=audio " + itoa(7000+2*i) + " RTP/AVP 0\r\n")
	}
	_, relay := plainRelay(t, 0)
	mc, err := relay.NewCall("limit", media.Leg{Interface: "inside"}, media.Leg{Interface: "outside"})
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	_, err = mc.Offer(media.SideA, []byte(b.String()))
	if code, reason := statusFor(err); code != 488 || !strings.Contains(reason, "too many media streams") {
		t.Fatalf("%v: answered %d %q", err, code, reason)
	}
}
