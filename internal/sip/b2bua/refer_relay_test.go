package b2bua

import (
	"net/url"
	"strings"
	"testing"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/config"
)

// TestReferRelayedHidesTopology: with no mode matching, the REFER goes to
// the other leg with the Refer-To pointing at the unit, and the NOTIFYs
// come back with nothing but the sipfrag status line.
func TestReferRelayedHidesTopology(t *testing.T) {
	pbx, itsp := referPeers(t)
	u := newTestUnit(t, pbx, itsp, nil)
	sess, srv := establish(t, u, itsp, pbx, viaOutside(u))
	// the PBX (inside) transfers to an inside extension by its address
	rep := "abc;to-tag=1;from-tag=2"
	res := refer(t, srv, srv.InviteRequest.Contact().Address,
		"<sip:201@10.20.30.40:5070;transport=udp?Replaces="+url.QueryEscape(rep)+">")
	if res.StatusCode != 202 {
		t.Fatalf("relayed REFER answered %d", res.StatusCode)
	}
	got := itsp.Next(sip.REFER)
	rt := got.GetHeader("Refer-To").Value()
	out := u.outside()
	if !strings.HasPrefix(rt, "<sip:201@"+out.String()) || !strings.Contains(rt, "Replaces=") || strings.Contains(rt, "abc") {
		t.Fatalf("Refer-To on the outside %q, want the unit's outside address", rt)
	}
	if got.CallID().Value() != sess.InviteRequest.CallID().Value() {
		t.Fatal("REFER relayed on the wrong dialog")
	}
	// the trunk reports progress; the sipfrag headers stay behind
	for _, body := range []string{"SIP/2.0 100 Trying\r\n", "SIP/2.0 200 OK\r\nContact: <sip:201@10.20.30.40>\r\n"} {
		n := sip.NewRequest(sip.NOTIFY, sess.InviteResponse.Contact().Address)
		n.AppendHeader(sip.NewHeader("Event", "refer"))
		n.AppendHeader(sip.NewHeader("Subscription-State", "active"))
		n.AppendHeader(sip.NewHeader("Content-Type", "message/sipfrag;version=2.0"))
		n.SetBody([]byte(body))
		if r, err := sess.Do(ctxT(t), n); err != nil || r.StatusCode != 200 {
			t.Fatalf("NOTIFY: %v %v", r, err)
		}
	}
	first := pbx.Next(sip.NOTIFY)
	if string(first.Body()) != "SIP/2.0 100 Trying\r\n" {
		t.Fatalf("first NOTIFY %q", first.Body())
	}
	if ev, want := first.GetHeader("Event").Value(), "refer;id="+itoa(int(res.CSeq().SeqNo)); ev != want {
		t.Fatalf("Event %q, want %q (the id of the REFER on this leg)", ev, want)
	}
	if n := pbx.Next(sip.NOTIFY); string(n.Body()) != "SIP/2.0 200 OK\r\n" {
		t.Fatalf("second NOTIFY body %q", n.Body())
	}
	for _, m := range itsp.Wire.All() {
		if strings.Contains(m, "10.20.30.40") || strings.Contains(m, "127.0.0.1") {
			t.Fatalf("inside address reached the outside:\n%s", m)
		}
	}
	for _, m := range pbx.Wire.All() {
		if strings.Contains(m, "10.20.30.40") {
			t.Fatalf("sipfrag header relayed:\n%s", m)
		}
	}
	if u.CallCount() != 1 {
		t.Fatalf("%d calls after a relayed REFER", u.CallCount())
	}
}

