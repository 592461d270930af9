package b2bua

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
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
	if s.draining.Load() {
		res := s.response(req, 503, "Service Unavailable", nil)
		res.AppendHeader(sip.NewHeader("Retry-After", "30"))
		s.respond(ep, tx, res, id)
		s.recordRefused(id, ep, req, 503, "Service Unavailable")
		return
	}
	s.respond(ep, tx, trying, id)
	rr := routingRequest(ep, req, rt)
	hops, err := rt.table.Route(rr, s.peers.isUp)
	if err != nil {
		code, reason := statusFor(err)
		s.respond(ep, tx, s.response(req, code, reason, nil), id)
		s.recordRefused(id, ep, req, code, reason)
		return
	}
	from := req.From()
	c := &call{svc: s, rt: rt, inviteA: req, txA: tx, canceled: make(chan struct{}), self: new(atomic.Pointer[call])}
	c.self.Store(c)
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
	c.eps[media.SideA] = ep
	c.eps[media.SideB] = rt.egress(hops[0], ep)

	infoA, infoB := ep.info.Load(), c.eps[media.SideB].info.Load()
	mc, err := s.deps.Media.NewCall(id,
		media.Leg{Interface: ep.name, Bind: infoA.addr, Advertised: infoA.addr},
		media.Leg{Interface: c.eps[media.SideB].name, Bind: infoB.addr, Advertised: infoB.addr})
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
	} else {
		c.lateOffer = true
	}
	s.calls.put(dialogKey(a.CallID, a.LocalTag), c)
	s.calls.put(dialogKey(b.CallID, b.LocalTag), c)
	s.calls.n.Add(1)
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

type outcome int

const (
	outDone       outcome = iota // the caller has its final answer
	outNextTarget                // timeout, 503 or transport error: next resolved target
	outNextHop                   // other 5xx/6xx or no answer: next dial plan row
	outRedirect                  // 3xx followed: Contacts become the next hops
)

// run tries the hops in order until one answers or all failed.
func (c *call) run(hops []routing.Hop, sdp []byte) {
	var last *sip.Response
	var lastErr error = errStatus(404, "Not Found")
	ctx := context.Background()
	for i := 0; i < len(hops) && i < 32; i++ {
		h := hops[i]
		if c.isCanceled() {
			c.end("canceled")
			return
		}
		var targets []routing.Target
		var err error
		if _, ipErr := netip.ParseAddr(strings.Trim(h.Host, "[]")); ipErr == nil {
			targets, err = c.rt.resolver.Resolve(ctx, h) // no DNS: no deadline needed
		} else {
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			targets, err = c.rt.resolver.Resolve(rctx, h)
			cancel()
		}
		if err != nil || len(targets) == 0 {
			lastErr = errStatus(503, "Service Unavailable")
			c.logger().Info("no targets for hop", "host", h.Host, "err", err)
			continue
		}
	targets:
		for j, tg := range targets {
			more := j < len(targets)-1 || i < len(hops)-1
			out, res, redirect, err := c.attempt(h, tg, sdp, more)
			switch out {
			case outDone:
				return
			case outNextTarget:
				last, lastErr = res, err
				failovers.WithLabelValues(failoverCause(res, err)).Inc()
			case outNextHop:
				last, lastErr = res, err
				failovers.WithLabelValues("status").Inc()
				break targets
			case outRedirect:
				hops = slices.Insert(hops, i+1, redirect...)
				break targets
			}
		}
	}
	if c.isCanceled() {
		c.end("canceled")
		return
	}
	code, reason := statusFor(lastErr)
	if last != nil {
		code, reason = mapFinal(last.StatusCode, last.Reason)
	}
	inv, _, epA := c.callerSide()
	res := c.svc.response(inv, code, reason, nil)
	if last != nil {
		copyHeaders(res, last, epA.info.Load())
		c.setEndedBy(observe.EndedByCallee)
	} else {
		c.setEndedBy(observe.EndedByUnit)
	}
	c.respondA(res)
	c.end("failed: " + strconv.Itoa(code))
}

// failoverCause is the failovers_total label of an attempt given up for
// the next target: a response (503, 408), no response at all, or a
// transport failure.
func failoverCause(res *sip.Response, err error) string {
	var se *sipError
	switch {
	case res != nil:
		return "status"
	case errors.Is(err, sip.ErrTransactionTimeout), errors.As(err, &se) && se.code == 408:
		return "timeout"
	}
	return "transport"
}

func (c *call) isCanceled() bool {
	select {
	case <-c.canceled:
		return true
	default:
		return false
	}
}

