package b2bua

import (
	"strings"
	"testing"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/observe"
)

// offerRequired makes the trunk a peer that needs an offer in every INVITE
// and answers 488 to one without SDP, as Teams does.
func offerRequired(t *testing.T, itsp *peerUA) func(*config.Config) {
	itsp.SetOnInvite(func(s *sipgo.DialogServerSession, req *sip.Request) {
		if len(req.Body()) == 0 {
			_ = s.Respond(488, "Not Acceptable Here", nil)
			return
		}
		_ = s.Respond(180, "Ringing", nil)
		_ = s.RespondSDP(testSDP("127.0.0.3", 5000))
	})
	return func(c *config.Config) {
		c.Peers[1].Trunk.Offer = config.PeerOffer{Required: true, Codecs: []string{"PCMA", "telephone-event"}}
	}
}

// TestMadeOfferForDelayedOffer: an INVITE without SDP towards a peer that
// requires an offer gets one made by the unit (the peer's codecs); the
// peer's answer is the offer in the 200 to the PBX; the PBX's answer in
// the ACK completes the call (nothing more to the peer but its ACK).
func TestMadeOfferForDelayedOffer(t *testing.T) {
	pbx := newPeerUA(t, "pbx", "127.0.0.1", "udp")
	itsp := newPeerUA(t, "trunk", "127.0.0.3", "udp")
	u := newTestUnit(t, pbx, itsp, offerRequired(t, itsp))
	ctx := ctxT(t)
	sess, err := pbx.Call(ctx, u.inside(), "123", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		t.Fatalf("delayed-offer call: %v", err)
	}
	inv := itsp.Next(sip.INVITE)
	if b := string(inv.Body()); !strings.Contains(b, "m=audio ") || !strings.Contains(b, "PCMA/8000") || strings.Contains(b, "PCMU") {
		t.Fatalf("INVITE to the peer carries %q, want the made offer with the peer's codecs", b)
	}
	if !strings.Contains(string(sess.InviteResponse.Body()), "m=audio 5000") {
		t.Fatalf("200 to the PBX carries %q, want the peer's answer as offer", sess.InviteResponse.Body())
	}
	itsp.Next(sip.ACK)
	ack := sip.NewRequest(sip.ACK, sess.InviteResponse.Contact().Address)
	ack.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	ack.SetBody(testSDP("127.0.0.1", 7010))
	if err := sess.WriteAck(ctx, ack); err != nil {
		t.Fatal(err)
	}
	if u.CallCount() != 1 {
		t.Fatal("the call did not stay up")
	}
	hangUp(t, ctx, sess, itsp, u)
}

// TestMadeOfferAckWithoutAnswer: the PBX's ACK brings no SDP answer: both
// legs get BYE and the call record says why.
func TestMadeOfferAckWithoutAnswer(t *testing.T) {
	pbx := newPeerUA(t, "pbx", "127.0.0.1", "udp")
	itsp := newPeerUA(t, "trunk", "127.0.0.3", "udp")
	rec := &fakeRecorder{}
	u := newTestUnitWith(t, pbx, itsp, Deps{Calls: rec}, offerRequired(t, itsp))
	ctx := ctxT(t)
	sess, err := pbx.Call(ctx, u.inside(), "123", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		t.Fatal(err)
	}
	_ = sess.Ack(ctx) // no SDP
	itsp.Next(sip.BYE)
	pbx.Next(sip.BYE)
	waitNoCalls(t, u.Service)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.ends) != 1 || !strings.Contains(rec.ends[0].Reason, "no usable SDP answer in ACK") || rec.ends[0].EndedBy != observe.EndedByUnit {
		t.Fatalf("call records %+v, want the reason", rec.ends)
	}
}
