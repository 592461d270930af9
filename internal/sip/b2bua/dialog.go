package b2bua

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/media"
	"github.com/palisade-sbc/palisade/internal/routing"
	"github.com/palisade-sbc/palisade/internal/sip/transport"
)

// onAck handles the ACK of a 2xx from side.
func (c *call) onAck(side media.Side, req *sip.Request) {
	c.mu.Lock()
	ri := c.reinv
	if ri != nil && ri.from == side && req.CSeq().SeqNo == c.leg(side).RemoteCSeq {
		c.reinv = nil
		c.mu.Unlock()
		c.relayReinviteAck(ri, req)
		return
	}
	l := c.legs[side]
	if !l.uas || l.acked || l.final == nil {
		c.mu.Unlock()
		return
	}
	l.acked = true
	late := side == media.SideA && c.lateOffer && c.legs[media.SideB].ack == nil
	made := side == media.SideA && c.offerMade
	// The call is up: drop what only the set-up needed (the INVITE
	// transaction would otherwise linger 32 s in its Accepted state; a
	// retransmitted INVITE after our 2xx was ACKed has nothing to get).
	stx := l.stx
	l.final, c.legs[side.Other()].inv = nil, nil
	c.mu.Unlock()
	if stx != nil {
		stx.Terminate()
	}
	if made {
		c.ackOfMadeOffer(req)
		c.persist() // adopt.go: the answer came in the ACK
		return
	}
	if late {
		body := req.Body()
		if len(body) > 0 {
			var err error
			if body, err = c.mediaOf().Answer(media.SideA, body); err != nil {
				c.logger().Info("answer SDP in ACK refused", "err", err)
				c.legAt(media.SideB).sendAck(nil)
				c.hangup("bad answer in ACK")
				return
			}
		}
		c.legAt(media.SideB).sendAck(body)
		c.persist()
	}
}

func (c *call) relayReinviteAck(ri *reinvite, req *sip.Request) {
	ack, ep := c.legAt(ri.from.Other()).inDialog(sip.ACK, ri.out.CSeq().SeqNo)
	body := req.Body()
	if ri.flow == flowMade {
		c.ackOfMadeReoffer(ri, ack, req)
		return
	}
	if ri.flow == flowLate && len(body) > 0 {
		var err error
		if body, err = c.mediaOf().Answer(ri.from, body); err != nil {
			body = nil
		}
	}
	if len(body) > 0 {
		ack.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		ack.SetBody(body)
	} else {
		ack.SetBody(nil)
	}
	_ = ep.send(ack, ri.dst, c.st.ID)
}

