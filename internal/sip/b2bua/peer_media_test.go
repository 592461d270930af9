package b2bua

import (
	"errors"
	"strings"
	"testing"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/config"
)

// twoTrunks is a unit with the PBX inside and two trunks on the outside
// interface, whose media policy (the default's) requires SRTP: "teams"
// relies on it, "lab" has plain RTP of its own (peers[].media). 9... goes
// to teams, 8... to the lab. The media relay is the real one.
func twoTrunks(t *testing.T, mut func(*config.Config)) (u *testUnit, pbx, teams, lab *peerUA) {
	t.Helper()
	pbx = newPeerUA(t, "pbx", "127.0.0.1", "udp")
	teams = newPeerUA(t, "teams", "127.0.0.3", "udp")
	lab = newPeerUA(t, "lab", "127.0.0.4", "udp")
	peers := func(c *config.Config) {
		c.Peers = []config.Peer{
			{Name: "pbx", Kind: "pbx", Interface: "inside", Address: pbx.Addr.String(), Transport: "udp"},
			{Name: "teams", Kind: "itsp", Interface: "outside", Address: teams.Addr.String(), Transport: "udp"},
			{Name: "lab", Kind: "itsp", Interface: "outside", Address: lab.Addr.String(), Transport: "udp",
				Media: config.PeerMedia{Group: "RTP", Requirement: "rtp"}},
		}
		if mut != nil {
			mut(c)
		}
	}
	mcfg, relay := relayWith(t, peers)
	teams.SetOnInvite(func(s *sipgo.DialogServerSession, _ *sip.Request) { _ = s.RespondSDP(srtpSDP("127.0.0.3", 5004)) })
	teams.SetRespond(func(req *sip.Request) (int, []byte) { // re-INVITEs
		if req.Method == sip.INVITE {
			return 200, srtpSDP("127.0.0.3", 5004)
		}
		return 200, nil
	})
	u = newTestUnitWith(t, nil, nil, Deps{Media: relay}, func(c *config.Config) {
		c.Media = mcfg.Media
		c.DialPlan.Rules = []config.DialRule{
			{Name: "teams", Prefix: "9", Tail: "0-9", ForwardTo: []config.Forward{{Peer: "teams"}}},
			{Name: "lab", Prefix: "8", Tail: "0-9", ForwardTo: []config.Forward{{Peer: "lab"}}},
			{Name: "ext", Prefix: "2", Tail: "0-9", ForwardTo: []config.Forward{{Peer: "pbx"}}},
		}
		peers(c)
	})
	// the document is one an administrator could write (listeners on
	// port 0 aside, which only tests use)
	valid := *u.cfg
	valid.SIP.Listeners = []config.Listener{{Interface: "inside", Transport: "udp", Port: 5060}, {Interface: "outside", Transport: "udp", Port: 5060}}
	if errs := valid.Validate(); errs != nil {
		t.Fatal(errs)
	}
	return u, pbx, teams, lab
}

// call places an INVITE with a plain RTP offer from ua to user at dst and
// returns the final status.
func callFrom(t *testing.T, ua *peerUA, dst func() (string, int), user string) (int, *sipgo.DialogClientSession) {
	t.Helper()
	ctx := ctxT(t)
	host, port := dst()
	sess, err := ua.DC.Invite(ctx, sip.Uri{Scheme: "sip", User: user, Host: host, Port: port},
		testSDP(ua.IP, 7000), sip.NewHeader("Content-Type", "application/sdp"))
	if err != nil {
		t.Fatal(err)
	}
	err = sess.WaitAnswer(ctx, sipgo.AnswerOptions{})
	var de *sipgo.ErrDialogResponse
	switch {
	case errors.As(err, &de):
		return de.Res.StatusCode, sess
	case err != nil:
		t.Fatal(err)
	}
	if err := sess.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	return 200, sess
}

// Two trunks on one interface, one SRTP-required and one plain RTP: the
// same plain offer from the PBX reaches Teams as RTP/SAVP with a=crypto
// and the lab as RTP/AVP without; calls from the lab with plain RTP are
// taken, from Teams they are refused (488) as the interface's policy says.
func TestPeerMediaPolicyOnTheWire(t *testing.T) {
	u, pbx, teams, lab := twoTrunks(t, nil)

	code, sess := callFrom(t, pbx, viaInside(u), "9123")
	if code != 200 {
		t.Fatalf("call to teams: %d", code)
	}
	body := string(teams.Next(sip.INVITE).Body())
	if !strings.Contains(body, " RTP/SAVP ") || !strings.Contains(body, "a=crypto:") {
		t.Errorf("offer to teams is not SRTP:\n%s", body)
	}
	hangUp(t, ctxT(t), sess, teams, u)

	code, sess = callFrom(t, pbx, viaInside(u), "8123")
	if code != 200 {
		t.Fatalf("call to lab: %d", code)
	}
	body = string(lab.Next(sip.INVITE).Body())
	if !strings.Contains(body, " RTP/AVP ") || strings.Contains(body, "a=crypto:") {
		t.Errorf("offer to lab is not plain RTP:\n%s", body)
	}
	hangUp(t, ctxT(t), sess, lab, u)

	// Inbound: recognised by source address, each trunk's own policy.
	code, sess = callFrom(t, lab, viaOutside(u), "2001")
	if code != 200 {
		t.Fatalf("plain RTP call from the lab: %d, want 200", code)
	}
	hangUp(t, ctxT(t), sess, pbx, u)
	if code, _ = callFrom(t, teams, viaOutside(u), "2001"); code != 488 {
		t.Fatalf("plain RTP call from teams: %d, want 488", code)
	}
	waitNoCalls(t, u.Service)
}

