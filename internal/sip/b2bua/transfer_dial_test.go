package b2bua

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/routing"
)

// The transfer's new leg is placed by the same engine as a new call
// (dial.go): these are the cases where the old transfer loop differed.

// transferLab: a call from the trunk (outside) to the PBX; the PBX
// transfers it (REFER handled locally) to 0301234, which the dial plan
// sends to the given peers on the outside in order.
func transferLab(t *testing.T, mut func(*config.Config), targets ...config.Peer) (*testUnit, *peerUA, *peerUA, *sipgo.DialogClientSession, *sipgo.DialogServerSession) {
	t.Helper()
	pbx, itsp := newUDPPeers(t)
	acceptRefer(pbx)
	acceptRefer(itsp)
	u := newTestUnit(t, pbx, itsp, func(c *config.Config) {
		c.Routing.Refer.Always = true
		var fw []config.Forward
		for _, p := range targets {
			c.Peers = append(c.Peers, p)
			fw = append(fw, config.Forward{Peer: p.Name})
		}
		c.DialPlan.Rules = []config.DialRule{{Name: "out", Prefix: "0", Tail: "0-9", ForwardTo: fw}}
		if mut != nil {
			mut(c)
		}
	})
	sess, srv := establish(t, u, itsp, pbx, viaOutside(u))
	if res := refer(t, srv, srv.InviteRequest.Contact().Address, "<sip:0301234@"+u.inside().String()+">"); res.StatusCode != 202 {
		t.Fatalf("REFER answered %d", res.StatusCode)
	}
	return u, pbx, itsp, sess, srv
}

func outsidePeer(name, addr string) config.Peer {
	return config.Peer{Name: name, Kind: "itsp", Interface: "outside", Address: addr, Transport: "udp"}
}

// TestTransferTargetChallenges: a target that asks for credentials (401 or
// 407) gets the INVITE again with the peer's account, and the transfer
// succeeds.
func TestTransferTargetChallenges(t *testing.T) {
	for _, tc := range []struct {
		code       int
		hdr, authz string
	}{
		{401, "WWW-Authenticate", "Authorization"},
		{407, "Proxy-Authenticate", "Proxy-Authorization"},
	} {
		t.Run(tc.authz, func(t *testing.T) {
			trunk2 := newPeerUA(t, "trunk2", "127.0.0.4", "udp")
			trunk2.SetOnInvite(func(s *sipgo.DialogServerSession, req *sip.Request) {
				if req.GetHeader(tc.authz) == nil {
					_ = s.Respond(tc.code, "Auth Required", nil, sip.NewHeader(tc.hdr,
						`Digest realm="trunk.example", nonce="xfer", algorithm=MD5, qop="auth"`))
					return
				}
				answerWith("127.0.0.4", 6700)(s, req)
			})
			p := outsidePeer("trunk2", trunk2.Addr.String())
			p.Auth = config.PeerAuth{Username: "palisade", Password: "s3cret"}
			u, pbx, itsp, sess, _ := transferLab(t, nil, p)
			if got := notifies(t, pbx, 2); got[1] != "SIP/2.0 200 OK" {
				t.Fatalf("NOTIFYs %q", got)
			}
			first, second := trunk2.Next(sip.INVITE), trunk2.Next(sip.INVITE)
			if first.GetHeader(tc.authz) != nil || second.GetHeader(tc.authz) == nil {
				t.Fatalf("INVITEs to the target: %s first %v, then %v", tc.authz, first.GetHeader(tc.authz), second.GetHeader(tc.authz))
			}
			verifyDigest(t, "MD5", "INVITE", "s3cret", second.GetHeader(tc.authz).Value())
			if second.CSeq().SeqNo != first.CSeq().SeqNo+1 || second.CallID().Value() != first.CallID().Value() {
				t.Fatal("the authorized INVITE is not the same request again")
			}
			finishTransfer(t, u, sess, itsp, pbx, trunk2, "m=audio 6700")
		})
	}
}

// TestTransferSilentFirstTarget: the first target of the transfer sends
// nothing at all; after sip.invite_timeout the second one is tried and
// takes the call.
func TestTransferSilentFirstTarget(t *testing.T) {
	dead := newBlackHole(t, "127.0.0.5")
	second := newPeerUA(t, "second", "127.0.0.4", "udp")
	second.SetOnInvite(answerWith("127.0.0.4", 6800))
	u, pbx, itsp, sess, _ := transferLab(t, func(c *config.Config) {
		c.SIP.InviteTimeout = config.Duration(500 * time.Millisecond)
	}, outsidePeer("dead", dead.addr.String()), outsidePeer("second", second.Addr.String()))
	if got := notifies(t, pbx, 2); got[1] != "SIP/2.0 200 OK" {
		t.Fatalf("NOTIFYs %q", got)
	}
	if inv := second.Next(sip.INVITE); inv.Recipient.User != "301234" {
		t.Fatalf("second target got %s", inv.Recipient.String())
	}
	if dead.count("INVITE ") == 0 {
		t.Fatal("the first target was never tried")
	}
	if n := dead.count("CANCEL "); n != 0 {
		t.Fatalf("the silent target got %d CANCELs before any response", n)
	}
	finishTransfer(t, u, sess, itsp, pbx, second, "m=audio 6800")
}