// onRequest relays an in-dialog request from side to the other leg.
func (c *call) onRequest(from media.Side, req *sip.Request, tx *sip.ServerTx) {
	s := c.svc
	c.mu.Lock()
	ep := c.legs[from].ep
	fl := c.leg(from)
	if cs := req.CSeq().SeqNo; cs > fl.RemoteCSeq || req.Method == sip.PRACK {
		fl.RemoteCSeq = cs
	}
	if req.Method == sip.INVITE || req.Method == sip.UPDATE {
		if ct := req.Contact(); ct != nil {
			fl.RemoteTarget = ct.Address
		}
	}
	if fl.Transport != "udp" {
		fl.Flow = req.Source()
	}
	c.mu.Unlock()

	if c.onTransferRequest(from, req, tx) { // refer.go: REFER handled locally, transferor's BYE
		return
	}
	if req.Method == sip.BYE {
		s.respond(ep, tx, s.response(req, 200, "OK", nil), c.st.ID)
		c.byeSide(from.Other())
		c.end("bye from " + sideName(from))
		return
	}
	to := from.Other()
	if c.legOf(to).RemoteTag == "" && to == media.SideB {
		// nothing to relay to yet (no early dialog on the far leg)
		s.respond(ep, tx, s.response(req, 491, "Request Pending", nil), c.st.ID)
		return
	}
	hasBody := len(req.Body()) > 0
	body := req.Body()
	flow := flowOffered
	var err error
	switch {
	case hasBody && (req.Method == sip.INVITE || req.Method == sip.UPDATE) && isSDP(req):
		body, err = media.Reoffer(c.mediaOf(), from, body) // same dialogs: keys kept
	case hasBody && (req.Method == sip.PRACK || req.Method == sip.ACK) && isSDP(req):
		body, err = c.mediaOf().Answer(from, body)
	case !hasBody && req.Method == sip.INVITE:
		flow = flowLate
		if c.needsOffer(to) { // offer.go
			flow = flowMade
			body, err = makeOffer(c.mediaOf(), ep.info.Load().addr, c.rt.offers[c.legOf(to).Peer])
		}
	}
	if err != nil {
		code, reason := statusFor(err)
		s.respond(ep, tx, s.response(req, code, reason, nil), c.st.ID)
		return
	}
	withContact := req.Method == sip.INVITE || req.Method == sip.UPDATE || req.Method == sip.SUBSCRIBE ||
		req.Method == sip.NOTIFY || req.Method == sip.REFER
	tl := c.legAt(to)
	out, outEp, td := tl.newInDialog(req.Method, withContact)
	info := outEp.info.Load()
	copyHeaders(out, req, info)
	if ra := req.GetHeader("RAck"); ra != nil {
		out.AppendHeader(sip.NewHeader("RAck", rewriteRAck(ra.Value(), td.InviteCSeq)))
	}
	if c.rt.userAgent != "" {
		out.AppendHeader(sip.NewHeader("User-Agent", c.rt.userAgent))
	}
	if !hasBody {
		out.RemoveHeader("Content-Type")
	}
	if flow == flowMade {
		out.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	out.SetBody(body)
	dst := tl.target()
	otx, err := outEp.request(c.context(), out, dst, c.st.ID)
	if err != nil {
		code, reason := statusFor(err)
		s.respond(ep, tx, s.response(req, code, reason, nil), c.st.ID)
		return
	}
	defer func() { otx.Terminate() }()
	// A re-INVITE's 18x must not be overtaken by its 200 either (order.go).
	responses, done := otx.Responses(), otx.Done()
	var rs *transport.Ordered
	follow := func() {
		if req.Method == sip.INVITE {
			if rs != nil {
				rs.Stop()
			}
			rs = outEp.ordered(otx)
			responses, done = rs.Responses(), rs.Done()
		} else {
			responses, done = otx.Responses(), otx.Done()
		}
	}
	follow()
	defer func() {
		if rs != nil {
			rs.Stop()
		}
	}()
	authTries := 0
	for {
		select {
		case r := <-responses:
			s.traceIn(c.st.ID, outEp, r)
			if r.StatusCode == 100 {
				continue
			}
			if answerable(r, authTries) { // auth.go: a trunk's challenge, same target
				authTries++
				if ntx, nout := tl.resendAuthorized(out, r, dst); ntx != nil {
					otx.Terminate()
					otx, out = ntx, nout
					follow()
					continue
				}
			}
			c.relayResponse(from, req, tx, out, r, dst, flow)
			if r.StatusCode >= 200 {
				if r.StatusCode == 481 || r.StatusCode == 408 {
					if req.Method == sip.INVITE || req.Method == sip.UPDATE || req.Method == sip.BYE {
						c.hangup("far leg lost the dialog")
					}
				}
				return
			}
		case <-done:
			s.respond(ep, tx, s.response(req, 408, "Request Timeout", nil), c.st.ID)
			return
		}
	}
}

func isSDP(m sip.Message) bool {
	ct := m.(interface{ ContentType() *sip.ContentTypeHeader }).ContentType()
	return ct == nil || strings.HasPrefix(strings.ToLower(ct.Value()), "application/sdp")
}

// relayResponse relays a response of the other leg back to the sender of req.
func (c *call) relayResponse(from media.Side, req *sip.Request, tx *sip.ServerTx, out *sip.Request, r *sip.Response, dst routing.Target, flow sdpFlow) {
	to := from.Other()
	body := r.Body()
	isInv := req.Method == sip.INVITE
	if flow == flowMade && r.StatusCode < 200 {
		body = nil // the made offer is answered by the 2xx only
	}
	if len(body) > 0 && (isInv || req.Method == sip.UPDATE) && r.StatusCode < 300 && isSDP(r) {
		var err error
		switch flow {
		case flowOffered:
			body, err = c.mediaOf().Answer(to, body)
		case flowLate:
			body, err = media.Reoffer(c.mediaOf(), to, body)
		case flowMade:
			body, err = c.reofferFromAnswer(to, body)
		}
		if err != nil {
			c.logger().Info("SDP in response refused", "err", err)
			body = nil
		}
	}
	code, reason := r.StatusCode, r.Reason
	if code >= 300 {
		code, reason = mapFinal(code, reason)
	}
	res := c.svc.response(req, code, reason, nil)
	if r.StatusCode >= 200 && r.StatusCode < 300 && (isInv || req.Method == sip.UPDATE || req.Method == sip.SUBSCRIBE) {
		c.legAt(from).addContact(res)
		c.legAt(to).updateTarget(r.Contact())
	}
	copyHeaders(res, r, c.endpointOf(from).info.Load())
	if len(body) == 0 {
		res.RemoveHeader("Content-Type")
	}
	res.SetBody(body)
	if isInv && r.StatusCode >= 200 && r.StatusCode < 300 {
		c.mu.Lock()
		c.reinv = &reinvite{from: from, out: out, resp: r, flow: flow, dst: dst}
		c.mu.Unlock()
	}
	c.svc.respond(c.endpointOf(from), tx, res, c.st.ID)
	if r.StatusCode >= 200 && r.StatusCode < 300 && (isInv || req.Method == sip.UPDATE) {
		c.persist() // adopt.go: new media, targets, CSeqs
	}
}

// byeSide ends the leg on side (BYE, or CANCEL when it is not answered);
// from then on no transfer swaps a leg in there (endingLocked).
func (c *call) byeSide(side media.Side) {
	c.mu.Lock()
	c.hungUp[side] = true
	l, answered := c.legs[side], c.st.Phase == PhaseConfirmed
	c.mu.Unlock()
	l.bye(answered)
}

// endingLocked reports that the call has ended or is ending: one of its
// legs was hung up. A transfer must not swap a new leg in then: the BYE
// has gone to the old one and end() would forget the new one, leaving its
// party with a dialog nobody ends. c.mu is held.
func (c *call) endingLocked() bool {
	return c.ended.Load() || c.hungUp[media.SideA] || c.hungUp[media.SideB]
}

func (c *call) ending() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.endingLocked()
}

