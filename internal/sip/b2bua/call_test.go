package b2bua

import (
	"context"
	"strings"
	"testing"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

func TestBasicCallInsideToOutside(t *testing.T) {
	pbx := newPeerUA(t, "InsidePBX-9000", "127.0.0.1", "udp")
	itsp := newPeerUA(t, "trunk", "127.0.0.3", "udp")
	u := newTestUnit(t, pbx, itsp, nil)
	ctx := ctxT(t)

	sess, err := pbx.Call(ctx, u.inside(), "4930123456", testSDP("127.0.0.1", 7000))
	if err != nil {
		t.Fatal(err)
	}
	confirm(t, ctx, sess)
	inv := itsp.Next(sip.INVITE)
	if inv.CallID().Value() == sess.InviteRequest.CallID().Value() {
		t.Fatal("Call-ID crossed the unit")
	}
	if inv.Recipient.User != "4930123456" {
		t.Fatalf("Request-URI user %q", inv.Recipient.User)
	}
	if !strings.Contains(string(inv.Body()), "m=audio 7000") {
		t.Fatalf("SDP not relayed: %q", inv.Body())
	}
	if !strings.Contains(string(sess.InviteResponse.Body()), "m=audio 5000") {
		t.Fatalf("answer SDP not relayed: %q", sess.InviteResponse.Body())
	}
	itsp.Next(sip.ACK)
	if err := sess.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	itsp.Next(sip.BYE)
	waitNoCalls(t, u.Service)
}

// confirm waits for the answer to the caller's INVITE and acknowledges it.
func confirm(t *testing.T, ctx context.Context, sess *sipgo.DialogClientSession) {
	t.Helper()
	if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := sess.Ack(ctx); err != nil {
		t.Fatal(err)
	}
}

func waitNoCalls(t *testing.T, s *Service) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if s.calls.count() == 0 {
			return
		}
		sleepMS(10)
	}
	t.Fatalf("%d calls still active", s.calls.count())
}
