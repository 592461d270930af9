package b2bua

// Carrying out a REFER in the unit (blind and attended transfer). The new
// leg is placed like a new call from the transferee (dial.go), with an
// offer from a fresh media.Call (new relay ports, new SRTP keys) made from
// the transferee's current session; the target's answer goes to the
// transferee in a re-INVITE. Only when both agreed does the call switch
// over, replacing the transferor's leg in one step; until then the
// original call is untouched, so a failed transfer leaves it as it was.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/media"
	"github.com/palisade-sbc/palisade/internal/routing"
	"github.com/palisade-sbc/palisade/internal/sip/trunk"
)

// transfer is one REFER the unit carries out.
type transfer struct {
	c     *call
	from  media.Side // the transferor's side; the transferee is from.Other()
	refer *sip.Request
	to    *referTo
	mode  string
	noSub bool

	trying chan struct{} // closed when the NOTIFY 100 is answered
	gone   atomic.Bool   // the transferor hung up meanwhile (its BYE is answered)
	newAck atomic.Pointer[sip.Request]
}

func (x *transfer) run() {
	c := x.c
	st := c.xferState()
	c.mu.Lock()
	st.active = x
	c.mu.Unlock()
	defer c.releaseTransfer()
	x.trying = make(chan struct{})
	trying := x.notify(c, 100, "Trying")
	go func() {
		defer close(x.trying)
		trying()
	}()
	var (
		code   int
		reason string
		ghost  *call
		after  func()
	)
	if x.to.replaces != nil {
		code, reason, ghost, after = x.attended()
	} else {
		code, reason, ghost = x.blind()
	}
	// From here on a BYE of the transferor is an ordinary one.
	c.mu.Lock()
	st.active = nil
	c.mu.Unlock()
	select {
	case <-x.trying:
	case <-time.After(2 * time.Second):
	}
	if after != nil {
		defer after()
	}
	if ghost == nil {
		referTotal.WithLabelValues(x.mode, "failed").Inc()
		if x.gone.Load() {
			// nobody to take the call back: the transferee is hung up
			c.logger().Info("transfer failed after the transferor left", "status", code, "reason", reason)
			c.byeSide(x.from.Other())
			c.end("transfer failed: " + strconv.Itoa(code))
			return
		}
		c.logger().Info("transfer failed, call kept", "mode", x.mode, "status", code, "reason", reason)
		x.notify(c, code, reason)()
		return
	}
	referTotal.WithLabelValues(x.mode, "success").Inc()
	c.logger().Info("transfer done", "mode", x.mode, "attended", x.to.replaces != nil)
	if !x.gone.Load() {
		x.notify(ghost, 200, "OK")()
		ghost.byeSide(x.from)
	}
	ghost.end("transferred")
}

// notify reports progress on the REFER's implicit subscription (RFC 3515
// §2.4.4) unless the transferor asked for none (Refer-Sub: false, RFC 4488).
//
// The NOTIFY is built at once (the leg may change hands right after) and
// sent by the returned function.
func (x *transfer) notify(on *call, code int, reason string) func() {
	if x.noSub {
		return func() {}
	}
	l := on.legAt(x.from)
	req, ep, _ := l.newInDialog(sip.NOTIFY, true)
	req.AppendHeader(sip.NewHeader("Event", "refer;id="+strconv.FormatUint(uint64(x.refer.CSeq().SeqNo), 10)))
	state := "active;expires=60"
	if code >= 200 {
		state = "terminated;reason=noresource"
	}
	req.AppendHeader(sip.NewHeader("Subscription-State", state))
	req.AppendHeader(sip.NewHeader("Content-Type", "message/sipfrag;version=2.0"))
	if on.rt.userAgent != "" {
		req.AppendHeader(sip.NewHeader("User-Agent", on.rt.userAgent))
	}
	req.SetBody([]byte("SIP/2.0 " + strconv.Itoa(code) + " " + reason + "\r\n"))
	dst := l.target()
	return func() {
		tx, err := ep.request(on.context(), req, dst, on.st.ID)
		if err != nil {
			on.logger().Info("NOTIFY not sent", "err", err)
			return
		}
		if r := waitFinal(tx); r != nil {
			on.svc.traceIn(on.st.ID, ep, r)
		}
	}
}

