package b2bua

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/media"
	"github.com/palisade-sbc/palisade/internal/observe"
	"github.com/palisade-sbc/palisade/internal/routing"
)

// newCall handles an initial INVITE: route it, create the call and run the
// outgoing leg in this goroutine until the call is answered or has failed.
func (s *Service) newCall(ep *endpoint, req *sip.Request, tx *sip.ServerTx, rt *runtime) {
	id := newID()
	s.traceIn(id, ep, req)
	// Every response built from the INVITE (including sipgo's 487 on
	// CANCEL) carries our tag (the 100 Trying need not). It is added before
	// anything is sent: sipgo builds that 487 from this request in its own
	// goroutine, and our first response (under the transaction's lock)
	// orders the two.
	trying := sip.NewResponseFromRequest(req, 100, "Trying", nil)
	tagA := newID()
	to := req.To()
	to.Params.Add("tag", tagA)
	if draining, adopting := s.draining.Load(), s.adopting.Load() != nil; draining || adopting {
		res := s.response(req, 503, "Service Unavailable", nil)
		retry := "30"
		if adopting && !draining {
			retry = "1" // a takeover: a moment (hold.go)
		}
		res.AppendHeader(sip.NewHeader("Retry-After", retry))
		s.respond(ep, tx, res, id)
		s.recordRefused(id, ep, req, 503, "Service Unavailable")
		return
	}
	s.respond(ep, tx, trying, id)
	rr := routingRequest(ep, req, rt)
	if norm := rt.inbound(rr.SourcePeer, req); norm != req {
		rr.User, rr.Host = norm.Recipient.User, norm.Recipient.Host
	}
	hops, err := s.route(rt, rr, req)
	if err != nil {
		code, reason := statusFor(err)
		s.respond(ep, tx, s.response(req, code, reason, nil), id)
		s.recordRefused(id, ep, req, code, reason)
		return
	}
	for i := range hops { // a URI naming a peer is a call to that peer (dial.go)
		hops[i] = rt.peerOfHop(hops[i])
	}
	from := req.From()
	c := s.newCallState(rt)
	c.legs[media.SideA].inv, c.legs[media.SideA].stx, c.legs[media.SideA].uas = req, tx, true
	c.st = CallState{ID: id, Phase: PhaseEarly, Started: time.Now()}
	a := c.leg(media.SideA)
	*a = Leg{
		Interface: ep.name, Transport: strings.ToLower(req.Transport()), Peer: rr.SourcePeer,
		CallID: req.CallID().Value(), LocalTag: tagA, RemoteTag: getTag(from.Params),
		LocalURI: to.Address, LocalName: to.DisplayName, RemoteURI: from.Address, RemoteName: from.DisplayName,
		RemoteCSeq: req.CSeq().SeqNo, InviteCSeq: req.CSeq().SeqNo,
		RemoteTarget: req.Contact().Address, RouteSet: routeSet(req, false), Flow: req.Source(),
	}
	b := c.leg(media.SideB)
	b.CallID, b.LocalTag = newID(), newID()
	c.legs[media.SideA].ep = ep
	first := rt.peerOfHop(hops[0])
	c.legs[media.SideB].ep = rt.egress(first, ep) // as dial.go sends it

	// Each media leg takes the policy of the peer it faces (peers[].media),
	// else its interface's: the caller's peer, and the first hop's.
	infoA := ep.info.Load()
	c.hop.a, c.hop.b = mediaLeg(ep, rr.SourcePeer), mediaLeg(c.legs[media.SideB].ep, first.Peer)
	mc, err := s.newMedia(id, c.hop.a, c.hop.b)
	if err != nil {
		code, reason := statusFor(err)
		s.respond(ep, tx, s.response(req, code, reason, nil), id)
		s.recordRefused(id, ep, req, code, reason)
		return
	}
	c.media = mc
	mc.OnInactive(func() { c.hangup("media inactivity timeout") }) // BYE on both legs
	var sdpB []byte
	if body := req.Body(); len(body) > 0 {
		if sdpB, err = mc.Offer(media.SideA, body); err != nil {
			mc.Close()
			code, reason := statusFor(err)
			s.respond(ep, tx, s.response(req, code, reason, nil), id)
			s.recordRefused(id, ep, req, code, reason)
			return
		}
	} else if codecs := rt.offerCodecs(hops); codecs != nil {
		// the far peer takes no INVITE without SDP: the unit makes the offer
		if sdpB, err = makeOffer(mc, infoA.addr, codecs); err != nil {
			mc.Close()
			code, reason := statusFor(err)
			s.respond(ep, tx, s.response(req, code, reason, nil), id)
			s.recordRefused(id, ep, req, code, reason)
			return
		}
		c.offerMade = true
	} else {
		c.lateOffer = true
	}
	s.calls.put(dialogKey(a.CallID, a.LocalTag), c)
	s.calls.put(dialogKey(b.CallID, b.LocalTag), c)
	s.calls.added()
	callsActive.Inc()
	c.recordStart()
	// sipgo keeps a transaction (and its hooks) alive until its last timer
	// fires, up to 32 s after the call; the hooks reach the call through a
	// reference that end() clears, so an ended call is not kept that long.
	ref := c.ref()
	if !tx.OnCancel(func(r *sip.Request) {
		if c := ref.Load(); c != nil {
			s.traceIn(id, ep, r)
			s.traceCancelAnswers(id, ep, r, req)
			c.cancelOnce.Do(func() { close(c.canceled) })
		}
	}) {
		// The CANCEL came while the call was being set up (sipgo has
		// answered it and sent 487): the far leg is never called.
		c.cancelOnce.Do(func() { close(c.canceled) })
	}
	c.run(hops, sdpB)
}