// attempt sends the INVITE to one target and relays what comes back.
func (c *call) attempt(h routing.Hop, tg routing.Target, sdp []byte, more bool) (outcome, *sip.Response, []routing.Hop, error) {
	s := c.svc
	rt := c.rt
	c.mu.Lock()
	ep := rt.egress(h, c.eps[media.SideA])
	info := ep.info.Load()
	a := c.leg(media.SideA)
	c.eps[media.SideB] = ep
	b := c.leg(media.SideB)
	b.Interface, b.Transport, b.Peer = ep.name, tg.Transport, h.Peer
	b.LocalURI = sip.Uri{Scheme: "sip", User: a.RemoteURI.User, Host: info.host}
	b.LocalName = a.RemoteName
	b.RemoteURI = sip.Uri{Scheme: "sip", User: h.User, Host: h.Host}
	b.RemoteName = a.LocalName
	b.RemoteTarget = hopURI(h)
	b.RemoteTag, b.RouteSet = "", nil
	b.ServerName, b.Flow = tg.ServerName, tg.Addr.String()
	b.LocalCSeq++
	b.InviteCSeq = b.LocalCSeq
	req := newRequest(sip.INVITE, b, info, decMaxForwards(c.inviteA, rt), b.LocalCSeq)
	req.AppendHeader(info.contact(tg.Transport))
	copyHeaders(req, c.inviteA, info)
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
	c.inviteB, c.targetB = req, tg
	c.mu.Unlock()

	rs := ep.watch(req) // responses in wire order (order.go)
	defer func() { rs.stop() }()
	tx, err := ep.request(context.Background(), req, tg, c.st.ID)
	if err != nil {
		c.logger().Info("INVITE not sent", "target", tg.Addr, "err", err)
		return outNextTarget, nil, nil, err
	}
	c.setTxB(tx)
	rs.start(tx)
	var noAnswer <-chan time.Time
	if more {
		d := h.Timeout
		if d <= 0 {
			d = rt.noAnswer
		}
		if d > 0 {
			t := time.NewTimer(d)
			defer t.Stop()
			noAnswer = t.C
		}
	}
	// A target that sends nothing at all, not even 100 Trying, is given up
	// after sip.invite_timeout (as Kamailio's fr_timer) instead of Timer B's
	// 32 s; anything it sends shows it is alive, and from then on the
	// no-answer timer above governs.
	var silent <-chan time.Time
	var silentT *time.Timer
	if rt.inviteTimeout > 0 {
		silentT = time.NewTimer(rt.inviteTimeout)
		defer silentT.Stop()
		silent = silentT.C
	}
	// alive: the transaction has a provisional response, 100 included, so
	// it may be cancelled (RFC 3261 §9.1); gotProv: a 18x was relayed.
	var gotProv, alive, cancelSent, timedOut bool
	authTries := 0
	canceled := c.canceled
	for {
		select {
		case <-canceled:
			canceled = nil
			if alive && !cancelSent {
				c.cancelB(ep, req, tg)
				cancelSent = true
			}
		case <-noAnswer:
			noAnswer = nil
			timedOut = true
			failovers.WithLabelValues("no_answer").Inc()
			if alive && !cancelSent {
				c.cancelB(ep, req, tg)
				cancelSent = true
			} else {
				tx.Terminate()
				if !alive { // nothing came back: a late 2xx is ended (dialog.go)
					s.abandon(tx.Key(), req, tg, c.st.ID)
				}
				return outNextHop, nil, nil, errStatus(408, "Request Timeout")
			}
		case <-silent:
			silent = nil
			c.logger().Info("no response to INVITE: next target", "target", tg.Addr, "after", rt.inviteTimeout)
			tx.Terminate() // no more retransmissions
			s.abandon(tx.Key(), req, tg, c.st.ID)
			if c.isCanceled() {
				c.end("canceled")
				return outDone, nil, nil, nil
			}
			return outNextTarget, nil, nil, errStatus(408, "Request Timeout")
		case <-rs.Done():
			err := tx.Err()
			if c.isCanceled() {
				c.end("canceled")
				return outDone, nil, nil, nil
			}
			if timedOut {
				return outNextHop, nil, nil, errStatus(408, "Request Timeout")
			}
			if err == nil || errors.Is(err, sip.ErrTransactionTerminated) {
				err = errStatus(408, "Request Timeout")
			}
			return outNextTarget, nil, nil, err
		case r := <-rs.Responses():
			silent = nil // the target is alive
			s.traceIn(c.st.ID, ep, r)
			switch {
			case r.StatusCode == 100:
				alive = true
				if (c.isCanceled() || timedOut) && !cancelSent {
					c.cancelB(ep, req, tg)
					cancelSent = true
				}
			case r.StatusCode < 200:
				gotProv, alive = true, true
				if c.isCanceled() || timedOut {
					if !cancelSent {
						c.cancelB(ep, req, tg)
						cancelSent = true
					}
					continue
				}
				c.onProvisionalB(r)
			case r.StatusCode < 300:
				if c.isCanceled() {
					// CANCEL lost the race with the 2xx: the caller has its
					// 487, so confirm and end the far leg right away.
					c.establishB(r)
					c.sendAckB(nil)
					c.byeSide(media.SideB)
					c.end("canceled")
					return outDone, nil, nil, nil
				}
				c.onAnswerB(r)
				return outDone, nil, nil, nil
			case r.StatusCode < 400:
				if c.isCanceled() {
					continue
				}
				if rt.followRedirects {
					if hops := redirectHops(r, h); len(hops) > 0 {
						return outRedirect, r, hops, nil
					}
				}
				c.relayFinalA(r)
				return outDone, nil, nil, nil
			default:
				if c.isCanceled() {
					c.end("canceled")
					return outDone, nil, nil, nil
				}
				if !timedOut && !gotProv && answerable(r, authTries) {
					// a trunk asking for credentials: same target (auth.go)
					authTries++
					if ntx, nreq, nrs := c.resendAuthorized(ep, h, tg, req, r); ntx != nil {
						rs.stop()
						tx, req, rs = ntx, nreq, nrs
						alive = false       // a new transaction: CANCEL waits for its own provisional
						if silentT != nil { // the retry gets its own time to be answered
							silentT.Reset(rt.inviteTimeout)
							silent = silentT.C
						}
						continue
					}
				}
				if timedOut {
					return outNextHop, nil, nil, errStatus(480, "Temporarily Unavailable")
				}
				if more && (r.StatusCode == 503 || r.StatusCode == 408) {
					return outNextTarget, r, nil, nil
				}
				if more && r.StatusCode >= 500 {
					return outNextHop, r, nil, nil
				}
				if r.StatusCode >= 500 {
					return outNextHop, r, nil, nil
				}
				c.relayFinalA(r)
				return outDone, nil, nil, nil
			}
		}
	}
}

