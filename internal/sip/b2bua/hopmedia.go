package b2bua

import (
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/media"
	"github.com/palisade-sbc/palisade/internal/routing"
)

// hopMedia is what a call's media was set up for: the caller's media leg
// and the far leg's interface and peer, whose policy shaped the offer.
type hopMedia struct {
	a media.Leg
	b media.Leg
	// toCaller: SDP of the far side went to the caller (early media), so
	// the media can no longer be set up again.
	toCaller bool
}

// mediaForHop fits the far leg's media to hop h sent on ep, and returns the
// SDP to send it (c.mu held). When a dial plan row's next destination is
// another peer or interface than the one the media was set up for (the
// first failed), and nothing of the media reached the caller yet, the media
// is set up again from the caller's offer, so that the offer follows that
// peer's own policy (peers[].media): a Teams trunk gets SRTP, a lab trunk
// after it plain RTP. Otherwise, or when the caller's offer cannot meet the
// new policy, sdp is sent as it is (the peer may refuse it with 488).
func (c *call) mediaForHop(h routing.Hop, ep *endpoint, sdp []byte) []byte {
	want := mediaLeg(ep, h.Peer)
	hm := &c.hop
	if hm.toCaller || (hm.b.Interface == want.Interface && hm.b.Peer == want.Peer) {
		return sdp
	}
	mc, err := c.svc.newMedia(c.st.ID, hm.a, want)
	if err != nil {
		c.logger().Info("media not set up again for the next destination", "peer", h.Peer, "err", err)
		return sdp
	}
	out := []byte(nil)
	switch {
	case c.offerMade:
		codecs := c.rt.offers[h.Peer]
		if codecs == nil {
			codecs = config.DefaultOfferCodecs
		}
		out, err = makeOffer(mc, hm.a.Bind, codecs)
	case !c.lateOffer:
		out, err = mc.Offer(media.SideA, c.legs[media.SideA].inv.Body())
	}
	if err != nil {
		mc.Close()
		c.logger().Info("the caller's offer does not meet the next destination's media policy; sent as made for the first", "peer", h.Peer, "err", err)
		return sdp
	}
	old := c.media
	c.media, hm.b = mc, want
	c.madeAnswered = false // the failed destination's early answer was to the old offer
	mc.OnInactive(func() { c.hangup("media inactivity timeout") })
	old.Close()
	return out
}
