package b2bua

import (
	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/media"
	"github.com/palisade-sbc/palisade/internal/routing"
)

// leg is one side of a call: its dialog (Leg, plain and serialisable) and
// the live handles to speak on it. Its fields are guarded by the call's
// mu. A transfer or a Replaces puts a new *leg in a side's place in one
// assignment under that lock, so a leg's dialog, endpoint and INVITE
// exchange never come from two different parties.
type leg struct {
	Leg
	ep *endpoint

	// The INVITE that set the dialog up, and what goes with it.
	uas   bool           // it came to us and we answer it; else we sent it
	inv   *sip.Request   // that INVITE (dropped once the call is up)
	stx   *sip.ServerTx  // uas: its transaction
	final *sip.Response  // uas: our 2xx, repeated over UDP until the ACK
	acked bool           // uas: the ACK came
	itx   *sip.ClientTx  // uac: its transaction
	tg    routing.Target // uac: where it went
	ack   *sip.Request   // uac: our ACK for its 2xx, repeated for a repeated 2xx
}

// request builds a request in the leg's dialog with CSeq cseq.
func (l *leg) request(method sip.RequestMethod, maxFwd int, cseq uint32) *sip.Request {
	return newRequest(method, &l.Leg, l.ep.info.Load(), maxFwd, cseq)
}

// nextCSeq takes the leg's next local CSeq.
func (l *leg) nextCSeq() uint32 {
	l.LocalCSeq++
	return l.LocalCSeq
}

// contact is the unit's Contact on this leg.
func (l *leg) contact() *sip.ContactHeader { return l.ep.info.Load().contact(l.Transport) }

// refresh takes a target refresh (RFC 3261 §12.2) from the Contact of a
// request or response of the peer.
func (l *leg) refresh(ct *sip.ContactHeader) {
	if ct != nil {
		l.RemoteTarget = ct.Address
	}
}

// establish records the dialog a response with a To tag makes (a 18x or
// 2xx to the INVITE we sent).
func (l *leg) establish(r *sip.Response) {
	if t := getTag(r.To().Params); t != "" {
		l.RemoteTag = t
	}
	l.refresh(r.Contact())
	if rs := routeSet(r, true); len(rs) > 0 {
		l.RouteSet = rs
	}
}

// newInDialog builds a request on side with the leg's next CSeq, read in
// one step under the call's lock (a transfer may replace the leg at any
// time): the request, the endpoint to send it on and a copy of the dialog.
func (c *call) newInDialog(side media.Side, method sip.RequestMethod, withContact bool) (*sip.Request, *endpoint, Leg) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.legs[side]
	req := l.request(method, c.rt.maxForwards, l.nextCSeq())
	if withContact {
		req.AppendHeader(l.contact())
	}
	c.rt.addPeerHeaders(req, l.Peer)
	return req, l.ep, l.Leg
}
