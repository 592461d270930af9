package b2bua

import (
	"strings"
	"testing"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/sip/trunk"
)

// TestTransferToTeamsUser: a REFER whose Refer-To carries Teams' x-m and
// x-t (and user=phone) gives a new leg whose Request-URI keeps them; the
// new leg to a peer with own_allow carries the unit's own Allow; a 10 KB
// Refer-To is refused with 400.
func TestTransferToTeamsUser(t *testing.T) {
	pbx, itsp := newUDPPeers(t)
	backup := transferPeers(t, pbx, itsp)
	u := newTestUnit(t, pbx, itsp, func(c *config.Config) {
		c.Routing.Refer.UserAgents = []string{"teams"}
		c.Peers = append(c.Peers, config.Peer{Name: "backup", Kind: "itsp", Interface: "outside", Address: backup.Addr.String(), Transport: "udp",
			Trunk: config.PeerTrunk{OwnAllow: true}})
		c.DialPlan.Rules = []config.DialRule{{Name: "out", Prefix: "+", ForwardTo: []config.Forward{{Peer: "backup"}}}}
	})
	sess, srv := establish(t, u, itsp, pbx, viaOutside(u))
	in := u.inside()
	ua := sip.NewHeader("User-Agent", "Microsoft.Teams.SIP/2024")
	huge := "<sip:+4930123@" + in.String() + ";x-m=" + strings.Repeat("a", 10240) + ">"
	if res := refer(t, srv, srv.InviteRequest.Contact().Address, huge, ua); res.StatusCode != 400 {
		t.Fatalf("a 10 KB Refer-To answered %d, want 400", res.StatusCode)
	}
	res := refer(t, srv, srv.InviteRequest.Contact().Address,
		"<sip:+4930123@"+in.String()+";user=phone;x-m=8:orgid:abc;x-t=tenant1>", ua)
	if res.StatusCode != 202 {
		t.Fatalf("REFER answered %d", res.StatusCode)
	}
	inv := backup.Next(sip.INVITE)
	p := inv.Recipient.UriParams
	if inv.Recipient.User != "4930123" || !p.Has("x-m") || !p.Has("x-t") || !p.Has("user") {
		t.Fatalf("new leg Request-URI %s, want x-m, x-t and user=phone kept (the rule strips \"+\")", inv.Recipient.String())
	}
	if v, _ := p.Get("x-m"); v != "8:orgid:abc" {
		t.Fatalf("x-m %q", v)
	}
	if a := inv.GetHeader("Allow"); a == nil || a.Value() != trunk.Allow(true) {
		t.Fatalf("Allow %v, want the unit's own %q", a, trunk.Allow(true))
	}
	backup.Next(sip.ACK)
	finishTransfer(t, u, sess, itsp, pbx, backup, "c=IN IP4 127.0.0.4")
}

// TestHistoryInfoPerPeer: History-Info towards a peer is stripped, kept or
// rewritten (inside host replaced by the unit's) by trunk.history_info.
func TestHistoryInfoPerPeer(t *testing.T) {
	for _, tc := range []struct{ mode, want string }{
		{"strip", ""},
		{"keep", "<sip:201@10.1.2.3>;index=1"},
		{"rewrite", "<sip:201@127.0.0.2>;index=1"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			pbx, itsp := newUDPPeers(t)
			u := newTestUnit(t, pbx, itsp, func(c *config.Config) { c.Peers[1].Trunk.HistoryInfo = tc.mode })
			ctx := ctxT(t)
			sess, err := pbx.Call(ctx, u.inside(), "030123", testSDP("127.0.0.1", 7000),
				sip.NewHeader("History-Info", "<sip:201@10.1.2.3>;index=1"))
			if err != nil {
				t.Fatal(err)
			}
			if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
				t.Fatal(err)
			}
			got := ""
			if h := itsp.Next(sip.INVITE).GetHeader("History-Info"); h != nil {
				got = h.Value()
			}
			if got != tc.want {
				t.Errorf("History-Info %q, want %q", got, tc.want)
			}
			_ = sess.Ack(ctx)
			hangUp(t, ctx, sess, itsp, u)
		})
	}
}