// resendAuthorized sends the far leg's INVITE again answering the
// challenge r (new CSeq and branch, same Call-ID and From tag) and returns
// its transaction, the request and its response stream. nil when the peer
// has no credentials or the request could not be sent.
func (c *call) resendAuthorized(ep *endpoint, h routing.Hop, tg routing.Target, req *sip.Request, r *sip.Response) (*sip.ClientTx, *sip.Request, *ordered) {
	c.mu.Lock()
	b := c.leg(media.SideB)
	retry := c.svc.authRetry(c.rt, h.Peer, req, r, b.LocalCSeq+1)
	if retry == nil {
		c.mu.Unlock()
		return nil, nil, nil
	}
	b.LocalCSeq++
	b.InviteCSeq = b.LocalCSeq
	c.inviteB = retry
	c.mu.Unlock()
	// Watched before it is sent, as the first INVITE: a trunk answering
	// the retry with 180 and 200 back to back must not lose the 180.
	rs := ep.watch(retry)
	tx, err := ep.request(context.Background(), retry, tg, c.st.ID)
	if err != nil {
		rs.stop()
		c.logger().Info("authorized INVITE not sent", "target", tg.Addr, "err", err)
		return nil, nil, nil
	}
	c.setTxB(tx)
	rs.start(tx)
	return tx, retry, rs
}

// setTxB makes tx the far leg's INVITE transaction; a 2xx repeated on it
// gets our ACK again.
func (c *call) setTxB(tx *sip.ClientTx) {
	c.mu.Lock()
	c.txB = tx
	c.mu.Unlock()
	ref := c.ref()
	tx.OnRetransmission(func(r *sip.Response) {
		if c := ref.Load(); c != nil && r.IsSuccess() {
			c.resendAckB()
		}
	})
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

// establishB records the far leg's dialog from a response with a To tag.
func (c *call) establishB(r *sip.Response) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.leg(media.SideB)
	if t := getTag(r.To().Params); t != "" {
		b.RemoteTag = t
	}
	if ct := r.Contact(); ct != nil {
		b.RemoteTarget = ct.Address
	}
	if rs := routeSet(r, true); len(rs) > 0 {
		b.RouteSet = rs
	}
}

// onProvisionalB relays a 18x to the caller (early media SDP through the
// media hook; RSeq and Require: 100rel pass so PRACK is end to end).
func (c *call) onProvisionalB(r *sip.Response) {
	if getTag(r.To().Params) != "" {
		c.establishB(r)
	}
	body, err := c.calleeSDP(r.Body())
	if err != nil {
		c.logger().Info("early media SDP refused", "err", err)
		body = nil
	}
	inv, _, epA := c.callerSide()
	res := c.svc.response(inv, r.StatusCode, r.Reason, nil)
	c.addContactA(res)
	copyHeaders(res, r, epA.info.Load())
	if len(body) == 0 {
		res.RemoveHeader("Content-Type")
	}
	res.SetBody(body)
	c.respondA(res)
}