// run places the far leg's INVITE (dial.go) and relays its outcome.
func (c *call) run(hops []routing.Hop, sdp []byte) {
	if c.isCanceled() {
		c.end("canceled")
		return
	}
	c.mu.Lock()
	in := c.legs[media.SideA].ep
	c.mu.Unlock()
	ref := c.ref()
	d := &dialer{
		svc: c.svc, rt: c.rt, id: c.st.ID, log: c.logger, in: in,
		mu: &c.mu, leg: c.legs[media.SideB], cancel: c.canceled, fromPeer: c.legs[media.SideA].Peer,
		build: func(h routing.Hop, tg routing.Target, ep *endpoint) *sip.Request {
			sdp = c.mediaForHop(h, ep, sdp)
			return c.buildInviteB(h, tg, ep, sdp)
		},
		sent: func(ep *endpoint, req *sip.Request, tx *sip.ClientTx, _ routing.Target) {
			c.mu.Lock()
			c.legs[media.SideB].inv, c.legs[media.SideB].itx = req, tx
			c.mu.Unlock()
			// a 2xx repeated on the transaction gets our ACK again
			tx.OnRetransmission(func(r *sip.Response) {
				if c := ref.Load(); c != nil && r.IsSuccess() {
					c.legAt(c.sideOf(getTag(r.From().Params))).resendAck()
				}
			})
		},
		early: c.onProvisionalB,
	}
	ans, err := d.dial(c.context(), hops)
	if ans != nil {
		if ans.canceled {
			// CANCEL lost the race with the 2xx: the caller has its 487,
			// so confirm and end the far leg right away.
			c.legAt(media.SideB).sendAck(nil)
			c.byeSide(media.SideB)
			c.end("canceled")
			return
		}
		c.onAnswerB(ans.res)
		return
	}
	var de *DialError
	if !errors.As(err, &de) || de.Canceled || c.isCanceled() {
		c.end("canceled")
		return
	}
	if de.Response != nil {
		c.relayFinalA(de.Response)
		return
	}
	inv, _, _ := c.callerSide()
	if inv == nil {
		return // endedMeanwhile
	}
	c.setEndedBy(observe.EndedByUnit)
	c.respondA(c.svc.response(inv, de.Code, de.Reason, nil))
	c.end("failed: " + strconv.Itoa(de.Code))
}

