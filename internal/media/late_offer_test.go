package media

import (
	"net/netip"
	"testing"

	"github.com/palisade-sbc/palisade/internal/media/sdp"
)

// TestDelayedOfferConversion is the media half of offer conversion
// (config peers[].trunk.offer.required): the PBX sent an INVITE without
// SDP, the peer requires an offer.
//
//  1. The unit makes an offer for the PBX's leg (sdp.NewOffer, codecs from
//     the peer's list, its own address and the discard port) and the relay
//     turns it into the offer to the peer (SRTP per policy).
//  2. The peer's answer completes that exchange (its result is not sent:
//     the PBX made no offer).
//  3. The peer's answer, given again as an offer from the peer's side,
//     becomes the offer in the 200 to the PBX.
//  4. The PBX's answer in the ACK completes that exchange; the answer it
//     produces for the peer is not sent (the peer already answered), so
//     the relay must keep the keys it gave the peer in step 1.
//
// Media then flows both ways with the keys each side learned.
func TestDelayedOfferConversion(t *testing.T) {
	cfg := testConfig(t, 20)
	setOutside(cfg, "SRTP", "srtp")
	r := newTestRelay(t, cfg)
	c := newTestCall(t, r)
	pbx, ext := newEndpoint(t), newEndpoint(t)

	tmpl, err := sdp.NewOffer(lo, 9, []string{"PCMA", "PCMU", "telephone-event"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	offerB, err := c.Offer(SideA, tmpl)
	if err != nil {
		t.Fatalf("relay refused the made offer: %v\n%s", err, tmpl)
	}
	ob, _ := sdp.Parse(offerB)
	if ob.Media[0].Proto != "RTP/SAVP" || !ob.Media[0].Has("crypto") {
		t.Fatalf("offer to the peer is not SRTP:\n%s", offerB)
	}
	ext.learn(offerB, 1)
	extAnswer := ext.sdpBody("RTP/SAVP", ext.key(1, sdp.SuiteAES80))
	if _, err := c.Answer(SideB, extAnswer); err != nil {
		t.Fatalf("peer's answer: %v", err)
	}

	offerA, err := c.Offer(SideB, extAnswer)
	if err != nil {
		t.Fatalf("peer's answer as offer to the PBX: %v", err)
	}
	oa := pbx.learn(offerA, 0)
	if oa.Media[0].Proto != "RTP/AVP" || oa.Media[0].Has("crypto") {
		t.Fatalf("offer to the PBX is not plain RTP:\n%s", offerA)
	}
	toPeer, err := c.Answer(SideA, pbx.sdpBody("RTP/AVP"))
	if err != nil {
		t.Fatalf("PBX's answer: %v", err)
	}
	// What the relay would send the peer now must not need sending: same
	// address, port and key as in step 1.
	tp, _ := sdp.Parse(toPeer)
	a1, _ := ob.MediaConn(ob.Media[0])
	a2, _ := tp.MediaConn(tp.Media[0])
	k1, _ := sdp.ParseCrypto(ob.Media[0].Attrs("crypto")[0])
	k2, _ := sdp.ParseCrypto(tp.Media[0].Attrs("crypto")[0])
	if netip.AddrPortFrom(a1, uint16(ob.Media[0].Port)) != netip.AddrPortFrom(a2, uint16(tp.Media[0].Port)) || string(k1.Key) != string(k2.Key) {
		t.Fatalf("the relay changed its side towards the peer, which will not hear of it:\nstep 1:\n%s\nstep 4:\n%s", offerB, toPeer)
	}
	exchange(t, pbx, ext, "late offer")
}