// mediaLeg describes a media leg on endpoint e facing peer ("" = none),
// whose own media policy then applies.
func mediaLeg(e *endpoint, peer string) media.Leg {
	info := e.info.Load()
	return media.Leg{Interface: e.name, Bind: info.addr, Advertised: info.addr, Peer: peer}
}

// mediaLegs describes the endpoints for a new media.Call: side ya on yEp
// facing peer yPeer, the other on xEp facing xPeer.
func mediaLegs(ya media.Side, yEp *endpoint, yPeer string, xEp *endpoint, xPeer string) (media.Leg, media.Leg) {
	var l [2]media.Leg
	l[ya] = mediaLeg(yEp, yPeer)
	l[ya.Other()] = mediaLeg(xEp, xPeer)
	return l[0], l[1]
}

// blind places the new call to the Refer-To target through normal routing
// and connects the transferee to it. The new leg is placed as a new call
// from the transferee would be (dial.go): the target's interface and
// advertised name, its peer's headers and credentials, and an SDP offer
// from a fresh media session made from the transferee's current session.
// Once the target answered, the transferee is re-INVITEd to the new media
// session; should its answer move its media or change its SRTP key, both
// parties are brought in line again (resync).
func (x *transfer) blind() (int, string, *call) {
	c := x.c
	s := c.svc
	rt := s.rt.Load()
	y := x.from.Other()
	c.mu.Lock()
	tl, yl := *c.leg(x.from), *c.leg(y)
	tEp, yEp := c.legs[x.from].ep, c.legs[y].ep
	cur := remember(c.media)
	c.media = cur
	c.mu.Unlock()
	// the Refer-To number is the transferor's peer's, as a call from it
	// would be: its inbound number rules apply before the dial plan
	rr := routing.Request{Method: "INVITE", User: rt.inboundUser(tl.Peer, x.to.uri.User), Host: x.to.uri.Host,
		FromURI: uriString(yl.RemoteURI), SourcePeer: tl.Peer, SourceInterface: tEp.name}
	hops, err := rt.table.Route(rr, s.peers.isUp)
	if err != nil {
		code, reason := statusFor(err)
		return code, reason, nil
	}
	sdpY := cur.lastFrom(y)
	if len(sdpY) == 0 {
		return 488, "Not Acceptable Here (no session description of the transferee)", nil
	}
	// the transferee's side is where the new call comes from
	first := rt.peerOfHop(hops[0])
	la, lb := mediaLegs(y, yEp, yl.Peer, rt.egress(first, yEp), first.Peer)
	mc, err := s.newMedia(c.st.ID, la, lb)
	if err != nil {
		code, reason := statusFor(err)
		return code, reason, nil
	}
	offer, err := mc.Offer(y, sdpY)
	if err != nil {
		mc.Close()
		code, reason := statusFor(err)
		return code, reason, nil
	}
	nl := &leg{Leg: Leg{CallID: newID(), LocalTag: newID()}}
	var nlMu sync.Mutex
	d := &dialer{
		svc: s, rt: rt, id: c.st.ID, log: c.logger, in: yEp, mu: &nlMu, leg: nl,
		cancel: c.context().Done(), ringLast: true,
		build: func(h routing.Hop, tg routing.Target, ep *endpoint) *sip.Request {
			return x.buildInvite(rt, &nl.Leg, yl, h, tg, ep, offer)
		},
		sent: func(ep *endpoint, _ *sip.Request, tx *sip.ClientTx, tg routing.Target) {
			tx.OnRetransmission(func(r *sip.Response) {
				if a := x.newAck.Load(); r.IsSuccess() && a != nil {
					_ = ep.send(a, tg, c.st.ID)
				}
			})
		},
	}
	ans, err := d.dial(c.context(), hops)
	if err != nil {
		mc.Close()
		var de *DialError
		if errors.As(err, &de) && de.Canceled {
			return 487, "Request Terminated (the call ended)", nil
		}
		code, reason := statusFor(err)
		if de != nil {
			code, reason = de.Code, de.Reason
		}
		return code, reason, nil
	}
	ep, tg, r := ans.ep, ans.tg, ans.res
	nlMu.Lock()
	nd := nl.Leg
	nlMu.Unlock()
	sendNew := func(method sip.RequestMethod, cseq uint32, body []byte) *sip.Request {
		req := newRequest(method, &nd, ep.info.Load(), rt.maxForwards, cseq)
		if len(body) > 0 {
			req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		}
		req.SetBody(body)
		if method == sip.ACK {
			x.newAck.Store(req)
			_ = ep.send(req, tg, c.st.ID)
			return req
		}
		if tx, err := ep.request(context.Background(), req, tg, c.st.ID); err == nil {
			go waitFinal(tx)
		}
		return req
	}
	ack := sendNew(sip.ACK, nd.InviteCSeq, nil)
	hangUpNew := func() {
		mc.Close()
		nd.LocalCSeq++
		sendNew(sip.BYE, nd.LocalCSeq, nil)
	}
	if ans.canceled || c.ending() { // the transferee hung up while the target rang
		hangUpNew()
		return 487, "Request Terminated (the call ended)", nil
	}
	toY, err := mc.Answer(x.from, r.Body())
	if err != nil || len(r.Body()) == 0 {
		hangUpNew()
		if err == nil {
			return 488, "Not Acceptable Here (no answer from the target)", nil
		}
		code, reason := statusFor(err)
		return code, reason, nil
	}
	ry, ackY, err := c.legAt(y).reinvite(toY)
	if err != nil || ry.StatusCode >= 300 {
		hangUpNew()
		return failureOf(ry, err)
	}
	ackY(nil)
	resync := len(ry.Body()) > 0 && !sameTransport(sdpY, ry.Body())
	mc.note(y, ry.Body())
	g := x.swap(c, x.from, nd, ep, mc, ack)
	if g == nil {
		hangUpNew()
		return 487, "Request Terminated (the call ended)", nil
	}
	c.noteCaps(x.from, r) // the target is now the party on this side
	if resync {
		c.resyncMedia(y)
	}
	return 200, "OK", g
}

