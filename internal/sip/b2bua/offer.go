package b2bua

import (
	"errors"
	"math/rand/v2"
	"net/netip"

	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/media"
	"github.com/palisade-sbc/palisade/internal/media/sdp"
	"github.com/palisade-sbc/palisade/internal/routing"
)

// Offer conversion (config peers[].trunk.offer): a peer such as Teams
// Direct Routing refuses an INVITE without SDP (488), so for a caller that
// sent none the unit makes the offer itself (sdp.NewOffer with the peer's
// codecs, taken by the relay as the caller's offer and anchored, SRTP per
// policy). The peer's answer completes that exchange and, offered again
// from the peer's side, becomes the offer in the 2xx to the caller; the
// caller's answer in its ACK completes the media. The relay's answer
// towards the peer is not sent: the peer has answered already
// (internal/media/late_offer_test.go proves the relay keeps its side).

var errNoAnswerInAck = errors.New("ACK without a usable SDP answer")

// offerCodecs returns the codecs of the offer to make when the first hop
// goes to a peer that requires one; nil when no offer is needed.
func (rt *runtime) offerCodecs(hops []routing.Hop) []string {
	if len(hops) == 0 {
		return nil
	}
	return rt.offers[rt.peerOfHop(hops[0]).Peer]
}

// needsOffer reports whether side's peer takes no INVITE without SDP.
func (c *call) needsOffer(side media.Side) bool {
	return c.rt.offers[c.legOf(side).Peer] != nil
}

// makeOffer is the caller's leg's offer the unit makes, turned by the
// relay into the offer to the far leg.
func makeOffer(mc media.Call, addr netip.Addr, codecs []string) ([]byte, error) {
	tmpl, err := sdp.NewOffer(addr, 9, codecs, rand.Uint64N(1<<62))
	if err != nil {
		return nil, err
	}
	return mc.Offer(media.SideA, tmpl)
}

// answerMadeOffer gives the relay the far leg's answer (first 18x or 2xx
// with SDP); nothing is relayed to the caller from a provisional answer.
func (c *call) answerMadeOffer(body []byte) error {
	c.mu.Lock()
	done := c.madeAnswered
	c.madeAnswered = true
	mc := c.media
	c.mu.Unlock()
	if done || len(body) == 0 {
		if !done {
			c.mu.Lock()
			c.madeAnswered = false
			c.mu.Unlock()
		}
		return nil
	}
	_, err := mc.Answer(media.SideB, body)
	return err
}

// madeOfferToCaller is the offer in the 2xx to the caller: the far leg's
// answer, offered from its side.
func (c *call) madeOfferToCaller(body []byte) ([]byte, error) {
	c.mu.Lock()
	answered := c.madeAnswered
	c.mu.Unlock()
	if !answered {
		return nil, errStatus(488, "Not Acceptable Here (no SDP answer to the offer made)")
	}
	return c.mediaOf().Offer(media.SideB, body)
}

// ackOfMadeOffer completes the media with the caller's answer in its ACK;
// without a usable one both legs are ended (BYE), the reason recorded.
func (c *call) ackOfMadeOffer(req *sip.Request) {
	body := req.Body()
	err := errNoAnswerInAck
	if len(body) > 0 {
		_, err = c.mediaOf().Answer(media.SideA, body)
	}
	if err != nil {
		c.logger().Info("late-offer call ended: no usable answer in the ACK", "err", err)
		c.hangup("no usable SDP answer in ACK")
	}
}

// offerSettings notes the codecs of the peers that require an offer.
func offerSettings(peers []config.Peer) map[string][]string {
	m := map[string][]string{}
	for _, p := range peers {
		if !p.Trunk.Offer.Required {
			continue
		}
		codecs := p.Trunk.Offer.Codecs
		if len(codecs) == 0 {
			codecs = config.DefaultOfferCodecs
		}
		m[p.Name] = codecs
	}
	return m
}

// sdpFlow is how a relayed re-INVITE's offer/answer runs.
type sdpFlow int

const (
	flowOffered sdpFlow = iota // the sender offered: the response answers
	flowLate                   // no SDP: the 2xx offers, the sender's ACK answers
	flowMade                   // no SDP towards a peer that requires an offer: the unit made one
)

// reofferFromAnswer completes the offer the unit made on a re-INVITE with
// the far peer's answer (from side to) and turns it into the offer in the
// 2xx to the sender of the re-INVITE, as for a new call.
func (c *call) reofferFromAnswer(to media.Side, body []byte) ([]byte, error) {
	mc := c.mediaOf()
	if _, err := mc.Answer(to, body); err != nil {
		return nil, err
	}
	return mc.Offer(to, body)
}

// ackOfMadeReoffer completes a re-INVITE the unit made the offer for: the
// sender's answer in its ACK goes to the relay; the far peer, which
// answered already, gets its ACK without SDP. Without a usable answer both
// legs are ended, the reason recorded.
func (c *call) ackOfMadeReoffer(ri *reinvite, ack, req *sip.Request) {
	err := errNoAnswerInAck
	if body := req.Body(); len(body) > 0 {
		_, err = c.mediaOf().Answer(ri.from, body)
	}
	ack.RemoveHeader("Content-Type")
	ack.SetBody(nil)
	_ = c.endpointOf(ri.from.Other()).send(ack, ri.dst, c.st.ID)
	if err != nil {
		c.logger().Info("re-INVITE with a made offer: no usable answer in the ACK", "err", err)
		c.hangup("no usable SDP answer in ACK")
	}
}