// hangup ends the call on both legs.
func (c *call) hangup(reason string) {
	c.byeSide(media.SideA)
	c.byeSide(media.SideB)
	c.end(reason)
}

// terminate is hangup for a unit that closes.
func (c *call) terminate(reason string) { c.hangup(reason) }

// end forgets the call (once).
func (c *call) end(reason string) {
	if !c.ended.CompareAndSwap(false, true) {
		return
	}
	c.self.Store(nil)
	if c.stop != nil {
		c.stop() // what still runs for the call gives up
	}
	c.mu.Lock()
	answered := c.st.Phase == PhaseConfirmed
	c.st.Phase = PhaseEnded
	c.st.Reason = reason
	a, b := c.legs[media.SideA].Leg, c.legs[media.SideB].Leg
	// Drop the messages: sipgo may hold transactions that point here for
	// another 32 s.
	for _, l := range c.legs {
		l.final, l.ack, l.inv = nil, nil, nil
	}
	c.reinv = nil
	c.mu.Unlock()
	s := c.svc
	s.calls.del(dialogKey(a.CallID, a.LocalTag))
	s.calls.del(dialogKey(b.CallID, b.LocalTag))
	c.unpersist(a, b)                   // adopt.go
	c.recordEnd(reason, answered, a, b) // cdr.go: before the media counters go
	if mc := c.mediaOf(); mc != nil {
		mc.Close()
	}
	// Counted out only now: once CallCount is 0 (Drain) every record is
	// written and every media port is free.
	s.calls.removed()
	callsActive.Dec()
	switch {
	case strings.HasPrefix(reason, "canceled"):
		callsTotal.WithLabelValues("canceled").Inc()
	case answered:
		callsTotal.WithLabelValues("answered").Inc()
	default:
		callsTotal.WithLabelValues("failed").Inc()
	}
	if c.svc.log.Enabled(context.Background(), slog.LevelDebug) {
		c.logger().Debug("call ended", "reason", reason, "duration", strconv.FormatFloat(time.Since(c.st.Started).Seconds(), 'f', 1, 64))
	}
}

