package b2bua

import (
	"context"
	"strings"
	"testing"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/config"
)

// TestPeerNumberRules: outbound rules of the trunk rewrite the
// Request-URI, To and P-Asserted-Identity of the INVITE sent to it (E.164
// with "+", user=phone); inbound rules rewrite the number a call from the
// trunk brings before routing, so the PBX gets its extension. The caller's
// own leg is not rewritten.
func TestPeerNumberRules(t *testing.T) {
	pbx, itsp := newUDPPeers(t)
	u := newTestUnit(t, pbx, itsp, func(c *config.Config) {
		c.Peers[1].Trunk.Numbers = config.PeerNumbers{
			Outbound: []config.NumberRule{
				{Fields: []string{"request_uri", "to"}, StripPrefix: "0", AddPrefix: "+49"},
				{Fields: []string{"pai"}, Match: `(\d{3})`, Replace: "+4930555$1"},
			},
			Inbound:   []config.NumberRule{{Fields: []string{"request_uri"}, Match: `\+4930555(\d+)`, Replace: "$1"}},
			UserPhone: true,
		}
	})
	ctx := ctxT(t)
	sess, inv := callE164(t, ctx, pbx, itsp, u, sip.NewHeader("P-Asserted-Identity", "<sip:201@127.0.0.1>"))
	if pai := inv.GetHeader("P-Asserted-Identity"); pai == nil || !strings.Contains(pai.Value(), "sip:+4930555201@") {
		t.Errorf("P-Asserted-Identity %v", pai)
	}
	if got := sess.InviteResponse.To().Address.User; got != "030123456" {
		t.Errorf("the caller's leg sees To %q, want its own number", got)
	}
	_ = sess.Ack(ctx)
	hangUp(t, ctx, sess, itsp, u)

	in, err := itsp.Call(ctx, u.outside(), "+4930555201", testSDP("127.0.0.3", 7100))
	if err != nil {
		t.Fatal(err)
	}
	if err := in.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		t.Fatal(err)
	}
	if inv := pbx.Next(sip.INVITE); inv.Recipient.User != "201" {
		t.Errorf("the PBX got Request-URI %s, want extension 201", inv.Recipient.String())
	}
	_ = in.Ack(ctx)
	hangUp(t, ctx, in, pbx, u)
}

// TestURIHopToPeerIsPlacedAsPeerCall: a dial plan row that is a bare URI
// naming a configured peer (its address, or one of its trunk.targets) is
// placed as a call to that peer: its outbound number rules, its headers,
// its interface (Via, Contact and the media anchored there), not the
// interface a URI hop would take by default.
func TestURIHopToPeerIsPlacedAsPeerCall(t *testing.T) {
	for _, tc := range []struct {
		name string
		peer func(p *config.Peer, addr string)
	}{
		{"peer address", func(p *config.Peer, addr string) {}},
		{"one of trunk.targets", func(p *config.Peer, addr string) {
			p.Address, p.Domain = "", "carrier.invalid"
			p.Trunk.Targets = []string{addr}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { testURIHopToPeer(t, tc.peer) })
	}
}

func testURIHopToPeer(t *testing.T, peer func(p *config.Peer, addr string)) {
	pbx, itsp := newUDPPeers(t)
	u := newTestUnitWith(t, pbx, itsp, Deps{Media: anchorMedia{}}, func(c *config.Config) {
		// a third interface, after outside: a URI hop of a call from the
		// inside would leave from outside
		c.Network.Interfaces = append(c.Network.Interfaces, config.Interface{Name: "carrier", Address: "127.0.0.4"})
		c.SIP.Listeners = append(c.SIP.Listeners, config.Listener{Interface: "carrier", Transport: "udp"})
		p := &c.Peers[1]
		p.Interface = "carrier"
		p.Headers = map[string]string{"X-Carrier-Account": "4711"}
		p.Trunk.Numbers = config.PeerNumbers{
			Outbound:  []config.NumberRule{{Fields: []string{"request_uri", "to"}, StripPrefix: "0", AddPrefix: "+49"}},
			UserPhone: true,
		}
		peer(p, itsp.Addr.String())
		c.DialPlan.Rules = []config.DialRule{{Name: "by-uri", Head: "0", ForwardTo: []config.Forward{
			{URI: "sip:" + itsp.Addr.String()},
		}}}
	})
	ctx := ctxT(t)
	sess, inv := callE164(t, ctx, pbx, itsp, u)
	if h := inv.GetHeader("X-Carrier-Account"); h == nil || h.Value() != "4711" {
		t.Errorf("the peer's header: %v", h)
	}
	if v := inv.Via(); v.Host != "127.0.0.4" {
		t.Errorf("Via %s, want the carrier interface", v.Value())
	}
	if ct := inv.Contact(); ct == nil || ct.Address.Host != "127.0.0.4" {
		t.Errorf("Contact %v, want the carrier interface", ct)
	}
	if body := string(inv.Body()); !strings.Contains(body, "IN IP4 127.0.0.4") || strings.Contains(body, "127.0.0.2") {
		t.Errorf("media not anchored on the carrier interface:\n%s", body)
	}
	_ = sess.Ack(ctx)
	hangUp(t, ctx, sess, itsp, u)
}

// callE164 calls 030123456 from the PBX to the trunk, whose outbound rules
// make it +4930123456 with user=phone, and checks the Request-URI and To
// the trunk got.
func callE164(t *testing.T, ctx context.Context, pbx, itsp *peerUA, u *testUnit, hdrs ...sip.Header) (*sipgo.DialogClientSession, *sip.Request) {
	t.Helper()
	sess, err := pbx.Call(ctx, u.inside(), "030123456", testSDP("127.0.0.1", 7000), hdrs...)
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		t.Fatal(err)
	}
	inv := itsp.Next(sip.INVITE)
	if inv.Recipient.User != "+4930123456" || !inv.Recipient.UriParams.Has("user") {
		t.Errorf("Request-URI %s, want +4930123456 with user=phone", inv.Recipient.String())
	}
	if to := inv.To().Address; to.User != "+4930123456" {
		t.Errorf("To %s", to.String())
	}
	return sess, inv
}