// buildInvite makes the new leg's INVITE for target tg of hop h on ep,
// carrying offer, and sets nl up for it (the dialer's lock held).
func (x *transfer) buildInvite(rt *runtime, nl *Leg, yl Leg, h routing.Hop, tg routing.Target, ep *endpoint, offer []byte) *sip.Request {
	info := ep.info.Load()
	nl.Interface, nl.Transport, nl.Peer = ep.name, tg.Transport, h.Peer
	nl.LocalURI = sip.Uri{Scheme: "sip", User: yl.RemoteURI.User, Host: info.Host}
	nl.LocalName = yl.RemoteName
	nl.RemoteURI = sip.Uri{Scheme: "sip", User: h.User, Host: h.Host}
	// the Refer-To's identifying parameters (user=phone, Teams' x-m and
	// x-t) stay in the new leg's Request-URI; the hop decides the rest
	nl.RemoteTarget = hopURI(h)
	if x.to != nil {
		u := trunk.NewLegURI(x.to.uri, nl.RemoteTarget.Host, nl.RemoteTarget.Port, h.Transport)
		u.Scheme, u.User = nl.RemoteTarget.Scheme, h.User
		nl.RemoteTarget = u
	}
	nl.RemoteTag, nl.RouteSet = "", nil
	nl.ServerName, nl.Flow = tg.ServerName, tg.Addr.String()
	nl.LocalCSeq++
	nl.InviteCSeq = nl.LocalCSeq
	req := newRequest(sip.INVITE, nl, info, rt.maxForwards, nl.LocalCSeq)
	req.AppendHeader(info.Contact(tg.Transport))
	if rb, ok := headerValue(x.refer, "Referred-By", "b"); ok {
		req.AppendHeader(sip.NewHeader("Referred-By", hideHostInAddr(rb, info.Host)))
	}
	for k, v := range h.Headers {
		req.AppendHeader(sip.NewHeader(k, v))
	}
	if rt.allowHdr != "" {
		req.AppendHeader(sip.NewHeader("Allow", rt.allowHdr))
	}
	rt.trunkHeaders(req, nil, h.Peer, info)
	if rt.userAgent != "" {
		req.AppendHeader(sip.NewHeader("User-Agent", rt.userAgent))
	}
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(offer)
	return req
}