func sideName(s media.Side) string {
	if s == media.SideA {
		return "caller"
	}
	return "callee"
}

// abandonedInvite is an INVITE given up because its target sent no
// response within sip.invite_timeout. Should that target answer 2xx after
// all, the call has moved on: the dialog the late 2xx makes is
// acknowledged and ended at once (RFC 3261 §13.2.2.4 for a 2xx the UAC
// does not want), instead of leaving the target with an orphaned call.
type abandonedInvite struct {
	inv    *sip.Request
	tg     routing.Target
	callID string // for the trace
	bye    sync.Once
}

// abandon remembers inv, whose transaction key is key, for a transaction's
// lifetime (64*T1).
func (s *Service) abandon(key string, inv *sip.Request, tg routing.Target, callID string) {
	a := &abandonedInvite{inv: inv, tg: tg, callID: callID}
	s.abandoned.Store(key, a)
	s.abandonedN.Add(1)
	time.AfterFunc(64*sip.T1, func() {
		if s.abandoned.CompareAndDelete(key, a) {
			s.abandonedN.Add(-1)
		}
	})
}

// lateAnswer runs in a connection's reading goroutine for every 2xx (from
// onWire): cheap unless an INVITE was given up in the last 32 s.
func (e *endpoint) lateAnswer(r *sip.Response) {
	s := e.svc
	if s.abandonedN.Load() == 0 || r.CSeq() == nil || r.CSeq().MethodName != sip.INVITE {
		return
	}
	key, err := sip.ClientTxKeyMake(r)
	if err != nil {
		return
	}
	v, ok := s.abandoned.Load(key)
	if !ok {
		return
	}
	go e.endLateDialog(v.(*abandonedInvite), r)
}

// endLateDialog acknowledges the late 2xx r (each retransmission) and
// sends BYE once.
func (e *endpoint) endLateDialog(a *abandonedInvite, r *sip.Response) {
	s := e.svc
	s.traceIn(a.callID, e, r)
	if r.To() == nil || r.From() == nil || r.CallID() == nil {
		return
	}
	inv := a.inv
	l := Leg{Transport: a.tg.Transport, CallID: r.CallID().Value(), LocalTag: getTag(r.From().Params),
		RemoteTag: getTag(r.To().Params), LocalURI: r.From().Address, RemoteURI: r.To().Address,
		RemoteTarget: inv.Recipient, RouteSet: routeSet(r, true)}
	if ct := r.Contact(); ct != nil {
		l.RemoteTarget = ct.Address
	}
	info, rt := e.info.Load(), s.rt.Load()
	ack := newRequest(sip.ACK, &l, info, rt.maxForwards, inv.CSeq().SeqNo)
	ack.SetBody(nil)
	if err := e.send(ack, a.tg, a.callID); err != nil {
		s.limited.Warn("sip-late-2xx", "ACK for a late 2xx not sent", "err", err)
	}
	a.bye.Do(func() {
		s.limited.Warn("sip-late-2xx", "a target answered after sip.invite_timeout gave it up: its dialog is ended (raise sip.invite_timeout if this repeats)",
			"target", a.tg.Addr.String())
		bye := newRequest(sip.BYE, &l, info, rt.maxForwards, inv.CSeq().SeqNo+1)
		bye.SetBody(nil)
		tx, err := e.request(context.Background(), bye, a.tg, a.callID)
		if err != nil {
			s.limited.Warn("sip-late-2xx", "BYE for a late 2xx not sent", "err", err)
			return
		}
		if res := waitFinal(tx); res != nil {
			s.traceIn(a.callID, e, res)
		}
	})
}