// buildInviteB makes the far leg's INVITE for target tg of hop h on ep and
// sets leg B up for it (c.mu held).
func (c *call) buildInviteB(h routing.Hop, tg routing.Target, ep *endpoint, sdp []byte) *sip.Request {
	rt := c.rt
	info := ep.info.Load()
	a := c.leg(media.SideA)
	c.legs[media.SideB].ep = ep
	b := c.leg(media.SideB)
	b.Interface, b.Transport, b.Peer = ep.name, tg.Transport, h.Peer
	b.LocalURI = sip.Uri{Scheme: "sip", User: a.RemoteURI.User, Host: info.Host}
	b.LocalName = a.RemoteName
	b.RemoteURI = sip.Uri{Scheme: "sip", User: h.User, Host: h.Host}
	b.RemoteName = a.LocalName
	b.RemoteTarget = hopURI(h)
	b.RemoteTag, b.RouteSet = "", nil
	b.ServerName, b.Flow = tg.ServerName, tg.Addr.String()
	b.LocalCSeq++
	b.InviteCSeq = b.LocalCSeq
	req := newRequest(sip.INVITE, b, info, decMaxForwards(c.legs[media.SideA].inv, rt), b.LocalCSeq)
	req.AppendHeader(info.Contact(tg.Transport))
	copyHeaders(req, c.legs[media.SideA].inv, info)
	rt.trunkHeaders(req, c.legs[media.SideA].inv, h.Peer, info)
	for k, v := range h.Headers {
		req.AppendHeader(sip.NewHeader(k, v))
	}
	if rt.userAgent != "" {
		req.AppendHeader(sip.NewHeader("User-Agent", rt.userAgent))
	}
	if len(sdp) > 0 {
		req.SetBody(sdp)
	} else {
		req.RemoveHeader("Content-Type")
		req.SetBody(nil)
	}
	c.legs[media.SideB].tg = tg
	return req
}

func (c *call) isCanceled() bool {
	select {
	case <-c.canceled:
		return true
	default:
		return false
	}
}

// redirectHops turns the Contacts of a 3xx into hops, highest q first.
func redirectHops(r *sip.Response, h routing.Hop) []routing.Hop {
	type qc struct {
		q float64
		u sip.Uri
	}
	var list []qc
	for _, hh := range r.GetHeaders("Contact") {
		ch, ok := hh.(*sip.ContactHeader)
		if !ok || ch.Address.Host == "" {
			continue
		}
		q := 1.0
		if v, ok := ch.Params.Get("q"); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		list = append(list, qc{q, ch.Address})
	}
	slices.SortStableFunc(list, func(a, b qc) int {
		switch {
		case a.q > b.q:
			return -1
		case a.q < b.q:
			return 1
		}
		return 0
	})
	var hops []routing.Hop
	for _, e := range list {
		hops = append(hops, routing.Hop{
			Step: "redirect", Interface: h.Interface, Scheme: e.u.Scheme, User: e.u.User,
			Host: e.u.Host, Port: e.u.Port, Transport: uriTransport(&e.u), Timeout: h.Timeout,
		})
	}
	return hops
}

// onProvisionalB relays a 18x to the caller (early media SDP through the
// media hook; RSeq and Require: 100rel pass so PRACK is end to end).
func (c *call) onProvisionalB(r *sip.Response) {
	body, err := c.calleeSDP(r.Body())
	if err != nil {
		c.logger().Info("early media SDP refused", "err", err)
		body = nil
	}
	inv, _, epA := c.callerSide()
	if inv == nil {
		return // endedMeanwhile
	}
	if len(body) > 0 {
		c.mu.Lock()
		c.hop.toCaller = true
		c.mu.Unlock()
	}
	res := c.svc.response(inv, r.StatusCode, r.Reason, nil)
	c.legAt(media.SideA).addContact(res)
	copyHeaders(res, r, epA.info.Load())
	if len(body) == 0 {
		res.RemoveHeader("Content-Type")
	}
	res.SetBody(body)
	c.respondA(res)
}