func (c *call) addContactA(res *sip.Response) {
	c.mu.Lock()
	tr, ep := c.leg(media.SideA).Transport, c.eps[media.SideA]
	c.mu.Unlock()
	res.AppendHeader(ep.info.Load().contact(tr))
}

// calleeSDP passes SDP from the callee's 18x or 2xx through the media call:
// the answer to the caller's offer, or the offer of a late-offer call.
func (c *call) calleeSDP(body []byte) ([]byte, error) {
	if len(body) == 0 {
		return body, nil
	}
	c.mu.Lock()
	mc, late := c.media, c.lateOffer
	c.mu.Unlock()
	if late {
		return mc.Offer(media.SideB, body)
	}
	return mc.Answer(media.SideB, body)
}

// callerSide returns the caller's INVITE, its transaction and endpoint (a
// Replaces may swap them, replaces.go).
func (c *call) callerSide() (*sip.Request, *sip.ServerTx, *endpoint) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inviteA, c.txA, c.eps[media.SideA]
}

// onAnswerB handles the far leg's 2xx: confirm both legs.
func (c *call) onAnswerB(r *sip.Response) {
	c.establishB(r)
	c.noteCaps(media.SideB, r) // refer.go: Allow/Supported for REFER decisions
	body, err := c.calleeSDP(r.Body())
	inv, _, epA := c.callerSide()
	if err != nil {
		// the far end answered with SDP we cannot use: end both legs
		c.sendAckB(nil)
		c.byeSide(media.SideB)
		code, reason := statusFor(err)
		c.respondA(c.svc.response(inv, code, reason, nil))
		c.end("failed: answer SDP")
		return
	}
	if !c.lateOffer { // set before the call was published, never changed
		c.sendAckB(nil)
	}
	res := c.svc.response(inv, r.StatusCode, r.Reason, nil)
	c.addContactA(res)
	copyHeaders(res, r, epA.info.Load())
	if len(body) == 0 {
		res.RemoveHeader("Content-Type")
	}
	res.SetBody(body)
	c.mu.Lock()
	c.st.Phase = PhaseConfirmed
	c.st.Answered = time.Now()
	c.final2xx = res
	udp := c.leg(media.SideA).Transport == "udp" // under the lock: a transfer may swap the leg (refer.go)
	c.mu.Unlock()
	c.recordAnswer()
	c.respondA(res)
	if udp {
		c.retransmit2xx()
	}
}

// retransmit2xx resends our 2xx to the caller until its ACK arrives
// (RFC 3261 §13.3.1.4: on unreliable transports this is the UAS core's job).
// It runs on timers, not a goroutine per call: most ACKs come long before
// the first retransmission.
func (c *call) retransmit2xx() {
	deadline := time.Now().Add(64 * sip.T1)
	var step func(d time.Duration)
	step = func(d time.Duration) {
		time.AfterFunc(d, func() {
			c.mu.Lock()
			acked, res := c.ackedA, c.final2xx
			c.mu.Unlock()
			if acked || c.ended.Load() || res == nil {
				return
			}
			if time.Now().After(deadline) {
				c.logger().Info("no ACK for the 2xx: ending the call")
				c.byeSide(media.SideA)
				c.byeSide(media.SideB)
				c.end("no ACK")
				return
			}
			c.respondA(res)
			step(min(2*d, sip.T2))
		})
	}
	step(sip.T1)
}

// relayFinalA relays a final non-2xx response from the far leg.
func (c *call) relayFinalA(r *sip.Response) {
	code, reason := mapFinal(r.StatusCode, r.Reason)
	inv, _, epA := c.callerSide()
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

func (c *call) respondA(res *sip.Response) {
	c.noteFinalA(res)
	_, tx, ep := c.callerSide()
	c.svc.respond(ep, tx, res, c.st.ID)
}

// cancelB sends CANCEL for the far leg's INVITE (RFC 3261 §9.1).
func (c *call) cancelB(ep *endpoint, inv *sip.Request, tg routing.Target) {
	req := sip.NewRequest(sip.CANCEL, inv.Recipient)
	req.AppendHeader(sip.HeaderClone(inv.Via()))
	for _, n := range []string{"Route", "Max-Forwards", "From", "To", "Call-ID"} {
		for _, h := range inv.GetHeaders(n) {
			req.AppendHeader(sip.HeaderClone(h))
		}
	}
	req.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.CANCEL})
	req.SetBody(nil)
	tx, err := ep.request(context.Background(), req, tg, c.st.ID)
	if err != nil {
		c.logger().Info("CANCEL not sent", "err", err)
		return
	}
	go func() {
		if r := waitFinal(tx); r != nil {
			c.svc.traceIn(c.st.ID, ep, r)
		}
	}()
}
