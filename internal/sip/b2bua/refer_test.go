package b2bua

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/media"
)

func TestReferModeDecision(t *testing.T) {
	full := referInput{otherAllow: "INVITE, ACK, BYE, REFER, NOTIFY", otherSupported: "replaces, timer",
		fromURIs: []string{"sip:alice@pbx.example.com"}, userAgent: "Microsoft.Teams/1.0"}
	for _, tc := range []struct {
		name string
		cfg  config.Refer
		in   func(referInput) referInput
		want string
	}{
		{"nothing configured relays", config.Refer{}, nil, ""},
		{"always", config.Refer{Always: true}, nil, modeAlways},
		{"no REFER in Allow", config.Refer{NoReferSupport: true}, func(i referInput) referInput { i.otherAllow = "INVITE, ACK, BYE"; return i }, modeNoRefer},
		{"no Allow at all", config.Refer{NoReferSupport: true}, func(i referInput) referInput { i.otherAllow = ""; return i }, modeNoRefer},
		{"REFER in Allow relays", config.Refer{NoReferSupport: true}, nil, ""},
		{"attended, no replaces", config.Refer{NoReplacesSupport: true}, func(i referInput) referInput {
			i.hasReplaces, i.otherSupported = true, "timer"
			return i
		}, modeNoReplaces},
		{"attended, replaces supported", config.Refer{NoReplacesSupport: true}, func(i referInput) referInput { i.hasReplaces = true; return i }, ""},
		{"blind, no replaces: not this mode", config.Refer{NoReplacesSupport: true}, func(i referInput) referInput { i.otherSupported = ""; return i }, ""},
		{"From URI", config.Refer{FromURIs: []string{"SIP:Alice@pbx.example.com"}}, nil, modeFromURI},
		{"From domain", config.Refer{FromURIs: []string{"pbx.example.com"}}, nil, modeFromURI},
		{"other From URI", config.Refer{FromURIs: []string{"sip:bob@pbx.example.com"}}, nil, ""},
		{"User-Agent substring", config.Refer{UserAgents: []string{"teams"}}, nil, modeUserAgent},
		{"other User-Agent", config.Refer{UserAgents: []string{"Asterisk"}}, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := full
			if tc.in != nil {
				in = tc.in(in)
			}
			if got := referMode(tc.cfg, in); got != tc.want {
				t.Fatalf("mode %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseReferTo(t *testing.T) {
	for _, tc := range []struct {
		in       string
		user     string
		replaces string // call-id, "" for none
		bad      bool
	}{
		{"<sip:200@10.0.0.5>", "200", "", false},
		{"sip:200@10.0.0.5;method=INVITE", "200", "", false},
		{`"Bob" <sip:bob@pbx.example.com:5070;transport=tcp>`, "bob", "", false},
		{"<sip:bob@pbx?Replaces=abc%40host%3Bto-tag%3D1%3Bfrom-tag%3D2>", "bob", "abc@host", false},
		{"<sip:bob@pbx?Replaces=abc%3Bto-tag%3D1>", "", "", true},
		{"<tel:+4930123>", "", "", true},
		{"<sip:bob@pbx", "", "", true},
		{"", "", "", true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			rt, err := parseReferTo(tc.in)
			if tc.bad {
				if err == nil {
					t.Fatalf("accepted %q", tc.in)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rt.uri.User != tc.user {
				t.Fatalf("user %q", rt.uri.User)
			}
			if got := ""; rt.replaces != nil {
				got = rt.replaces.callID
				if got != tc.replaces {
					t.Fatalf("replaces %q", got)
				}
			} else if tc.replaces != "" {
				t.Fatal("Replaces lost")
			}
		})
	}
}

func FuzzParseReferTo(f *testing.F) {
	for _, s := range []string{"<sip:200@10.0.0.5>", "<sip:b@h?Replaces=a%3Bto-tag%3D1%3Bfrom-tag%3D2>", "sip:x@y;z", "<>", "<sip:@>?"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = parseReferTo(s)
		_, _ = parseReplaces(s)
	})
}

// referPeers is the usual transfer lab: a PBX on the inside and a trunk on
// the outside, both over UDP and both accepting REFER.
func referPeers(t *testing.T) (pbx, itsp *peerUA) {
	t.Helper()
	pbx = newPeerUA(t, "pbx", "127.0.0.1", "udp")
	itsp = newPeerUA(t, "trunk", "127.0.0.3", "udp")
	acceptRefer(pbx)
	acceptRefer(itsp)
	return pbx, itsp
}

// acceptRefer makes p answer REFER with 202 (newPeerUA queues REFERs).
// transferPeers lets the PBX and the trunk take REFERs and starts a second
// trunk, "backup" on 127.0.0.4, that answers every INVITE.
func transferPeers(t *testing.T, pbx, itsp *peerUA) *peerUA {
	t.Helper()
	backup := newPeerUA(t, "backup", "127.0.0.4", "udp")
	acceptRefer(pbx)
	acceptRefer(itsp)
	backup.SetOnInvite(answerWith("127.0.0.4", 6700))
	return backup
}

func acceptRefer(p *peerUA) {
	p.SetRespond(func(req *sip.Request) (int, []byte) {
		if req.Method == sip.REFER {
			return 202, nil
		}
		if req.Method == sip.INVITE {
			return 200, testSDP(p.IP, 4000)
		}
		return 200, nil
	})
}

// refer sends a REFER in the dialog of d and returns the response.
func refer(t *testing.T, d interface {
	Do(context.Context, *sip.Request) (*sip.Response, error)
}, target sip.Uri, referTo string, hdrs ...sip.Header) *sip.Response {
	t.Helper()
	req := sip.NewRequest(sip.REFER, target)
	if referTo != "" {
		req.AppendHeader(sip.NewHeader("Refer-To", referTo))
	}
	for _, h := range hdrs {
		req.AppendHeader(h)
	}
	res, err := d.Do(ctxT(t), req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// notifies reads n NOTIFYs from p and returns their sipfrag bodies.
func notifies(t *testing.T, p *peerUA, n int) []string {
	t.Helper()
	var out []string
	for range n {
		r := p.Next(sip.NOTIFY)
		if ev := r.GetHeader("Event"); ev == nil || !strings.HasPrefix(ev.Value(), "refer") {
			t.Fatalf("NOTIFY Event %v", ev)
		}
		if ct := r.GetHeader("Content-Type"); ct == nil || !strings.HasPrefix(ct.Value(), "message/sipfrag") {
			t.Fatalf("NOTIFY Content-Type %v", ct)
		}
		ss := r.GetHeader("Subscription-State")
		body := strings.TrimSpace(string(r.Body()))
		if ss == nil || (strings.HasPrefix(body, "SIP/2.0 1") != strings.HasPrefix(ss.Value(), "active")) {
			t.Fatalf("Subscription-State %v for %q", ss, body)
		}
		out = append(out, body)
	}
	return out
}

func answerWith(ip string, port int) func(s *sipgo.DialogServerSession, req *sip.Request) {
	return func(s *sipgo.DialogServerSession, req *sip.Request) {
		_ = s.Respond(180, "Ringing", nil)
		_ = s.RespondSDP(testSDP(ip, port))
	}
}

// nextWithTag returns the next INVITE p received that is (or is not) in a dialog.
func nextInvite(t *testing.T, p *peerUA, inDialog bool) *sip.Request {
	t.Helper()
	for range 5 {
		r := p.Next(sip.INVITE)
		if (getTag(r.To().Params) != "") == inDialog {
			return r
		}
	}
	t.Fatalf("%s: no INVITE (in dialog %v)", p.Name, inDialog)
	return nil
}

func alwaysRefer(c *config.Config) { c.Routing.Refer.Always = true }

// TestBlindTransferToInsideTarget: the trunk side (Teams-like) transfers a
// call from the PBX to another PBX extension; the unit handles the REFER.
func TestBlindTransferToInsideTarget(t *testing.T) {
	pbx, itsp := referPeers(t)
	u := newTestUnit(t, pbx, itsp, alwaysRefer)
	sess, srv := establish(t, u, pbx, itsp, viaInside(u))
	pbx.SetOnInvite(answerWith("127.0.0.1", 6600))

	out := u.outside()
	res := refer(t, srv, srv.InviteRequest.Contact().Address, "<sip:200@"+out.String()+">")
	if res.StatusCode != 202 {
		t.Fatalf("REFER answered %d", res.StatusCode)
	}
	if got := notifies(t, itsp, 2); got[0] != "SIP/2.0 100 Trying" || got[1] != "SIP/2.0 200 OK" {
		t.Fatalf("NOTIFY bodies %q", got)
	}
	inv := nextInvite(t, pbx, false)
	if inv.Recipient.User != "200" || !strings.Contains(string(inv.Body()), "m=audio ") {
		t.Fatalf("new leg INVITE %s body %q, want an offer as for a new call", inv.Recipient.String(), inv.Body())
	}
	re := nextInvite(t, pbx, true)
	if re.CallID().Value() != sess.InviteRequest.CallID().Value() || !strings.Contains(string(re.Body()), "m=audio 6600") {
		t.Fatalf("transferee re-INVITE (Call-ID %s) body %q, want the target's SDP", re.CallID().Value(), re.Body())
	}
	itsp.Next(sip.BYE)
	waitFor(t, func() bool { return u.CallCount() == 1 }, "the transferred call only")
	// the transferee hangs up: the unit ends the new leg
	if err := sess.Bye(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if bye := pbx.Next(sip.BYE); bye.CallID().Value() != inv.CallID().Value() {
		t.Fatalf("BYE on %s, want the new leg %s", bye.CallID().Value(), inv.CallID().Value())
	}
	waitNoCalls(t, u.Service)
}

// TestBlindTransferToOutsideTarget: the PBX transfers a call from the trunk
// to an outside number on another trunk (dial plan); chosen by User-Agent.
func TestBlindTransferToOutsideTarget(t *testing.T) {
	pbx, itsp := newUDPPeers(t)
	backup := transferPeers(t, pbx, itsp)
	u := newTestUnit(t, pbx, itsp, func(c *config.Config) {
		c.Routing.Refer.UserAgents = []string{"teams"}
		c.Peers = append(c.Peers, config.Peer{Name: "backup", Kind: "itsp", Interface: "outside", Address: backup.Addr.String(), Transport: "udp"})
		c.DialPlan.Rules = []config.DialRule{{Name: "out", Prefix: "0", Tail: "0-9", ForwardTo: []config.Forward{{Peer: "backup"}}}}
	})
	sess, srv := establish(t, u, itsp, pbx, viaOutside(u))
	in := u.inside()
	res := refer(t, srv, srv.InviteRequest.Contact().Address, "<sip:0301234@"+in.String()+">",
		sip.NewHeader("User-Agent", "Microsoft.Teams.SIP/2024"), sip.NewHeader("Referred-By", "<sip:alice@10.9.9.9>"))
	if res.StatusCode != 202 {
		t.Fatalf("REFER answered %d", res.StatusCode)
	}
	if got := notifies(t, pbx, 2); got[1] != "SIP/2.0 200 OK" {
		t.Fatalf("NOTIFY bodies %q", got)
	}
	inv := backup.Next(sip.INVITE)
	if inv.Recipient.User != "301234" {
		t.Fatalf("target got %s", inv.Recipient.String())
	}
	if rb := inv.GetHeader("Referred-By"); rb == nil || strings.Contains(rb.Value(), "10.9.9.9") {
		t.Fatalf("Referred-By %v", rb)
	}
	if !strings.Contains(string(inv.Body()), "m=audio 7000") {
		t.Fatalf("the target's INVITE carries %q, want the transferee's session as the offer", inv.Body())
	}
	backup.Next(sip.ACK)
	finishTransfer(t, u, sess, itsp, pbx, backup, "c=IN IP4 127.0.0.4")
}

// finishTransfer checks the end of a blind transfer of the call sess (from
// the trunk itsp, transferred by the PBX pbx) to target: the transferee's
// re-INVITE carries want, the transferor's leg ends, and when the
// transferee hangs up the target gets the BYE.
func finishTransfer(t *testing.T, u *testUnit, sess *sipgo.DialogClientSession, itsp, pbx, target *peerUA, want string) {
	t.Helper()
	re := nextInvite(t, itsp, true)
	if !strings.Contains(string(re.Body()), want) || re.CallID().Value() != sess.InviteRequest.CallID().Value() {
		t.Fatalf("transferee re-INVITE body %q, want %q", re.Body(), want)
	}
	pbx.Next(sip.BYE)
	waitFor(t, func() bool { return u.CallCount() == 1 }, "the transferred call only")
	if err := sess.Bye(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	target.Next(sip.BYE)
	waitNoCalls(t, u.Service)
}

// TestTransferFailureKeepsCall: a busy target is reported as NOTIFY 486 and
// the original call goes on.
func TestTransferFailureKeepsCall(t *testing.T) {
	for _, tc := range []struct {
		name   string
		target func(s *sipgo.DialogServerSession, req *sip.Request)
		want   string
	}{
		{"busy", func(s *sipgo.DialogServerSession, _ *sip.Request) { _ = s.Respond(486, "Busy Here", nil) }, "SIP/2.0 486 Busy Here"},
		{"no answer", func(s *sipgo.DialogServerSession, _ *sip.Request) { _ = s.Respond(180, "Ringing", nil) }, "SIP/2.0 480 Temporarily Unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pbx, itsp := newUDPPeers(t)
			acceptRefer(pbx)
			acceptRefer(itsp)
			u := newTestUnit(t, pbx, itsp, func(c *config.Config) {
				c.Routing.Refer.Always = true
				c.SIP.NoAnswerTimeout = config.Duration(300 * time.Millisecond)
			})
			sess, srv := establish(t, u, pbx, itsp, viaInside(u))
			pbx.SetOnInvite(tc.target)
			res := refer(t, srv, srv.InviteRequest.Contact().Address, "<sip:200@"+u.outside().String()+">")
			if res.StatusCode != 202 {
				t.Fatalf("REFER answered %d", res.StatusCode)
			}
			if got := notifies(t, itsp, 2); got[0] != "SIP/2.0 100 Trying" || got[1] != tc.want {
				t.Fatalf("NOTIFY bodies %q, want %q", got, tc.want)
			}
			if n := itsp.Wire.Count("BYE "); n != 0 {
				t.Fatal("the transferor was hung up after a failed transfer")
			}
			if u.CallCount() != 1 {
				t.Fatalf("%d calls", u.CallCount())
			}
			// the original call still works end to end
			if err := srv.Bye(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			if bye := pbx.Next(sip.BYE); bye.CallID().Value() != sess.InviteRequest.CallID().Value() {
				t.Fatalf("BYE on %s", bye.CallID().Value())
			}
			waitNoCalls(t, u.Service)
		})
	}
}

// TestAttendedTransferLocal: the trunk side has the PBX party on hold
// (call 1) and consulted a second PBX party (call 2); its REFER with
// Replaces joins the two PBX parties and ends both of its legs.
func TestAttendedTransferLocal(t *testing.T) {
	pbx, itsp := newUDPPeers(t)
	acceptRefer(itsp)
	u := newTestUnit(t, pbx, itsp, func(c *config.Config) { c.Routing.Refer.NoReplacesSupport = true })
	sess1, srv1 := establish(t, u, pbx, itsp, viaInside(u))
	sess2, srv2 := establish(t, u, itsp, pbx, viaOutside(u))
	consult := srv2.InviteRequest.CallID().Value()
	pbx.SetRespond(func(req *sip.Request) (int, []byte) {
		if req.Method != sip.INVITE {
			return 200, nil
		}
		if req.CallID().Value() == consult {
			return 200, testSDP("127.0.0.1", 4444) // the consulted party's offer
		}
		return 200, testSDP("127.0.0.1", 4000)
	})
	rep := sess2.InviteRequest.CallID().Value() + ";to-tag=" + getTag(sess2.InviteResponse.To().Params) +
		";from-tag=" + getTag(sess2.InviteRequest.From().Params)
	res := refer(t, srv1, srv1.InviteRequest.Contact().Address,
		"<sip:200@"+u.outside().String()+"?Replaces="+url.QueryEscape(rep)+">")
	if res.StatusCode != 202 {
		t.Fatalf("REFER answered %d", res.StatusCode)
	}
	if got := notifies(t, itsp, 2); got[1] != "SIP/2.0 200 OK" {
		t.Fatalf("NOTIFY bodies %q", got)
	}
	c := nextInvite(t, pbx, true)
	e := nextInvite(t, pbx, true)
	if c.CallID().Value() != consult || len(c.Body()) != 0 {
		t.Fatalf("first re-INVITE to %s with %q, want the consulted party without SDP", c.CallID().Value(), c.Body())
	}
	if e.CallID().Value() != sess1.InviteRequest.CallID().Value() || !strings.Contains(string(e.Body()), "m=audio 4444") {
		t.Fatalf("transferee re-INVITE %s body %q", e.CallID().Value(), e.Body())
	}
	itsp.Next(sip.BYE)
	itsp.Next(sip.BYE)
	waitFor(t, func() bool { return u.CallCount() == 1 }, "one call left")
	if err := sess1.Bye(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if bye := pbx.Next(sip.BYE); bye.CallID().Value() != consult {
		t.Fatalf("BYE on %s, want the consulted party's dialog", bye.CallID().Value())
	}
	waitNoCalls(t, u.Service)
}

// TestInviteWithReplaces: a phone takes over the PBX's leg of a call.
func TestInviteWithReplaces(t *testing.T) {
	pbx, itsp := newUDPPeers(t)
	phone := newPeerUA(t, "phone", "127.0.0.1", "udp")
	u := newTestUnit(t, pbx, itsp, nil)
	sess, _ := establish(t, u, pbx, itsp, viaInside(u))
	ctx := ctxT(t)
	in := u.inside()
	dst := uriAt(in, "x")

	bad, err := phone.DC.Invite(ctx, dst, testSDP("127.0.0.1", 7700), sip.NewHeader("Content-Type", "application/sdp"),
		sip.NewHeader("Replaces", "nosuchcall;to-tag=1;from-tag=2"))
	if err != nil {
		t.Fatal(err)
	}
	if err := bad.WaitAnswer(ctx, sipgo.AnswerOptions{}); err == nil || !strings.Contains(err.Error(), "481") {
		t.Fatalf("unknown dialog: %v, want 481", err)
	}

	rep := sess.InviteRequest.CallID().Value() + ";to-tag=" + getTag(sess.InviteResponse.To().Params) +
		";from-tag=" + getTag(sess.InviteRequest.From().Params)
	ps, err := phone.DC.Invite(ctx, dst, testSDP("127.0.0.1", 7700), sip.NewHeader("Content-Type", "application/sdp"),
		sip.NewHeader("Replaces", rep))
	if err != nil {
		t.Fatal(err)
	}
	if err := ps.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ps.InviteResponse.Body()), "m=audio 4000") {
		t.Fatalf("answer to the phone %q, want the trunk's", ps.InviteResponse.Body())
	}
	if err := ps.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	if re := nextInvite(t, itsp, true); !strings.Contains(string(re.Body()), "m=audio 7700") {
		t.Fatalf("trunk re-INVITE %q, want the phone's offer", re.Body())
	}
	if bye := pbx.Next(sip.BYE); bye.CallID().Value() != sess.InviteRequest.CallID().Value() {
		t.Fatalf("BYE on %s", bye.CallID().Value())
	}
	waitFor(t, func() bool { return u.CallCount() == 1 }, "one call left")
	if err := ps.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	itsp.Next(sip.BYE)
	waitNoCalls(t, u.Service)
}

// TestBlindTransferByCaller: the caller's side (leg A, where the unit is
// the UAS) transfers; the new leg takes leg A's place.
func TestBlindTransferByCaller(t *testing.T) {
	pbx, itsp := newUDPPeers(t)
	backup := newPeerUA(t, "backup", "127.0.0.4", "udp")
	acceptRefer(pbx)
	acceptRefer(itsp)
	backup.SetOnInvite(answerWith("127.0.0.4", 6800))
	u := newTestUnit(t, pbx, itsp, func(c *config.Config) {
		c.Routing.Refer.Always = true
		c.Peers = append(c.Peers, config.Peer{Name: "backup", Kind: "itsp", Interface: "outside", Address: backup.Addr.String(), Transport: "udp"})
		c.DialPlan.Rules = []config.DialRule{{Name: "out", Prefix: "0", Tail: "0-9", ForwardTo: []config.Forward{{Peer: "backup"}}}}
	})
	sess, srv := establish(t, u, pbx, itsp, viaInside(u))
	res := refer(t, sess, sess.InviteResponse.Contact().Address, "<sip:0301234@"+u.inside().String()+">")
	if res.StatusCode != 202 {
		t.Fatalf("REFER answered %d", res.StatusCode)
	}
	if got := notifies(t, pbx, 2); got[1] != "SIP/2.0 200 OK" {
		t.Fatalf("NOTIFYs %q", got)
	}
	if re := nextInvite(t, itsp, true); !strings.Contains(string(re.Body()), "m=audio 6800") {
		t.Fatalf("transferee re-INVITE %q", re.Body())
	}
	pbx.Next(sip.BYE)
	waitFor(t, func() bool { return u.CallCount() == 1 }, "the transferred call only")
	// the target hangs up this time: the transferee gets the BYE
	tgt := backup.Session()
	if err := tgt.Bye(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if bye := itsp.Next(sip.BYE); bye.CallID().Value() != srv.InviteRequest.CallID().Value() {
		t.Fatalf("BYE on %s", bye.CallID().Value())
	}
	waitNoCalls(t, u.Service)
}

// TestTransferorLeavesEarly: the transferor hangs up right after the 202;
// only its leg ends and the transfer completes.
func TestTransferorLeavesEarly(t *testing.T) {
	pbx, itsp := referPeers(t)
	u := newTestUnit(t, pbx, itsp, alwaysRefer)
	sess, srv := establish(t, u, pbx, itsp, viaInside(u))
	release := make(chan struct{})
	pbx.SetOnInvite(func(s *sipgo.DialogServerSession, _ *sip.Request) {
		_ = s.Respond(180, "Ringing", nil)
		<-release
		_ = s.RespondSDP(testSDP("127.0.0.1", 6900))
	})
	if res := refer(t, srv, srv.InviteRequest.Contact().Address, "<sip:200@"+u.outside().String()+">"); res.StatusCode != 202 {
		t.Fatalf("REFER answered %d", res.StatusCode)
	}
	newLeg := nextInvite(t, pbx, false) // the target rings
	if err := srv.Bye(ctxT(t)); err != nil {
		t.Fatalf("transferor's BYE: %v", err)
	}
	close(release)
	if re := nextInvite(t, pbx, true); !strings.Contains(string(re.Body()), "m=audio 6900") {
		t.Fatalf("transferee re-INVITE %q", re.Body())
	}
	waitTransferred(t, u, newLeg.CallID().Value())
	for _, m := range pbx.Wire.All() {
		if strings.HasPrefix(m, "BYE ") {
			t.Fatalf("the transferee was hung up:\n%s", m)
		}
	}
	if err := sess.Bye(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	pbx.Next(sip.BYE)
	waitNoCalls(t, u.Service)
}

// waitTransferred waits until the unit's only call has the leg with Call-ID
// callID (the transfer switched over).
func waitTransferred(t *testing.T, u *testUnit, callID string) {
	t.Helper()
	waitFor(t, func() bool {
		calls := u.ActiveCalls()
		return len(calls) == 1 && (calls[0].Legs[0].CallID == callID || calls[0].Legs[1].CallID == callID)
	}, "the call to switch to the new leg")
}

// TestTransfereeLeavesDuringTransfer: the transferee hangs up while the
// target rings; the target, once it answers, is hung up and nothing stays.
func TestTransfereeLeavesDuringTransfer(t *testing.T) {
	pbx, itsp := referPeers(t)
	u := newTestUnit(t, pbx, itsp, alwaysRefer)
	sess, srv := establish(t, u, pbx, itsp, viaInside(u))
	release := make(chan struct{})
	pbx.SetOnInvite(func(s *sipgo.DialogServerSession, _ *sip.Request) {
		_ = s.Respond(180, "Ringing", nil)
		<-release
		_ = s.RespondSDP(testSDP("127.0.0.1", 6900))
	})
	if res := refer(t, srv, srv.InviteRequest.Contact().Address, "<sip:200@"+u.outside().String()+">"); res.StatusCode != 202 {
		t.Fatalf("REFER answered %d", res.StatusCode)
	}
	newLeg := nextInvite(t, pbx, false)
	if err := sess.Bye(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	itsp.Next(sip.BYE) // the transferor's leg ends with the call
	// the ringing new leg is cancelled (or, had its 200 crossed the
	// CANCEL, acknowledged and hung up)
	waitFor(t, func() bool {
		for _, m := range pbx.Wire.All() {
			if (strings.HasPrefix(m, "CANCEL ") || strings.HasPrefix(m, "BYE ")) && strings.Contains(m, newLeg.CallID().Value()) {
				return true
			}
		}
		return false
	}, "the new leg to be cancelled")
	close(release)
	waitNoCalls(t, u.Service)
}

// TestNoLegSwapOnceHungUp: a BYE from the transferee ends the far leg
// (byeSide) and then the call (end); a transfer whose target answered in
// between must not swap its new leg in, or end() forgets that leg and the
// target keeps a dialog nobody ends. (TestTransfereeLeavesDuringTransfer
// lost its BYE this way now and then under -race.)
func TestNoLegSwapOnceHungUp(t *testing.T) {
	pbx, itsp := referPeers(t)
	u := newTestUnit(t, pbx, itsp, alwaysRefer)
	establish(t, u, pbx, itsp, viaInside(u))
	calls := u.calls.all()
	if len(calls) != 1 {
		t.Fatalf("%d calls", len(calls))
	}
	c := calls[0]
	c.byeSide(media.SideB) // the BYE handler's first step
	itsp.Next(sip.BYE)
	mc, _ := media.Passthrough{}.NewCall(c.st.ID, media.Leg{}, media.Leg{})
	x := &transfer{c: c, from: media.SideB}
	if g := x.swap(c, media.SideB, Leg{CallID: "new-leg", LocalTag: "t"}, c.endpointOf(media.SideB), mc, nil); g != nil {
		t.Fatal("a new leg was swapped into a call that is being hung up")
	}
	if l := c.legOf(media.SideB); l.CallID == "new-leg" {
		t.Fatalf("leg B is now %+v", l)
	}
	c.end("bye from caller")
	waitNoCalls(t, u.Service)
}

// TestBlindTransferOverTCP: transferee and target on a TCP PBX; in-dialog
// requests of both go over their connections.
func TestBlindTransferOverTCP(t *testing.T) {
	pbx := newPeerUA(t, "pbx", "127.0.0.1", "tcp")
	itsp := newPeerUA(t, "trunk", "127.0.0.3", "udp")
	acceptRefer(pbx)
	acceptRefer(itsp)
	u := newTestUnit(t, pbx, itsp, func(c *config.Config) {
		c.Routing.Refer.Always = true
		c.SIP.Listeners = append(c.SIP.Listeners, config.Listener{Interface: "inside", Transport: "tcp"})
		c.Peers[0].Transport = "tcp"
	})
	ctx := ctxT(t)
	in := u.ListenAddr("inside", "tcp")
	sess := callOverTCP(t, ctx, pbx, in)
	srv := itsp.Session()
	itsp.Next(sip.INVITE)
	itsp.Next(sip.ACK)
	pbx.SetOnInvite(answerWith("127.0.0.1", 6600))
	if res := refer(t, srv, srv.InviteRequest.Contact().Address, "<sip:200@"+u.outside().String()+">"); res.StatusCode != 202 {
		t.Fatalf("REFER answered %d", res.StatusCode)
	}
	if got := notifies(t, itsp, 2); got[1] != "SIP/2.0 200 OK" {
		t.Fatalf("NOTIFYs %q", got)
	}
	newLeg := nextInvite(t, pbx, false)
	if re := nextInvite(t, pbx, true); !strings.Contains(string(re.Body()), "m=audio 6600") {
		t.Fatalf("transferee re-INVITE %q", re.Body())
	}
	itsp.Next(sip.BYE)
	waitTransferred(t, u, newLeg.CallID().Value())
	if err := sess.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	if bye := pbx.Next(sip.BYE); bye.CallID().Value() != newLeg.CallID().Value() {
		t.Fatalf("BYE on %s", bye.CallID().Value())
	}
	waitNoCalls(t, u.Service)
}
