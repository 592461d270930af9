package b2bua

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/config"
)

// establish places a call pbx → unit → itsp and returns both dialogs.
func establish(t *testing.T, u *testUnit, caller, callee *peerUA, dst func() (string, int)) (*sipgo.DialogClientSession, *sipgo.DialogServerSession) {
	t.Helper()
	ctx := ctxT(t)
	host, port := dst()
	sess, err := caller.DC.Invite(ctx, sip.Uri{Scheme: "sip", User: "4930123456", Host: host, Port: port},
		testSDP(caller.IP, 7000), sip.NewHeader("Content-Type", "application/sdp"), sip.NewHeader("User-Agent", caller.Name))
	if err != nil {
		t.Fatal(err)
	}
	confirm(t, ctx, sess)
	srv := callee.Session()
	callee.Next(sip.INVITE)
	callee.Next(sip.ACK)
	return sess, srv
}

func viaInside(u *testUnit) func() (string, int) {
	return func() (string, int) { a := u.inside(); return a.Addr().String(), int(a.Port()) }
}

func viaOutside(u *testUnit) func() (string, int) {
	return func() (string, int) { a := u.outside(); return a.Addr().String(), int(a.Port()) }
}

func TestCallOutsideToInsideByeFromCallee(t *testing.T) {
	pbx, itsp := newUDPPeers(t)
	u := newTestUnit(t, pbx, itsp, nil)
	sess, srv := establish(t, u, itsp, pbx, viaOutside(u))
	if srv.InviteRequest.CallID().Value() == sess.InviteRequest.CallID().Value() {
		t.Fatal("Call-ID crossed the unit")
	}
	// the callee (the PBX) hangs up
	ctx := ctxT(t)
	if err := srv.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	itsp.Next(sip.BYE)
	waitNoCalls(t, u.Service)
}