// TestTransferCanceledBeforeProvisional: the transferee hangs up while the
// target has not answered anything yet. The unit must not CANCEL a
// transaction without a provisional response (RFC 3261 §9.1): the CANCEL
// follows the target's 180.
func TestTransferCanceledBeforeProvisional(t *testing.T) {
	var hole *blackHole
	hole = newChallengingHole(t, "127.0.0.5", func(req *sip.Request) *sip.Response {
		if req.Method == sip.CANCEL {
			return sip.NewResponseFromRequest(req, 200, "OK", nil)
		}
		return nil
	})
	u, _, _, sess, _ := transferLab(t, func(c *config.Config) {
		c.SIP.InviteTimeout = config.Duration(time.Minute) // silence is not given up during the test
	}, outsidePeer("target", hole.addr.String()))
	waitFor(t, func() bool { return hole.count("INVITE ") > 0 }, "the INVITE to the target")
	if err := sess.Bye(ctxT(t)); err != nil { // the transferee hangs up
		t.Fatal(err)
	}
	waitNoCalls(t, u.Service)
	sleepMS(300) // a CANCEL sent on the call's end would be here by now
	if n := hole.count("CANCEL "); n != 0 {
		t.Fatalf("%d CANCELs before any provisional response", n)
	}
	m, err := sip.ParseMessage([]byte(hole.find("INVITE ")[0]))
	if err != nil {
		t.Fatal(err)
	}
	inv := m.(*sip.Request)
	ringing := sip.NewResponseFromRequest(inv, 180, "Ringing", nil)
	ringing.To().Params.Add("tag", "tgt")
	hole.send(t, ringing)
	waitFor(t, func() bool { return hole.count("CANCEL ") > 0 }, "the CANCEL after the 180")
	c, _ := sip.ParseMessage([]byte(hole.find("CANCEL ")[0]))
	if c.(*sip.Request).CSeq().SeqNo != inv.CSeq().SeqNo || c.(*sip.Request).CallID().Value() != inv.CallID().Value() {
		t.Fatalf("CANCEL for another request:\n%s", c)
	}
	term := sip.NewResponseFromRequest(inv, 487, "Request Terminated", nil)
	term.To().Params.Add("tag", "tgt")
	hole.send(t, term)
}

