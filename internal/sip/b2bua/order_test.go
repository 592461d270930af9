package b2bua

import (
	"bytes"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/observe"
)

func callIDOf(msg string) string {
	for _, l := range strings.Split(msg, "\r\n") {
		if v, ok := strings.CutPrefix(l, "Call-ID: "); ok {
			return v
		}
	}
	return ""
}

// ringTracer counts the 180s received from the trunk.
type ringTracer struct{ n atomic.Int64 }

func (r *ringTracer) TraceSIP(m observe.SIPMessage) {
	if m.Dir == observe.Received && m.Leg == "outside" && bytes.HasPrefix(m.Raw, []byte("SIP/2.0 180")) {
		r.n.Add(1)
	}
}

// A TLS trunk sending 180 and 200 back to back: every 180 is traced and
// reaches the PBX, before the 200.
func TestTLS180Then200BackToBack(t *testing.T) {
	const calls = 30
	p := newTestPKI(t)
	pbx := newPeerUA(t, "pbx", "127.0.0.1", "udp")
	itsp, _ := newTLSPeer(t, p, "127.0.0.3")
	itsp.SetOnInvite(func(s *sipgo.DialogServerSession, req *sip.Request) {
		_ = s.Respond(180, "Ringing", nil) // no gap
		_ = s.RespondSDP(testSDP("127.0.0.3", 5000))
	})
	tr := &ringTracer{}
	u := newTestUnitWith(t, pbx, nil, Deps{TLS: p, Tracer: tr}, func(c *config.Config) {
		c.SIP.Listeners = append(c.SIP.Listeners, config.Listener{Interface: "outside", Transport: "tls"})
		c.Peers = append(c.Peers, config.Peer{Name: "itsp", Kind: "itsp", Interface: "outside", Address: itsp.Addr.String(), Transport: "tls"})
		c.TLS.HandshakeTimeout = config.Duration(2 * time.Second)
	})
	ctx := ctxT(t)
	for range calls {
		sess, err := pbx.Call(ctx, u.inside(), "4930123456", testSDP("127.0.0.1", 7000))
		if err != nil {
			t.Fatal(err)
		}
		if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
			t.Fatal(err)
		}
		_ = sess.Ack(ctx)
		_ = sess.Bye(ctx)
		itsp.Next(sip.INVITE)
	}
	if n := tr.n.Load(); n != calls {
		t.Errorf("%d 180s traced from the trunk, want %d", n, calls)
	}
	// The PBX's own sipgo may drop a 180 overtaken by the 200 as well, so
	// what reached it is read from its wire: per call, 180 before 200.
	first := map[string]string{}
	for _, m := range pbx.Wire.All() {
		if !strings.Contains(m, " INVITE\r\n") || !strings.HasPrefix(m, "SIP/2.0 1") && !strings.HasPrefix(m, "SIP/2.0 2") {
			continue
		}
		id := callIDOf(m)
		if _, ok := first[id]; !ok && !strings.HasPrefix(m, "SIP/2.0 100") {
			first[id] = m[:11]
		}
	}
	if len(first) != calls {
		t.Fatalf("responses of %d calls on the PBX's wire, want %d", len(first), calls)
	}
	for id, st := range first {
		if st != "SIP/2.0 180" {
			t.Errorf("call %s: %q reached the PBX before any 180", id, st)
		}
	}
}
