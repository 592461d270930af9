package b2bua

import (
	"context"
	"strings"
	"testing"
	"time"

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
	pbx, itsp := newUDPPeers(t)
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

// madeOfferUnit is a unit whose trunk requires an offer, with a call recorder.
func madeOfferUnit(t *testing.T) (pbx, itsp *peerUA, rec *fakeRecorder, u *testUnit) {
	pbx = newPeerUA(t, "pbx", "127.0.0.1", "udp")
	itsp = newPeerUA(t, "trunk", "127.0.0.3", "udp")
	rec = &fakeRecorder{}
	u = newTestUnitWith(t, pbx, itsp, Deps{Calls: rec}, offerRequired(t, itsp))
	return pbx, itsp, rec, u
}

// TestMadeOfferAckWithoutAnswer: the PBX's ACK brings no SDP answer: both
// legs get BYE and the call record says why.
func TestMadeOfferAckWithoutAnswer(t *testing.T) {
	pbx, itsp, rec, u := madeOfferUnit(t)
	ctx := ctxT(t)
	sess, err := pbx.Call(ctx, u.inside(), "123", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		t.Fatal(err)
	}
	_ = sess.Ack(ctx) // no SDP
	endedForNoAnswer(t, u, pbx, itsp, rec)
}

// endedForNoAnswer waits for the BYE on both legs and the call record's
// reason after an ACK without a usable answer.
func endedForNoAnswer(t *testing.T, u *testUnit, pbx, itsp *peerUA, rec *fakeRecorder) {
	t.Helper()
	itsp.Next(sip.BYE)
	pbx.Next(sip.BYE)
	waitNoCalls(t, u.Service)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.ends) != 1 || !strings.Contains(rec.ends[0].Reason, "no usable SDP answer in ACK") || rec.ends[0].EndedBy != observe.EndedByUnit {
		t.Fatalf("call records %+v, want the reason", rec.ends)
	}
}

// reinviteNoSDP sends the PBX's re-INVITE without SDP in an established
// call towards a peer that requires an offer and returns the 200.
func reinviteNoSDP(t *testing.T, ctx context.Context, sess *sipgo.DialogClientSession, itsp *peerUA) (*sip.Response, *sip.Request) {
	t.Helper()
	itsp.SetRespond(func(req *sip.Request) (int, []byte) {
		if req.Method == sip.INVITE && len(req.Body()) == 0 {
			return 488, nil
		}
		if req.Method == sip.INVITE {
			return 200, testSDP("127.0.0.3", 5008)
		}
		return 200, nil
	})
	re := sip.NewRequest(sip.INVITE, sess.InviteResponse.Contact().Address)
	res, err := sess.Do(ctx, re)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("re-INVITE without SDP towards a peer requiring an offer: %v %v", res, err)
	}
	got := itsp.Next(sip.INVITE)
	if b := string(got.Body()); !strings.Contains(b, "m=audio ") || !strings.Contains(b, "PCMA/8000") || strings.Contains(b, "PCMU") {
		t.Fatalf("re-INVITE to the peer carries %q, want the made offer with the peer's codecs", b)
	}
	if ct := got.ContentType(); ct == nil || ct.Value() != "application/sdp" {
		t.Fatalf("re-INVITE to the peer has Content-Type %v", ct)
	}
	// the test unit's media passes SDP through (as in TestMadeOfferForDelayedOffer)
	if b := string(res.Body()); !strings.Contains(b, "m=audio 5008") {
		t.Fatalf("200 to the PBX carries %q, want the peer's answer as the offer", b)
	}
	return res, got
}