// resyncMedia brings both parties in line with the call's media session
// after the transferee's answer moved its media or changed its key (or
// after a call moved to this unit: rehome.go): the
// transferee is asked for a fresh offer (re-INVITE without SDP), which goes
// to the other party, whose answer returns in the ACK (RFC 3725 §4.1; both
// parties are in a call already and answer at once). A transferee that
// requires an offer (trunk.offer) is the one offered to instead.
func (c *call) resyncMedia(y media.Side) error {
	if c.needsOffer(y) && !c.needsOffer(y.Other()) {
		y = y.Other() // Teams takes no re-INVITE without SDP: ask the other party
	}
	ry, ackY, err := c.legAt(y).reinvite(nil)
	if err == nil && ry.StatusCode >= 300 {
		err = fmt.Errorf("%d %s", ry.StatusCode, ry.Reason)
	}
	if err != nil {
		c.logger().Info("media renegotiation failed", "side", sideName(y), "err", err)
		return fmt.Errorf("re-INVITE to the %s: %w", sideName(y), err)
	}
	mc := c.mediaOf()
	offer, err := mc.Offer(y, ry.Body())
	if err == nil && len(ry.Body()) == 0 {
		err = errors.New("no SDP offer")
	}
	if err != nil {
		ackY(nil)
		c.logger().Info("media renegotiation failed: no usable offer", "err", err)
		return fmt.Errorf("the offer of the %s: %w", sideName(y), err)
	}
	rx, ackX, err := c.legAt(y.Other()).reinvite(offer)
	if err == nil && rx.StatusCode >= 300 {
		err = fmt.Errorf("%d %s", rx.StatusCode, rx.Reason)
	}
	if err != nil {
		ackY(nil)
		c.logger().Info("media renegotiation failed", "side", sideName(y.Other()), "err", err)
		return fmt.Errorf("re-INVITE to the %s: %w", sideName(y.Other()), err)
	}
	ackX(nil)
	answer, err := mc.Answer(y.Other(), rx.Body())
	if err != nil {
		answer = nil
	}
	ackY(answer)
	return err
}

// failureOf is the status a failed exchange reports.
func failureOf(r *sip.Response, err error) (int, string, *call) {
	if r != nil {
		return r.StatusCode, r.Reason, nil
	}
	code, reason := statusFor(err)
	return code, reason, nil
}

// swap puts the new leg nl on side of c in place of the old one, with the
// new media; the old leg lives on in a ghost call until its BYE. It returns
// nil when the call has ended meanwhile.
func (x *transfer) swap(c *call, side media.Side, nl Leg, ep *endpoint, mc media.Call, ack *sip.Request) *call {
	return x.swapLeg(c, side, &leg{Leg: nl, ep: ep, ack: ack}, mc)
}

// swapLeg is swap of a whole leg (one taken from another call).
func (x *transfer) swapLeg(c *call, side media.Side, l *leg, mc media.Call) *call {
	s := c.svc
	c.mu.Lock()
	if c.endingLocked() { // the transferee hung up meanwhile
		c.mu.Unlock()
		return nil
	}
	old := c.setLeg(side, l)
	oldMedia := c.media
	c.media = remember(mc)
	c.mu.Unlock()
	mc.OnInactive(func() { c.hangup("media inactivity timeout") })
	s.calls.put(dialogKey(l.CallID, l.LocalTag), c)
	g := s.ghostLeg(c, side, old)
	if oldMedia != nil {
		oldMedia.Close()
	}
	c.persist() // adopt.go: the new party's dialog and media
	return g
}

// ghostLeg keeps a leg that left its call (the transferor's, or a replaced
// one) reachable for the NOTIFY and BYE that end it. Its other side is an
// empty leg on the same endpoint.
func (s *Service) ghostLeg(c *call, side media.Side, l *leg) *call {
	g := s.newCallState(c.rt)
	g.st = CallState{ID: c.st.ID, Phase: PhaseConfirmed, Started: c.st.Started}
	g.setLeg(side, &leg{Leg: l.Leg, ep: l.ep, uas: l.uas, acked: true, tg: l.tg})
	g.setLeg(side.Other(), &leg{ep: l.ep})
	g.media, _ = media.Passthrough{}.NewCall(c.st.ID, media.Leg{}, media.Leg{})
	s.calls.added()
	callsActive.Inc()
	s.calls.put(dialogKey(l.CallID, l.LocalTag), g)
	return g
}