func TestByeFromCalleeInsideToOutside(t *testing.T) {
	pbx, itsp := newUDPPeers(t)
	u := newTestUnit(t, pbx, itsp, nil)
	_, srv := establish(t, u, pbx, itsp, viaInside(u))
	if err := srv.Bye(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	pbx.Next(sip.BYE)
	waitNoCalls(t, u.Service)
}

func TestEarlyMediaWithPRACK(t *testing.T) {
	pbx, itsp := newUDPPeers(t)
	u := newTestUnit(t, pbx, itsp, nil)
	prackSeen := make(chan *sip.Request, 1)
	itsp.SetOnInvite(func(s *sipgo.DialogServerSession, req *sip.Request) {
		if !strings.Contains(req.GetHeader("Supported").Value(), "100rel") {
			t.Errorf("Supported: 100rel not relayed: %v", req.GetHeader("Supported"))
		}
		_ = s.Respond(183, "Session Progress", testSDP("127.0.0.3", 5002),
			sip.NewHeader("Require", "100rel"), sip.NewHeader("RSeq", "1"),
			sip.NewHeader("Content-Type", "application/sdp"),
			&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", Host: "127.0.0.3", Port: int(itsp.Addr.Port())}})
		select {
		case r := <-prackSeen:
			_ = r
		case <-time.After(10 * time.Second):
			t.Error("no PRACK")
		}
		_ = s.RespondSDP(testSDP("127.0.0.3", 5002))
	})
	itsp.SetRespond(func(req *sip.Request) (int, []byte) {
		if req.Method == sip.PRACK {
			prackSeen <- req
		}
		return 200, nil
	})
	ctx := ctxT(t)
	in := u.inside()
	sess, err := pbx.DC.Invite(ctx, uriAt(in, "123"),
		testSDP("127.0.0.1", 7000), sip.NewHeader("Content-Type", "application/sdp"), sip.NewHeader("Supported", "100rel"))
	if err != nil {
		t.Fatal(err)
	}
	var early *sip.Response
	err = sess.WaitAnswer(ctx, sipgo.AnswerOptions{OnResponse: func(r *sip.Response) error {
		if r.StatusCode != 183 {
			return nil
		}
		early = r
		prack := sip.NewRequest(sip.PRACK, r.Contact().Address)
		prack.AppendHeader(sip.NewHeader("RAck", "1 "+itoa(int(sess.InviteRequest.CSeq().SeqNo))+" INVITE"))
		res, err := sess.Do(ctx, prack)
		if err != nil {
			return err
		}
		if res.StatusCode != 200 {
			return errors.New("PRACK answered " + res.Reason)
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if early == nil || !strings.Contains(string(early.Body()), "m=audio 5002") {
		t.Fatalf("early media SDP not relayed: %v", early)
	}
	if rs := early.GetHeader("RSeq"); rs == nil || rs.Value() != "1" {
		t.Fatalf("RSeq not relayed: %v", early)
	}
	inv := itsp.Next(sip.INVITE)
	pr := itsp.Next(sip.PRACK)
	if got, want := pr.GetHeader("RAck").Value(), "1 "+itoa(int(inv.CSeq().SeqNo))+" INVITE"; got != want {
		t.Fatalf("RAck on the far leg %q, want %q", got, want)
	}
	if err := sess.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	hangUp(t, ctx, sess, nil, u)
}

func TestReinviteAndUpdateBothDirections(t *testing.T) {
	pbx, itsp := newUDPPeers(t)
	u := newTestUnit(t, pbx, itsp, nil)
	sess, srv := establish(t, u, pbx, itsp, viaInside(u))
	ctx := ctxT(t)

	// caller → callee re-INVITE (hold)
	re := sip.NewRequest(sip.INVITE, sess.InviteResponse.Contact().Address)
	re.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	re.SetBody(append(testSDP("127.0.0.1", 7002), []byte("a=sendonly\r\n")...))
	res, err := sess.Do(ctx, re)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("re-INVITE: %v %v", res, err)
	}
	got := itsp.Next(sip.INVITE)
	if !strings.Contains(string(got.Body()), "a=sendonly") {
		t.Fatalf("re-INVITE SDP not relayed: %q", got.Body())
	}
	ack := sip.NewRequest(sip.ACK, sess.InviteResponse.Contact().Address)
	if err := sess.WriteRequest(ack); err != nil {
		t.Fatal(err)
	}
	if a := itsp.Next(sip.ACK); a.CSeq().SeqNo != got.CSeq().SeqNo {
		t.Fatalf("ACK CSeq %d for re-INVITE CSeq %d", a.CSeq().SeqNo, got.CSeq().SeqNo)
	}

	// callee → caller re-INVITE
	re2 := sip.NewRequest(sip.INVITE, srv.InviteRequest.Contact().Address)
	re2.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	re2.SetBody(append(testSDP("127.0.0.3", 5004), []byte("a=recvonly\r\n")...))
	res, err = srv.Do(ctx, re2)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("re-INVITE from callee: %v %v", res, err)
	}
	if got := pbx.Next(sip.INVITE); !strings.Contains(string(got.Body()), "a=recvonly") {
		t.Fatalf("re-INVITE SDP not relayed to caller: %q", got.Body())
	}
	ack2 := sip.NewRequest(sip.ACK, srv.InviteRequest.Contact().Address)
	if err := srv.WriteRequest(ack2); err != nil {
		t.Fatal(err)
	}
	pbx.Next(sip.ACK)

	// UPDATE both ways
	up := sip.NewRequest(sip.UPDATE, sess.InviteResponse.Contact().Address)
	up.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	up.SetBody(testSDP("127.0.0.1", 7006))
	if res, err := sess.Do(ctx, up); err != nil || res.StatusCode != 200 || !strings.Contains(string(res.Body()), "m=audio") {
		t.Fatalf("UPDATE: %v %v", res, err)
	}
	if got := itsp.Next(sip.UPDATE); !strings.Contains(string(got.Body()), "m=audio 7006") {
		t.Fatalf("UPDATE SDP: %q", got.Body())
	}
	up2 := sip.NewRequest(sip.UPDATE, srv.InviteRequest.Contact().Address)
	if res, err := srv.Do(ctx, up2); err != nil || res.StatusCode != 200 {
		t.Fatalf("UPDATE from callee: %v %v", res, err)
	}
	pbx.Next(sip.UPDATE)

	// INFO in the dialog
	info := sip.NewRequest(sip.INFO, sess.InviteResponse.Contact().Address)
	info.AppendHeader(sip.NewHeader("Content-Type", "application/dtmf-relay"))
	info.SetBody([]byte("Signal=5\r\nDuration=160\r\n"))
	if res, err := sess.Do(ctx, info); err != nil || res.StatusCode != 200 {
		t.Fatalf("INFO: %v %v", res, err)
	}
	if got := itsp.Next(sip.INFO); string(got.Body()) != "Signal=5\r\nDuration=160\r\n" {
		t.Fatalf("INFO body %q", got.Body())
	}
	msg := sip.NewRequest(sip.MESSAGE, srv.InviteRequest.Contact().Address)
	msg.AppendHeader(sip.NewHeader("Content-Type", "text/plain"))
	msg.SetBody([]byte("hello inside"))
	if res, err := srv.Do(ctx, msg); err != nil || res.StatusCode != 200 {
		t.Fatalf("MESSAGE in dialog: %v %v", res, err)
	}
	if got := pbx.Next(sip.MESSAGE); string(got.Body()) != "hello inside" {
		t.Fatalf("MESSAGE body %q", got.Body())
	}
	hangUp(t, ctx, sess, nil, u)
}

func TestCancel(t *testing.T) {
	pbx, itsp := newUDPPeers(t)
	u := newTestUnit(t, pbx, itsp, nil)
	itsp.SetOnInvite(func(s *sipgo.DialogServerSession, req *sip.Request) {
		_ = s.Respond(180, "Ringing", nil)
	})
	ctx, cancel := context.WithCancel(ctxT(t))
	in := u.inside()
	sess, err := pbx.DC.Invite(ctx, uriAt(in, "123"), nil)
	if err != nil {
		t.Fatal(err)
	}
	err = sess.WaitAnswer(ctx, sipgo.AnswerOptions{OnResponse: func(r *sip.Response) error {
		if r.StatusCode == 180 {
			cancel()
		}
		return nil
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitAnswer: %v", err)
	}
	waitFor(t, func() bool { return itsp.Wire.Count("CANCEL ") > 0 }, "CANCEL on the far leg")
	waitNoCalls(t, u.Service)
}

func TestCancelRacing200(t *testing.T) {
	pbx, itsp := newUDPPeers(t)
	u := newTestUnit(t, pbx, itsp, nil)
	// The far end never sees the CANCEL and answers anyway.
	itsp.Wire.SetDrop(func(m string) bool { return strings.HasPrefix(m, "CANCEL ") })
	itsp.SetOnInvite(func(s *sipgo.DialogServerSession, req *sip.Request) {
		_ = s.Respond(180, "Ringing", nil)
		waitFor(t, func() bool { return itsp.Wire.Count("CANCEL ") > 0 }, "CANCEL")
		_ = s.RespondSDP(testSDP("127.0.0.3", 5000))
	})
	ctx, cancel := context.WithCancel(ctxT(t))
	in := u.inside()
	sess, err := pbx.DC.Invite(ctx, uriAt(in, "123"),
		testSDP("127.0.0.1", 7000), sip.NewHeader("Content-Type", "application/sdp"))
	if err != nil {
		t.Fatal(err)
	}
	_ = sess.WaitAnswer(ctx, sipgo.AnswerOptions{OnResponse: func(r *sip.Response) error {
		if r.StatusCode == 180 {
			cancel()
		}
		return nil
	}})
	// the late answer is confirmed and ended on the far leg
	itsp.Next(sip.ACK)
	itsp.Next(sip.BYE)
	waitNoCalls(t, u.Service)
}

func TestLateOffer(t *testing.T) {
	pbx, itsp := newUDPPeers(t)
	u := newTestUnit(t, pbx, itsp, nil)
	ctx := ctxT(t)
	in := u.inside()
	sess, err := pbx.DC.Invite(ctx, uriAt(in, "123"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		t.Fatal(err)
	}
	if inv := itsp.Next(sip.INVITE); len(inv.Body()) != 0 {
		t.Fatalf("late-offer INVITE got a body: %q", inv.Body())
	}
	if !strings.Contains(string(sess.InviteResponse.Body()), "m=audio 5000") {
		t.Fatalf("offer in 200 not relayed: %q", sess.InviteResponse.Body())
	}
	ack := sip.NewRequest(sip.ACK, sess.InviteResponse.Contact().Address)
	ack.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	ack.SetBody(testSDP("127.0.0.1", 7010))
	if err := sess.WriteAck(ctx, ack); err != nil {
		t.Fatal(err)
	}
	if a := itsp.Next(sip.ACK); !strings.Contains(string(a.Body()), "m=audio 7010") {
		t.Fatalf("answer in ACK not relayed: %q", a.Body())
	}
	hangUp(t, ctx, sess, nil, u)
}

func TestStandaloneMessageAndOptions(t *testing.T) {
	pbx, itsp := newUDPPeers(t)
	u := newTestUnit(t, pbx, itsp, nil)
	ctx := ctxT(t)
	in := u.inside()
	msg := sip.NewRequest(sip.MESSAGE, uriAt(in, "4930"))
	msg.AppendHeader(sip.NewHeader("Content-Type", "text/plain"))
	msg.SetBody([]byte("hi"))
	res, err := pbx.Cli.Do(ctx, msg)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("MESSAGE: %v %v", res, err)
	}
	if got := itsp.Next(sip.MESSAGE); string(got.Body()) != "hi" || got.CallID().Value() == msg.CallID().Value() {
		t.Fatalf("MESSAGE relayed wrong: %v", got)
	}
	opt := sip.NewRequest(sip.OPTIONS, sip.Uri{Scheme: "sip", Host: in.Addr().String(), Port: int(in.Port())})
	res, err = pbx.Cli.Do(ctx, opt)
	if err != nil || res.StatusCode != 200 || res.GetHeader("Allow") == nil {
		t.Fatalf("OPTIONS to the unit: %v %v", res, err)
	}
	if !strings.Contains(res.GetHeader("Allow").Value(), "INVITE") {
		t.Fatalf("Allow: %v", res.GetHeader("Allow"))
	}
}

func TestRedirects(t *testing.T) {
	for _, mode := range []string{"forward", "follow"} {
		t.Run(mode, func(t *testing.T) {
			pbx, itsp := newUDPPeers(t)
			other := newPeerUA(t, "other", "127.0.0.4", "udp")
			u := newTestUnit(t, pbx, itsp, func(c *config.Config) { c.Routing.Redirects = mode })
			itsp.SetOnInvite(func(s *sipgo.DialogServerSession, req *sip.Request) {
				_ = s.Respond(302, "Moved Temporarily", nil,
					&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "low", Host: "127.0.0.9", Port: 9}, Params: sip.HeaderParams{{K: "q", V: "0.1"}}},
					&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "777", Host: "127.0.0.4", Port: int(other.Addr.Port())}, Params: sip.HeaderParams{{K: "q", V: "0.9"}}})
			})
			ctx := ctxT(t)
			in := u.inside()
			sess, err := pbx.DC.Invite(ctx, uriAt(in, "123"),
				testSDP("127.0.0.1", 7000), sip.NewHeader("Content-Type", "application/sdp"))
			if err != nil {
				t.Fatal(err)
			}
			err = sess.WaitAnswer(ctx, sipgo.AnswerOptions{})
			if mode == "forward" {
				var de *sipgo.ErrDialogResponse
				if !errors.As(err, &de) || de.Res.StatusCode != 302 || len(de.Res.GetHeaders("Contact")) != 2 {
					t.Fatalf("want 302 with both contacts, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if inv := other.Next(sip.INVITE); inv.Recipient.User != "777" {
				t.Fatalf("followed to %v", inv.Recipient)
			}
			_ = sess.Ack(ctx)
			_ = sess.Bye(ctx)
			waitNoCalls(t, u.Service)
		})
	}
}

// TestFinalAnswerEndsSearch: a 6xx or a 4xx other than 408 from the first
// dial plan row goes back to the caller; the next row is never called
// (RFC 3261 §16.7; one INVITE only for a declined call). So does a 408 or
// 5xx after the first row rang (180): the callee was alerted, a second
// call would ring twice.
func TestFinalAnswerEndsSearch(t *testing.T) {
	for _, tc := range []struct {
		code, want int
		rang       bool
	}{{603, 603, false}, {486, 486, false}, {404, 404, false}, {500, 500, true}, {503, 500, true}, {408, 408, true}} {
		code := tc.code
		t.Run(fmt.Sprintf("%d rang=%v", code, tc.rang), func(t *testing.T) {
			pbx := newPeerUA(t, "pbx", "127.0.0.1", "udp")
			first := newPeerUA(t, "trunk", "127.0.0.3", "udp")
			second := newPeerUA(t, "backup", "127.0.0.4", "udp")
			first.SetOnInvite(func(s *sipgo.DialogServerSession, _ *sip.Request) {
				if tc.rang {
					_ = s.Respond(180, "Ringing", nil)
					// The final answer after the unit has seen the ringing:
					// sipgo hands each datagram to a goroutine of its own, so
					// a 180 and a 408 sent back to back may reach the dialing
					// code in either order (a real callee rings for seconds).
					deadline := time.Now().Add(20 * time.Second)
					for pbx.Wire.Count("SIP/2.0 180") == 0 && time.Now().Before(deadline) {
						time.Sleep(2 * time.Millisecond)
					}
				}
				_ = s.Respond(code, "No", nil)
			})
			u := newTestUnit(t, pbx, first, func(c *config.Config) {
				c.Peers = append(c.Peers, config.Peer{Name: "backup", Kind: "itsp", Interface: "outside", Address: second.Addr.String(), Transport: "udp"})
				c.DialPlan.Rules = []config.DialRule{{Name: "out", ForwardTo: []config.Forward{{Peer: "itsp"}, {Peer: "backup"}}}}
			})
			ctx := ctxT(t)
			in := u.inside()
			sess, err := pbx.DC.Invite(ctx, uriAt(in, "0301234"),
				testSDP("127.0.0.1", 7000), sip.NewHeader("Content-Type", "application/sdp"))
			if err != nil {
				t.Fatal(err)
			}
			err = sess.WaitAnswer(ctx, sipgo.AnswerOptions{})
			var de *sipgo.ErrDialogResponse
			if !errors.As(err, &de) || de.Res.StatusCode != tc.want {
				t.Fatalf("caller got %v, want %d", err, tc.want)
			}
			waitNoCalls(t, u.Service)
			if n := first.Wire.Count("INVITE "); n != 1 {
				t.Fatalf("first row got %d INVITEs, want 1", n)
			}
			if n := second.Wire.Count("INVITE "); n != 0 {
				t.Fatalf("the next row got %d INVITEs after a %d", n, code)
			}
		})
	}
}

func TestDialPlanFailover(t *testing.T) {
	for _, tc := range []struct {
		name string
		mut  func(first *peerUA)
		row  config.Duration
	}{
		{"on 503", func(first *peerUA) {
			first.SetOnInvite(func(s *sipgo.DialogServerSession, _ *sip.Request) { _ = s.Respond(503, "Busy Here Today", nil) })
		}, 0},
		{"on 500", func(first *peerUA) {
			first.SetOnInvite(func(s *sipgo.DialogServerSession, _ *sip.Request) { _ = s.Respond(500, "Server Internal Error", nil) })
		}, 0},
		{"on no answer", func(first *peerUA) {
			first.SetOnInvite(func(s *sipgo.DialogServerSession, _ *sip.Request) { _ = s.Respond(180, "Ringing", nil) })
		}, config.Duration(300 * time.Millisecond)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pbx := newPeerUA(t, "pbx", "127.0.0.1", "udp")
			first := newPeerUA(t, "trunk", "127.0.0.3", "udp")
			second := newPeerUA(t, "backup", "127.0.0.4", "udp")
			tc.mut(first)
			u := newTestUnit(t, pbx, first, func(c *config.Config) {
				c.Peers = append(c.Peers, config.Peer{Name: "backup", Kind: "itsp", Interface: "outside", Address: second.Addr.String(), Transport: "udp"})
				c.DialPlan.Rules = []config.DialRule{{Name: "out", Prefix: "0", Tail: "0-9", ForwardTo: []config.Forward{
					{Peer: "itsp", Timeout: tc.row}, {Peer: "backup", Rewrite: "+49${user}"},
				}}}
			})
			ctx := ctxT(t)
			in := u.inside()
			sess, err := pbx.DC.Invite(ctx, uriAt(in, "0301234"),
				testSDP("127.0.0.1", 7000), sip.NewHeader("Content-Type", "application/sdp"))
			if err != nil {
				t.Fatal(err)
			}
			if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
				t.Fatal(err)
			}
			if inv := first.Next(sip.INVITE); inv.Recipient.User != "301234" {
				t.Fatalf("first row got user %q, want prefix stripped", inv.Recipient.User)
			}
			if inv := second.Next(sip.INVITE); inv.Recipient.User != "+49301234" {
				t.Fatalf("second row got user %q", inv.Recipient.User)
			}
			if tc.row != 0 {
				waitFor(t, func() bool { return first.Wire.Count("CANCEL ") > 0 }, "CANCEL to the unanswered row")
			}
			_ = sess.Ack(ctx)
			_ = sess.Bye(ctx)
			waitNoCalls(t, u.Service)
		})
	}
}

func waitFor(t *testing.T, f func() bool, what string) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		if f() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("gave up waiting for %s", what)
}

// TestOKRetransmittedUntilACK: over UDP the unit repeats its 200 to the
// caller until the ACK comes (here the first 200 is lost).
func TestOKRetransmittedUntilACK(t *testing.T) {
	pbx, itsp := newUDPPeers(t)
	u := newTestUnit(t, pbx, itsp, nil)
	dropped := false
	pbx.Wire.SetDrop(func(m string) bool {
		if !dropped && strings.HasPrefix(m, "SIP/2.0 200") && strings.Contains(m, "INVITE\r\n") {
			dropped = true
			return true
		}
		return false
	})
	sess, _ := establish(t, u, pbx, itsp, viaInside(u))
	if n := pbx.Wire.Count("SIP/2.0 200 OK"); n < 2 {
		t.Fatalf("caller saw %d 200s, want the lost one repeated", n)
	}
	if err := sess.Bye(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	waitNoCalls(t, u.Service)
}

// TestLargeUDPMessages: an INVITE far above 1300 bytes crosses over UDP.
func TestLargeUDPMessages(t *testing.T) {
	pbx, itsp := newUDPPeers(t)
	u := newTestUnit(t, pbx, itsp, nil)
	sdp := testSDP("127.0.0.1", 7000)
	for i := 0; i < 60; i++ {
		sdp = append(sdp, []byte("a=fmtp:101 0-15 padding-to-make-this-offer-large-"+itoa(i)+"\r\n")...)
	}
	ctx := ctxT(t)
	in := u.inside()
	sess, err := pbx.DC.Invite(ctx, uriAt(in, "1"),
		sdp, sip.NewHeader("Content-Type", "application/sdp"))
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		t.Fatal(err)
	}
	if inv := itsp.Next(sip.INVITE); len(inv.Body()) != len(sdp) || len(sdp) < 3000 {
		t.Fatalf("body %d bytes, sent %d", len(inv.Body()), len(sdp))
	}
	_ = sess.Ack(ctx)
	_ = sess.Bye(ctx)
	waitNoCalls(t, u.Service)
}