// TestMadeOfferForReinviteWithoutSDP: a re-INVITE without SDP from the
// PBX towards a peer that requires an offer gets one made by the unit; the
// peer's answer is the offer in the 200 to the PBX, the PBX's answer in
// its ACK completes the media and the peer gets its ACK without SDP.
func TestMadeOfferForReinviteWithoutSDP(t *testing.T) {
	pbx, itsp := newUDPPeers(t)
	u := newTestUnit(t, pbx, itsp, offerRequired(t, itsp))
	sess, _ := establish(t, u, pbx, itsp, viaInside(u))
	ctx := ctxT(t)
	_, got := reinviteNoSDP(t, ctx, sess, itsp)

	ack := sip.NewRequest(sip.ACK, sess.InviteResponse.Contact().Address)
	ack.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	ack.SetBody(testSDP("127.0.0.1", 7012))
	if err := sess.WriteRequest(ack); err != nil {
		t.Fatal(err)
	}
	a := itsp.Next(sip.ACK)
	if a.CSeq().SeqNo != got.CSeq().SeqNo || len(a.Body()) != 0 {
		t.Fatalf("ACK to the peer: CSeq %d (re-INVITE %d), body %q; want no SDP, the peer answered already", a.CSeq().SeqNo, got.CSeq().SeqNo, a.Body())
	}
	if _, ok := itsp.NextWithin(sip.BYE, 300*time.Millisecond); ok || u.CallCount() != 1 {
		t.Fatal("the call did not stay up")
	}
	hangUp(t, ctx, sess, itsp, u)
}

// TestMadeOfferReinviteAckWithoutAnswer: the PBX's ACK to the re-INVITE
// brings no answer: the peer still gets its ACK, then both legs a BYE.
func TestMadeOfferReinviteAckWithoutAnswer(t *testing.T) {
	pbx, itsp, rec, u := madeOfferUnit(t)
	sess, _ := establish(t, u, pbx, itsp, viaInside(u))
	ctx := ctxT(t)
	reinviteNoSDP(t, ctx, sess, itsp)
	if err := sess.WriteRequest(sip.NewRequest(sip.ACK, sess.InviteResponse.Contact().Address)); err != nil {
		t.Fatal(err)
	}
	itsp.Next(sip.ACK)
	endedForNoAnswer(t, u, pbx, itsp, rec)
}

// TestTransferResyncAsksTheOtherParty: after a transfer whose transferee
// (a trunk that requires an offer) moved its media, the unit brings both
// parties in line by asking the other party (the new target) for the
// offer; the trunk never gets an INVITE without SDP.
func TestTransferResyncAsksTheOtherParty(t *testing.T) {
	pbx, itsp, _ := srtpTransfer(t, func(req *sip.Request) (int, []byte) {
		switch {
		case req.Method != sip.INVITE:
			return 200, nil
		case len(req.Body()) == 0:
			return 488, nil
		}
		return 200, srtpSDP("127.0.0.3", 5004) // its media moves: resync
	}, func(c *config.Config) { c.Peers[1].Trunk.Offer = config.PeerOffer{Required: true} })
	nextInvite(t, pbx, false) // the new leg
	if re := nextInvite(t, itsp, true); len(re.Body()) == 0 {
		t.Fatal("the transferee's re-INVITE has no SDP")
	}
	ask := nextInvite(t, pbx, true)
	if len(ask.Body()) != 0 {
		t.Fatalf("resync: the target was sent %q, want a re-INVITE asking for an offer", ask.Body())
	}
	if re := nextInvite(t, itsp, true); !strings.Contains(string(re.Body()), "RTP/SAVP") {
		t.Fatalf("resync: the trunk was sent %q, want the target's offer through the relay", re.Body())
	}
	for range 3 {
		if a := pbx.Next(sip.ACK); a.CSeq().SeqNo == ask.CSeq().SeqNo && a.CallID().Value() == ask.CallID().Value() {
			if !strings.Contains(string(a.Body()), "m=audio ") {
				t.Fatalf("resync: the target's ACK carries %q, want the trunk's answer", a.Body())
			}
			return
		}
	}
	t.Fatal("resync: no ACK to the target's re-INVITE")
}