// findDialog resolves a Replaces against the unit's legs: the call and the
// side whose dialog it names (tags in either order).
func (s *Service) findDialog(r *replacesID) (*call, media.Side) {
	r = unhideReplaces(r)
	for _, p := range [][2]string{{r.toTag, r.fromTag}, {r.fromTag, r.toTag}} {
		c := s.calls.get(dialogKey(r.callID, p[0]))
		if c == nil {
			continue
		}
		c.mu.Lock()
		for _, side := range []media.Side{media.SideA, media.SideB} {
			l := c.leg(side)
			if l.CallID == r.callID && l.LocalTag == p[0] && strings.EqualFold(l.RemoteTag, p[1]) {
				c.mu.Unlock()
				return c, side
			}
		}
		c.mu.Unlock()
	}
	return nil, 0
}

// attended joins the transferee with the far party of the consultation
// call named by the Replaces in the Refer-To; both of the transferor's legs
// end.
func (x *transfer) attended() (int, string, *call, func()) {
	c := x.c
	s := c.svc
	y := x.from.Other()
	c2, z := s.findDialog(x.to.replaces)
	if c2 == nil || c2 == c {
		return 481, "Call/Transaction Does Not Exist", nil, nil
	}
	w := z.Other()
	if code, reason := c2.claimTransfer(); code != 0 {
		return code, reason, nil, nil
	}
	defer c2.releaseTransfer()
	c2.mu.Lock()
	cl, cep := *c2.leg(w), c2.legs[w].ep
	c2.mu.Unlock()
	if cl.RemoteTag == "" {
		return 481, "Call/Transaction Does Not Exist", nil, nil
	}
	c.mu.Lock()
	yPeer := c.leg(y).Peer
	c.mu.Unlock()
	la, lb := mediaLegs(y, c.endpointOf(y), yPeer, cep, cl.Peer)
	mc, err := s.newMedia(c.st.ID, la, lb)
	if err != nil {
		code, reason := statusFor(err)
		return code, reason, nil, nil
	}
	rc, ackC, err := c2.legAt(w).reinvite(nil)
	if err != nil || rc.StatusCode >= 300 {
		mc.Close()
		code, reason, _ := failureOf(rc, err)
		return code, reason, nil, nil
	}
	sdpY, err := mc.Offer(x.from, rc.Body())
	if err != nil || len(rc.Body()) == 0 {
		ackC(nil)
		mc.Close()
		return 488, "Not Acceptable Here", nil, nil
	}
	ry, ackY, err := c.legAt(y).reinvite(sdpY)
	if err != nil || ry.StatusCode >= 300 {
		ackC(nil)
		mc.Close()
		code, reason, _ := failureOf(ry, err)
		return code, reason, nil, nil
	}
	ackY(nil)
	sdpX, err := mc.Answer(y, ry.Body())
	if err != nil {
		ackC(nil)
		mc.Close()
		code, reason := statusFor(err)
		return code, reason, nil, nil
	}
	ackC(sdpX)
	// C's leg moves from the consultation call into c; what remains of the
	// consultation call is the transferor's leg, ended after the NOTIFY.
	caps := c2.capsOf(w)
	c2.mu.Lock()
	moved := *c2.legs[w]             // a copy: c becomes its owner
	c2.setLeg(w, &leg{ep: moved.ep}) // an empty leg: nothing left to end there
	c2.mu.Unlock()
	g := x.swapLeg(c, x.from, &moved, mc)
	after := func() {
		c2.byeSide(z)
		c2.end("transferred (attended)")
	}
	if g == nil { // the transferee left: the consulted party is hung up
		mc.Close()
		gl := s.ghostLeg(c, x.from, &moved)
		gl.byeSide(x.from)
		gl.end("call ended during the transfer")
		return 487, "Request Terminated (the call ended)", nil, after
	}
	st := c.xferState()
	c.mu.Lock()
	st.caps[x.from] = caps
	c.mu.Unlock()
	return 200, "OK", g, after
}