// TestReferModesEndToEnd: which REFERs the unit takes over, per setting.
func TestReferModesEndToEnd(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   func(c *config.Config, fromURI string)
		hdrs  []sip.Header // on the caller's INVITE
		ua    string       // User-Agent of the REFER
		local bool
	}{
		{"none", func(*config.Config, string) {}, nil, "", false},
		{"always", func(c *config.Config, _ string) { c.Routing.Refer.Always = true }, nil, "", true},
		{"transferee without REFER", func(c *config.Config, _ string) { c.Routing.Refer.NoReferSupport = true },
			[]sip.Header{sip.NewHeader("Allow", "INVITE, ACK, BYE, CANCEL")}, "", true},
		{"transferee with REFER", func(c *config.Config, _ string) { c.Routing.Refer.NoReferSupport = true },
			[]sip.Header{sip.NewHeader("Allow", "INVITE, ACK, BYE, CANCEL, REFER, NOTIFY")}, "", false},
		{"From URI", func(c *config.Config, f string) { c.Routing.Refer.FromURIs = []string{f} }, nil, "", true},
		{"other From URI", func(c *config.Config, _ string) { c.Routing.Refer.FromURIs = []string{"sip:nobody@example.com"} }, nil, "", false},
		{"User-Agent", func(c *config.Config, _ string) { c.Routing.Refer.UserAgents = []string{"exchange"} }, nil, "Microsoft-Exchange/15.0", true},
		{"other User-Agent", func(c *config.Config, _ string) { c.Routing.Refer.UserAgents = []string{"exchange"} }, nil, "Asterisk", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pbx, itsp := newUDPPeers(t)
			acceptRefer(pbx)
			acceptRefer(itsp)
			fromURI := "sip:pbx@127.0.0.1"
			u := newTestUnit(t, pbx, itsp, func(c *config.Config) { tc.cfg(c, fromURI) })
			ctx := ctxT(t)
			in := u.inside()
			hdrs := append([]sip.Header{sip.NewHeader("Content-Type", "application/sdp")}, tc.hdrs...)
			sess, err := pbx.DC.Invite(ctx, uriAt(in, "4930123"),
				testSDP("127.0.0.1", 7000), hdrs...)
			if err != nil {
				t.Fatal(err)
			}
			if f := sess.InviteRequest.From().Address; uriString(f) != fromURI {
				t.Fatalf("test assumes From %s, got %s", fromURI, uriString(f))
			}
			if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
				t.Fatal(err)
			}
			_ = sess.Ack(ctx)
			srv := itsp.Session()
			itsp.Next(sip.INVITE)
			itsp.Next(sip.ACK) // the answer is complete: srv may be used
			var h []sip.Header
			if tc.ua != "" {
				h = append(h, sip.NewHeader("User-Agent", tc.ua))
			}
			// the target is the PBX itself: a local transfer succeeds
			res := refer(t, srv, srv.InviteRequest.Contact().Address, "<sip:200@"+u.outside().String()+">", h...)
			if res.StatusCode != 202 {
				t.Fatalf("REFER answered %d", res.StatusCode)
			}
			if tc.local {
				if got := notifies(t, itsp, 2); got[1] != "SIP/2.0 200 OK" {
					t.Fatalf("NOTIFYs %q", got)
				}
				if pbx.Wire.Count("REFER ") != 0 {
					t.Fatal("REFER relayed although handled locally")
				}
			} else {
				pbx.Next(sip.REFER)
				if itsp.Wire.Count("NOTIFY ") != 0 {
					t.Fatal("the unit sent NOTIFYs for a relayed REFER")
				}
			}
		})
	}
}

// TestReferBadInput: what the unit refuses before accepting a REFER.
func TestReferBadInput(t *testing.T) {
	pbx, itsp := referPeers(t)
	u := newTestUnit(t, pbx, itsp, alwaysRefer)
	sess, srv := establish(t, u, pbx, itsp, viaInside(u))
	self := srv.InviteRequest.Contact().Address
	own := "to-tag=" + getTag(srv.InviteRequest.From().Params) + ";from-tag=" + getTag(srv.InviteResponse.To().Params)
	for _, tc := range []struct {
		name, referTo string
		code          int
	}{
		{"no Refer-To", "", 400},
		{"malformed", "<sip:200@", 400},
		{"not SIP", "<http://example.com/>", 400},
		{"not an INVITE", "<sip:200@" + u.outside().String() + ";method=BYE>", 501},
		{"to the transferor", "<sip:trunk@127.0.0.3:" + itoa(self.Port) + ">", 482},
		{"Replaces names this dialog", "<sip:200@" + u.outside().String() + "?Replaces=" +
			url.QueryEscape(srv.InviteRequest.CallID().Value()+";"+own) + ">", 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if res := refer(t, srv, self, tc.referTo); res.StatusCode != tc.code {
				t.Fatalf("answered %d, want %d", res.StatusCode, tc.code)
			}
		})
	}
	if itsp.Wire.Count("NOTIFY ") != 0 || pbx.Wire.Count("REFER ") != 0 {
		t.Fatal("a refused REFER went on")
	}
	// a second REFER while the first rings: 491
	pbx.SetOnInvite(func(s *sipgo.DialogServerSession, _ *sip.Request) {
		_ = s.Respond(180, "Ringing", nil)
		<-s.Context().Done()
	})
	if res := refer(t, srv, self, "<sip:200@"+u.outside().String()+">"); res.StatusCode != 202 {
		t.Fatalf("first REFER %d", res.StatusCode)
	}
	nextInvite(t, pbx, false)
	if res := refer(t, srv, self, "<sip:201@"+u.outside().String()+">"); res.StatusCode != 491 {
		t.Fatalf("second REFER answered %d, want 491", res.StatusCode)
	}
	_ = sess
}