// The PBX transfers its call with Teams (blind, handled by the unit) to
// the lab: the new leg to the lab gets a plain RTP offer, its own policy,
// although Teams' media, on the same interface, stays SRTP.
func TestPeerMediaPolicyTransfer(t *testing.T) {
	u, pbx, teams, lab := twoTrunks(t, func(c *config.Config) { c.Routing.Refer.Always = true })
	acceptRefer(pbx)
	code, sess := callFrom(t, pbx, viaInside(u), "9123")
	if code != 200 {
		t.Fatalf("call to teams: %d", code)
	}
	teams.Next(sip.INVITE)
	if res := refer(t, sess, sess.InviteResponse.Contact().Address, "<sip:8555@"+u.inside().String()+">"); res.StatusCode != 202 {
		t.Fatalf("REFER answered %d", res.StatusCode)
	}
	if got := notifies(t, pbx, 2); got[1] != "SIP/2.0 200 OK" {
		t.Fatalf("NOTIFYs %q", got)
	}
	body := string(lab.Next(sip.INVITE).Body())
	if !strings.Contains(body, " RTP/AVP ") || strings.Contains(body, "a=crypto:") {
		t.Errorf("transferred call's offer to the lab is not plain RTP:\n%s", body)
	}
	re := nextInvite(t, teams, true)
	if b := string(re.Body()); !strings.Contains(b, " RTP/SAVP ") || !strings.Contains(b, "a=crypto:") {
		t.Errorf("Teams' re-INVITE after the transfer is not SRTP:\n%s", b)
	}
}

// A dial plan row that tries Teams, then the lab: Teams refuses (503), and
// the lab gets an offer made for its own policy (plain RTP), not the SRTP
// offer made for Teams; the call is answered with the lab's media.
func TestPeerMediaPolicyFailover(t *testing.T) {
	u, pbx, teams, lab := twoTrunks(t, func(c *config.Config) {
		c.DialPlan.Rules = append(c.DialPlan.Rules, config.DialRule{Name: "both", Prefix: "7", Tail: "0-9",
			ForwardTo: []config.Forward{{Peer: "teams"}, {Peer: "lab"}}})
	})
	teams.SetOnInvite(func(s *sipgo.DialogServerSession, _ *sip.Request) { _ = s.Respond(503, "Service Unavailable", nil) })
	code, sess := callFrom(t, pbx, viaInside(u), "7123")
	if code != 200 {
		t.Fatalf("call: %d", code)
	}
	if body := string(teams.Next(sip.INVITE).Body()); !strings.Contains(body, " RTP/SAVP ") || !strings.Contains(body, "a=crypto:") {
		t.Errorf("offer to teams is not SRTP:\n%s", body)
	}
	if body := string(lab.Next(sip.INVITE).Body()); !strings.Contains(body, " RTP/AVP ") || strings.Contains(body, "a=crypto:") {
		t.Errorf("offer to the lab after Teams failed is not plain RTP:\n%s", body)
	}
	if body := string(sess.InviteResponse.Body()); !strings.Contains(body, " RTP/AVP ") {
		t.Errorf("answer to the PBX:\n%s", body)
	}
	hangUp(t, ctxT(t), sess, lab, u)
}

// A phone takes over the PBX's leg of a call with the lab (INVITE with
// Replaces): the lab is re-INVITEd with plain RTP, its own policy, not the
// SRTP its interface requires.
func TestPeerMediaPolicyReplaces(t *testing.T) {
	u, pbx, _, lab := twoTrunks(t, nil)
	phone := newPeerUA(t, "phone", "127.0.0.1", "udp")
	code, sess := callFrom(t, pbx, viaInside(u), "8123")
	if code != 200 {
		t.Fatalf("call to lab: %d", code)
	}
	lab.Next(sip.INVITE)
	ctx := ctxT(t)
	in := u.inside()
	rep := sess.InviteRequest.CallID().Value() + ";to-tag=" + getTag(sess.InviteResponse.To().Params) +
		";from-tag=" + getTag(sess.InviteRequest.From().Params)
	ps, err := phone.DC.Invite(ctx, uriAt(in, "x"),
		testSDP("127.0.0.1", 7700), sip.NewHeader("Content-Type", "application/sdp"), sip.NewHeader("Replaces", rep))
	if err != nil {
		t.Fatal(err)
	}
	if err := ps.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		t.Fatalf("INVITE with Replaces: %v", err)
	}
	if body := string(nextInvite(t, lab, true).Body()); !strings.Contains(body, " RTP/AVP ") || strings.Contains(body, "a=crypto:") {
		t.Errorf("re-INVITE to the lab is not plain RTP:\n%s", body)
	}
	if err := ps.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	hangUp(t, ctx, ps, lab, u)
}
