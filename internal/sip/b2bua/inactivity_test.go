package b2bua

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
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
	return relayWith(t, func(c *config.Config) {
		c.Media.Policies = []config.MediaPolicy{}
		c.Media.InactivityTimeout = config.Duration(inactivity)
	})
}

// relayWith starts the real media relay for the test unit's interfaces
// (inside 127.0.0.1, outside 127.0.0.2) with the default media settings
// as mut changes them; the unit's config takes the returned media section.
func relayWith(t *testing.T, mut func(*config.Config)) (*config.Config, *media.Relay) {
	t.Helper()
	cfg := config.Default()
	cfg.Network.Interfaces = []config.Interface{{Name: "inside", Address: "127.0.0.1"}, {Name: "outside", Address: "127.0.0.2"}}
	if mut != nil {
		mut(cfg)
	}
	base := 47000 + (time.Now().Nanosecond()/1000%400)*8
	cfg.Media.PortMin, cfg.Media.PortMax = base, base+39
	relay, err := media.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { relay.Close() })
	return cfg, relay
}

// mediaAddr is where an SDP the unit sent wants the first stream's RTP.
func mediaAddr(body []byte) (netip.AddrPort, error) {
	m := sdpConn.FindStringSubmatch(string(body))
	if m == nil {
		return netip.AddrPort{}, fmt.Errorf("SDP without a media address: %q", body)
	}
	return netip.ParseAddrPort(m[1] + ":" + m[2])
}

// relayMediaAddr is mediaAddr for the test goroutine.
func relayMediaAddr(t *testing.T, body []byte) netip.AddrPort {
	t.Helper()
	ap, err := mediaAddr(body)
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

// rtpPacket is a PCMA packet whose payload starts with label.
func rtpPacket(label string, seq uint16) []byte {
	pkt := make([]byte, 12+160)
	pkt[0], pkt[1] = 0x80, 8 // RTP version 2, PCMA
	binary.BigEndian.PutUint16(pkt[2:], seq)
	binary.BigEndian.PutUint32(pkt[4:], uint32(seq)*160)
	binary.BigEndian.PutUint32(pkt[8:], 0x1eaf)
	copy(pkt[12:], label)
	return pkt
}

// streamRTP sends RTP from conn to dst every 20 ms, like a phone, until the
// returned stop is called (stop waits for the sender to finish). A peer
// that streams from the start leaves no gap for the inactivity check to
// see however slowly the test goroutine is scheduled.
func streamRTP(conn *net.UDPConn, dst netip.AddrPort, label string) (stop func()) {
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for seq := uint16(1); ; seq++ {
			_, _ = conn.WriteToUDPAddrPort(rtpPacket(label, seq), dst)
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		<-finished
	}
}

// awaitRTP reads conn until a packet with label's payload arrives; it
// fails the test after 20 s (a busy machine delays, it does not lose
// every packet on loopback).
func awaitRTP(t *testing.T, conn *net.UDPConn, label string) {
	t.Helper()
	want := rtpPacket(label, 0)[12:]
	buf := make([]byte, 1500)
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	defer conn.SetReadDeadline(time.Time{})
	for {
		n, _, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("%s: no RTP arrived through the relay: %v", label, err)
		}
		if n > 12 && bytes.Equal(buf[12:n], want) {
			return
		}
	}
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

	// Both peers send RTP from the moment they know the relay's address
	// (the trunk from the INVITE, the PBX from the 200), so the timeout
	// only has to cover scheduling hiccups between 20 ms packets; 3 s
	// (checked four times per timeout) leaves ample room on a busy machine.
	cfg, relay := plainRelay(t, 3*time.Second)

	pbx, itsp := newUDPPeers(t)
	trunkStop := make(chan func(), 1)
	trunkErr := make(chan error, 1)
	answer := answerWith("127.0.0.3", itspRTP.LocalAddr().(*net.UDPAddr).Port)
	itsp.SetOnInvite(func(s *sipgo.DialogServerSession, req *sip.Request) {
		dst, err := mediaAddr(req.Body())
		if err != nil {
			select {
			case trunkErr <- err:
			default:
			}
			_ = s.Respond(488, "Not Acceptable Here", nil)
			return
		}
		select {
		case trunkStop <- streamRTP(itspRTP, dst, "trunk to pbx"):
		default: // a second INVITE: one sender is enough
		}
		answer(s, req)
	})
	rec := &fakeRecorder{}
	u := newTestUnitWith(t, pbx, itsp, Deps{Media: relay, Calls: rec}, func(c *config.Config) { c.Media = cfg.Media })

	ctx := ctxT(t)
	sess, err := pbx.Call(ctx, u.inside(), "4930123456", testSDP("127.0.0.1", pbxRTP.LocalAddr().(*net.UDPAddr).Port))
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		select {
		case e := <-trunkErr:
			t.Fatalf("%v (trunk: %v)", err, e)
		default:
		}
		t.Fatal(err)
	}
	stopPBX := streamRTP(pbxRTP, relayMediaAddr(t, sess.InviteResponse.Body()), "pbx to trunk")
	t.Cleanup(stopPBX)
	stopTrunk := recv(t, trunkStop, "the trunk to start its RTP")
	t.Cleanup(stopTrunk)
	if err := sess.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	awaitRTP(t, itspRTP, "pbx to trunk")
	awaitRTP(t, pbxRTP, "trunk to pbx")

	// Media stops: the unit ends the call on both legs.
	stopPBX()
	stopTrunk()
	waitFor(t, func() bool { return u.Service.calls.count() == 0 }, "the unit to end the call for media inactivity")
	pbx.Next(sip.BYE)
	itsp.Next(sip.BYE)
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