// TestAttendedTransferRelayed: the PBX's attended transfer is relayed; the
// trunk side gets a stand-in Replaces and its INVITE with it takes over the
// PBX's leg of the consultation call.
func TestAttendedTransferRelayed(t *testing.T) {
	pbx, itsp := referPeers(t)
	u := newTestUnit(t, pbx, itsp, nil)
	_, srv1 := establish(t, u, itsp, pbx, viaOutside(u))
	sess2, srv2 := establish(t, u, pbx, itsp, viaInside(u))
	consult := sess2.InviteRequest.CallID().Value()
	rep := consult + ";to-tag=" + getTag(sess2.InviteResponse.To().Params) + ";from-tag=" + getTag(sess2.InviteRequest.From().Params)
	if res := refer(t, srv1, srv1.InviteRequest.Contact().Address, "<sip:300@10.1.1.1?Replaces="+url.QueryEscape(rep)+">"); res.StatusCode != 202 {
		t.Fatalf("REFER answered %d", res.StatusCode)
	}
	got := itsp.Next(sip.REFER)
	rt, err := parseReferTo(got.GetHeader("Refer-To").Value())
	if err != nil || rt.replaces == nil {
		t.Fatalf("Refer-To %q: %v", got.GetHeader("Refer-To").Value(), err)
	}
	if strings.Contains(got.GetHeader("Refer-To").Value(), url.QueryEscape(consult)) || rt.replaces.callID == consult {
		t.Fatal("the inside Call-ID crossed in Replaces")
	}
	// the transferee calls back with the Replaces it was given
	ctx := ctxT(t)
	out := u.outside()
	r := rt.replaces
	ps, err := itsp.DC.Invite(ctx, sip.Uri{Scheme: "sip", User: "300", Host: out.Addr().String(), Port: int(out.Port())},
		testSDP("127.0.0.3", 7800), sip.NewHeader("Content-Type", "application/sdp"),
		sip.NewHeader("Replaces", r.callID+";to-tag="+r.toTag+";from-tag="+r.fromTag))
	if err != nil {
		t.Fatal(err)
	}
	if err := ps.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		t.Fatal(err)
	}
	_ = ps.Ack(ctx)
	re := nextInvite(t, itsp, true)
	if re.CallID().Value() != srv2.InviteRequest.CallID().Value() || !strings.Contains(string(re.Body()), "m=audio 7800") {
		t.Fatalf("consulted party re-INVITE on %s with %q", re.CallID().Value(), re.Body())
	}
	if bye := pbx.Next(sip.BYE); bye.CallID().Value() != consult {
		t.Fatalf("BYE on %s, want the PBX's consultation leg", bye.CallID().Value())
	}
}

// TestReferSubFalse: with Refer-Sub: false (RFC 4488) the transfer runs
// without NOTIFYs.
func TestReferSubFalse(t *testing.T) {
	pbx, itsp := referPeers(t)
	u := newTestUnit(t, pbx, itsp, alwaysRefer)
	_, srv := establish(t, u, pbx, itsp, viaInside(u))
	res := refer(t, srv, srv.InviteRequest.Contact().Address, "<sip:200@"+u.outside().String()+">", sip.NewHeader("Refer-Sub", "false"))
	if rs := res.GetHeader("Refer-Sub"); res.StatusCode != 202 || rs == nil || rs.Value() != "false" {
		t.Fatalf("REFER answered %d, Refer-Sub %v", res.StatusCode, rs)
	}
	nextInvite(t, pbx, true)
	itsp.Next(sip.BYE)
	if n := itsp.Wire.Count("NOTIFY "); n != 0 {
		t.Fatalf("%d NOTIFYs despite Refer-Sub: false", n)
	}
	waitFor(t, func() bool { return u.CallCount() == 1 }, "the transferred call only")
}

// TestNoReferSupportFromAnswer: the called party's Allow (in its 200 OK)
// decides no_refer_support when the caller transfers.
func TestNoReferSupportFromAnswer(t *testing.T) {
	for _, tc := range []struct {
		allow string
		local bool
	}{
		{"INVITE, ACK, BYE, CANCEL", true},
		{"INVITE, ACK, BYE, CANCEL, REFER, NOTIFY", false},
	} {
		t.Run(tc.allow, func(t *testing.T) {
			pbx, itsp := newUDPPeers(t)
			acceptRefer(pbx)
			acceptRefer(itsp)
			itsp.SetOnInvite(func(s *sipgo.DialogServerSession, _ *sip.Request) {
				_ = s.Respond(200, "OK", testSDP("127.0.0.3", 5000), sip.NewHeader("Content-Type", "application/sdp"),
					sip.NewHeader("Allow", tc.allow),
					&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "trunk", Host: "127.0.0.3", Port: int(itsp.Addr.Port())}})
			})
			u := newTestUnit(t, pbx, itsp, func(c *config.Config) { c.Routing.Refer.NoReferSupport = true })
			sess, _ := establish(t, u, pbx, itsp, viaInside(u))
			pbx.SetOnInvite(answerWith("127.0.0.1", 6600))
			res := refer(t, sess, sess.InviteResponse.Contact().Address, "<sip:200@"+u.inside().String()+">")
			if res.StatusCode != 202 {
				t.Fatalf("REFER answered %d", res.StatusCode)
			}
			if tc.local {
				if got := notifies(t, pbx, 2); got[0] != "SIP/2.0 100 Trying" {
					t.Fatalf("NOTIFYs %q", got)
				}
				if itsp.Wire.Count("REFER ") != 0 {
					t.Fatal("REFER relayed to a party without REFER support")
				}
			} else {
				itsp.Next(sip.REFER)
			}
		})
	}
}