// calleeSDP passes SDP from the callee's 18x or 2xx through the media call:
// the answer to the caller's offer, or the offer of a late-offer call.
func (c *call) calleeSDP(body []byte) ([]byte, error) {
	if len(body) == 0 {
		return body, nil
	}
	c.mu.Lock()
	mc, late, made := c.media, c.lateOffer, c.offerMade
	c.mu.Unlock()
	if made {
		return nil, c.answerMadeOffer(body)
	}
	if late {
		return mc.Offer(media.SideB, body)
	}
	return mc.Answer(media.SideB, body)
}

// callerSide returns the caller's INVITE, its transaction and endpoint (a
// Replaces may swap them, replaces.go).
//
// endedMeanwhile: the INVITE is nil once the call has ended (end drops it),
// which can happen while the far leg's response is on its way: the unit
// lost the floating addresses (Abandon) or stops. Such a response is not
// relayed any more.
func (c *call) callerSide() (*sip.Request, *sip.ServerTx, *endpoint) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.legs[media.SideA].inv, c.legs[media.SideA].stx, c.legs[media.SideA].ep
}

// onAnswerB handles the far leg's 2xx: confirm both legs.
func (c *call) onAnswerB(r *sip.Response) {
	inv, _, epA := c.callerSide()
	if inv == nil {
		// The call ended while the far end answered (endedMeanwhile):
		// confirm and hang up the far leg; the caller gets nothing more.
		c.legAt(media.SideB).sendAck(nil)
		c.byeSide(media.SideB)
		return
	}
	c.noteCaps(media.SideB, r) // refer.go: Allow/Supported for REFER decisions
	body, err := c.calleeSDP(r.Body())
	if err == nil && c.offerMade { // set before the call was published, never changed
		body, err = c.madeOfferToCaller(r.Body())
	}
	if err != nil {
		// the far end answered with SDP we cannot use: end both legs
		c.legAt(media.SideB).sendAck(nil)
		c.byeSide(media.SideB)
		code, reason := statusFor(err)
		c.respondA(c.svc.response(inv, code, reason, nil))
		c.end("failed: answer SDP")
		return
	}
	// Confirmed before the far leg's ACK: the far end may send a request
	// in the dialog (Teams: a REFER) as soon as it has the ACK.
	c.mu.Lock()
	c.st.Phase = PhaseConfirmed
	c.st.Answered = time.Now()
	c.mu.Unlock()
	if !c.lateOffer { // set before the call was published, never changed
		c.legAt(media.SideB).sendAck(nil)
	}
	res := c.svc.response(inv, r.StatusCode, r.Reason, nil)
	a := c.legAt(media.SideA)
	a.addContact(res)
	copyHeaders(res, r, epA.info.Load())
	if len(body) == 0 {
		res.RemoveHeader("Content-Type")
	}
	res.SetBody(body)
	c.mu.Lock()
	a.final = res
	udp := a.Transport == "udp"
	c.mu.Unlock()
	c.recordAnswer()
	c.persist() // adopt.go: the record a unit taking over reads
	c.respondA(res)
	if udp {
		a.retransmit2xx(c.noAck(a))
	}
}

// noAck is what happens when l's 2xx got no ACK: the call ends.
func (c *call) noAck(l *leg) func() {
	return func() {
		c.logger().Info("no ACK for the 2xx: ending the call", "side", sideName(l.side))
		c.hangup("no ACK")
	}
}

// relayFinalA relays a final non-2xx response from the far leg.
func (c *call) relayFinalA(r *sip.Response) {
	code, reason := mapFinal(r.StatusCode, r.Reason)
	inv, _, epA := c.callerSide()
	if inv == nil {
		return // endedMeanwhile
	}
	res := c.svc.response(inv, code, reason, nil)
	copyHeaders(res, r, epA.info.Load())
	if code >= 300 && code < 400 {
		for _, h := range r.GetHeaders("Contact") {
			res.AppendHeader(sip.HeaderClone(h))
		}
	}
	res.RemoveHeader("Content-Type")
	res.SetBody(nil)
	c.setEndedBy(observe.EndedByCallee)
	c.respondA(res)
	c.end("failed: " + strconv.Itoa(code))
}

// respondA answers the caller's INVITE with res, noting a failure for the
// call record.
func (c *call) respondA(res *sip.Response) {
	c.noteFinalA(res)
	c.legAt(media.SideA).respond(res)
}