// TestTransferToOutsideHidesInside: the trunk (Teams-like, outside)
// transfers a call from the PBX to a number the dial plan sends back to
// the trunk by URI. The new leg is placed like a new call to the trunk:
// from the outside interface, with the trunk's headers and an SDP offer
// from the relay; nothing of the inside (127.0.0.1: the PBX and the unit's
// inside address) is in any message the trunk receives, during and after
// the transfer.
func TestTransferToOutsideHidesInside(t *testing.T) {
	relay, mcfg := newTestRelay(t, true)
	pbx, itsp := newUDPPeers(t)
	acceptRefer(pbx)
	acceptRefer(itsp)
	u := newTestUnitWith(t, pbx, itsp, Deps{Media: relay}, func(c *config.Config) {
		c.Routing.Refer.Always = true
		c.Media = mcfg
		c.Peers[1].Headers = map[string]string{"X-MS-SBC": "Palisade/test"}
		c.DialPlan.Rules = []config.DialRule{{Name: "teams", Head: "+49", Tail: "0-9",
			ForwardTo: []config.Forward{{URI: "sip:" + itsp.Addr.String()}}}}
	})
	sess, srv := establish(t, u, pbx, itsp, viaInside(u))
	if res := refer(t, srv, srv.InviteRequest.Contact().Address, "<sip:+4930999@"+u.outside().String()+">",
		sip.NewHeader("Referred-By", "<sip:alice@teams.example>")); res.StatusCode != 202 {
		t.Fatalf("REFER answered %d", res.StatusCode)
	}
	if got := notifies(t, itsp, 2); got[1] != "SIP/2.0 200 OK" {
		t.Fatalf("NOTIFYs %q", got)
	}
	inv := nextInvite(t, itsp, false) // the first call's INVITE
	if inv.CallID().Value() == srv.InviteRequest.CallID().Value() {
		inv = nextInvite(t, itsp, false)
	}
	if inv.Recipient.User != "+4930999" {
		t.Fatalf("new leg to %s", inv.Recipient.String())
	}
	if h := inv.GetHeader("X-MS-SBC"); h == nil || h.Value() != "Palisade/test" {
		t.Errorf("new leg INVITE without the trunk's X-MS-SBC header: %v", h)
	}
	if v := inv.Via(); v.Host != "127.0.0.2" {
		t.Errorf("new leg Via %s", v.Value())
	}
	if !strings.Contains(string(inv.Body()), "c=IN IP4 127.0.0.2") {
		t.Errorf("new leg INVITE without an offer from the relay's outside address: %q", inv.Body())
	}
	pbx.Next(sip.INVITE) // the transferee's re-INVITE
	itsp.Next(sip.BYE)   // the transferor's leg
	waitFor(t, func() bool { return u.CallCount() == 1 }, "the transferred call only")
	if err := sess.Bye(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	for {
		if bye := itsp.Next(sip.BYE); bye.CallID().Value() == inv.CallID().Value() {
			break
		}
	}
	waitNoCalls(t, u.Service)
	for _, m := range itsp.Wire.All() {
		if strings.Contains(m, "127.0.0.1") {
			t.Errorf("the trunk received the inside address:\n%s", m)
		}
	}
}

// TestDialErrorNamesTheTarget: the engine's failure is typed: status,
// reason, the target that gave it and its peer, and the response to relay.
func TestDialErrorNamesTheTarget(t *testing.T) {
	pbx, itsp := newUDPPeers(t)
	itsp.SetOnInvite(func(s *sipgo.DialogServerSession, _ *sip.Request) { _ = s.Respond(486, "Busy Here", nil) })
	u := newTestUnit(t, pbx, itsp, nil)
	rt := u.rt.Load()
	hops, err := rt.table.Route(routing.Request{Method: "INVITE", User: "4930123", SourcePeer: "pbx", SourceInterface: "inside"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	l := &leg{Leg: Leg{CallID: newID(), LocalTag: newID()}}
	d := &dialer{svc: u.Service, rt: rt, id: "dial-test", log: testLogger, in: rt.endpoints["inside"], mu: &mu, leg: l,
		build: func(h routing.Hop, tg routing.Target, ep *endpoint) *sip.Request {
			info := ep.info.Load()
			l.ep, l.Transport = ep, tg.Transport
			l.LocalURI = sip.Uri{Scheme: "sip", User: "caller", Host: info.Host}
			l.RemoteURI, l.RemoteTarget = sip.Uri{Scheme: "sip", User: h.User, Host: h.Host}, hopURI(h)
			req := l.request(sip.INVITE, 70, l.nextCSeq())
			req.AppendHeader(l.contact())
			req.SetBody(nil)
			return req
		}}
	ans, err := d.dial(ctxT(t), hops)
	var de *DialError
	if ans != nil || !errors.As(err, &de) {
		t.Fatalf("dial: %v, %v", ans, err)
	}
	if de.Code != 486 || de.Reason != "Busy Here" || de.Peer != "itsp" || de.Target != itsp.Addr.String() || de.Response == nil || de.Canceled {
		t.Fatalf("DialError %+v", de)
	}
	if !strings.Contains(de.Error(), itsp.Addr.String()) {
		t.Fatalf("error text %q does not name the target", de.Error())
	}
}

// TestTransferReferToNumberInbound: the trunk transfers to an E.164
// number; the trunk's inbound number rules turn it into the PBX's
// extension before the dial plan sees it, as for a call from the trunk
// (without them the catch-all row would send it back to the trunk).
func TestTransferReferToNumberInbound(t *testing.T) {
	pbx, itsp := referPeers(t)
	u := newTestUnit(t, pbx, itsp, func(c *config.Config) {
		alwaysRefer(c)
		c.Peers[1].Trunk.Numbers.Inbound = []config.NumberRule{{Fields: []string{"request_uri"}, Match: `\+4930(2\d\d)`, Replace: "$1"}}
		c.DialPlan.Rules = []config.DialRule{
			{Name: "ext", Regex: `^2[0-9][0-9]$`, ForwardTo: []config.Forward{{Peer: "pbx"}}},
			{Name: "out", ForwardTo: []config.Forward{{Peer: "itsp"}}},
		}
	})
	sess, srv := establish(t, u, pbx, itsp, viaInside(u))
	pbx.SetOnInvite(answerWith("127.0.0.1", 6600))
	res := refer(t, srv, srv.InviteRequest.Contact().Address, "<sip:+4930200@"+u.outside().String()+";user=phone>")
	if res.StatusCode != 202 {
		t.Fatalf("REFER answered %d", res.StatusCode)
	}
	if got := notifies(t, itsp, 2); got[1] != "SIP/2.0 200 OK" {
		t.Fatalf("NOTIFY bodies %q", got)
	}
	if inv := nextInvite(t, pbx, false); inv.Recipient.User != "200" {
		t.Fatalf("new leg INVITE to %s, want the extension 200 (inbound rules of the transferor's peer)", inv.Recipient.String())
	}
	nextInvite(t, pbx, true)
	itsp.Next(sip.BYE)
	waitFor(t, func() bool { return u.CallCount() == 1 }, "the transferred call only")
	if err := sess.Bye(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	waitNoCalls(t, u.Service)
}
