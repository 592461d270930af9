package b2bua

import (
	"context"
	"net/netip"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/media"
	"github.com/palisade-sbc/palisade/internal/routing"
)

// leg is one side of a call: its dialog (Leg, plain and serialisable) and
// the live handles to speak on it. The call decides which leg acts (and
// holds the call-wide state); the leg builds, sends and answers the
// requests of its own dialog.
//
// Its fields are guarded by its owner's mu. A transfer or a Replaces puts
// a new *leg in a side's place in one assignment under that lock
// (call.setLeg), so a leg's dialog, endpoint and INVITE exchange never
// come from two different parties; a leg that moves to another call is
// copied with its new owner.
type leg struct {
	Leg
	ep *endpoint

	owner *call      // whose mu guards the leg; its id, runtime and context are the leg's
	side  media.Side // its side in owner

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

// The methods below whose comment says "owner's mu held" are called under
// the lock; the others take it themselves and must not be called with it.

// request builds a request in the leg's dialog with CSeq cseq (owner's mu
// held).
func (l *leg) request(method sip.RequestMethod, maxFwd int, cseq uint32) *sip.Request {
	return newRequest(method, &l.Leg, l.ep.info.Load(), maxFwd, cseq)
}

// nextCSeq takes the leg's next local CSeq (owner's mu held).
func (l *leg) nextCSeq() uint32 {
	l.LocalCSeq++
	return l.LocalCSeq
}

// contact is the unit's Contact on this leg (owner's mu held).
func (l *leg) contact() *sip.ContactHeader { return l.ep.info.Load().Contact(l.Transport) }

// refresh takes a target refresh (RFC 3261 §12.2) from the Contact of a
// request or response of the peer (owner's mu held).
func (l *leg) refresh(ct *sip.ContactHeader) {
	if ct != nil {
		l.RemoteTarget = ct.Address
	}
}

// establish records the dialog a response with a To tag makes (a 18x or
// 2xx to the INVITE we sent; the dialer's lock held).
func (l *leg) establish(r *sip.Response) {
	if t := getTag(r.To().Params); t != "" {
		l.RemoteTag = t
	}
	l.refresh(r.Contact())
	if rs := routeSet(r, true); len(rs) > 0 {
		l.RouteSet = rs
	}
}

// dialog returns a copy of the leg's dialog.
func (l *leg) dialog() Leg {
	l.owner.mu.Lock()
	defer l.owner.mu.Unlock()
	return l.Leg
}

// snapshot returns a copy of the leg's dialog and its endpoint, read in
// one step.
func (l *leg) snapshot() (Leg, *endpoint) {
	l.owner.mu.Lock()
	defer l.owner.mu.Unlock()
	return l.Leg, l.ep
}

// endpoint returns the endpoint the leg speaks on.
func (l *leg) endpoint() *endpoint {
	l.owner.mu.Lock()
	defer l.owner.mu.Unlock()
	return l.ep
}

// takeCSeq takes the leg's next local CSeq.
func (l *leg) takeCSeq() uint32 {
	l.owner.mu.Lock()
	defer l.owner.mu.Unlock()
	return l.nextCSeq()
}

// updateTarget takes a target refresh from ct.
func (l *leg) updateTarget(ct *sip.ContactHeader) {
	l.owner.mu.Lock()
	l.refresh(ct)
	l.owner.mu.Unlock()
}

// addContact adds the unit's Contact on this leg to m.
func (l *leg) addContact(m sip.Message) {
	l.owner.mu.Lock()
	ct := l.contact()
	l.owner.mu.Unlock()
	m.AppendHeader(ct)
}

// inDialog builds a request in the leg's dialog with CSeq cseq and
// returns the endpoint to send it on.
func (l *leg) inDialog(method sip.RequestMethod, cseq uint32) (*sip.Request, *endpoint) {
	l.owner.mu.Lock()
	defer l.owner.mu.Unlock()
	return l.request(method, l.owner.rt.maxForwards, cseq), l.ep
}

// newInDialog builds a request with the leg's next CSeq, read in one step:
// the request, the endpoint to send it on and a copy of the dialog.
func (l *leg) newInDialog(method sip.RequestMethod, withContact bool) (*sip.Request, *endpoint, Leg) {
	l.owner.mu.Lock()
	defer l.owner.mu.Unlock()
	req := l.request(method, l.owner.rt.maxForwards, l.nextCSeq())
	if withContact {
		req.AppendHeader(l.contact())
	}
	l.owner.rt.addPeerHeaders(req, l.Peer)
	return req, l.ep, l.Leg
}

// target is where requests on the leg go: over the existing connection for
// TCP/TLS (sipgo issue 361: in-dialog requests must reuse the dialog's
// connection), else the first route or the remote target.
func (l *leg) target() routing.Target {
	c := l.owner
	d, ep := l.snapshot()
	if d.Transport != "udp" && d.Flow != "" {
		if ep.HasConn(d.Transport, d.Flow) {
			ap, _ := netip.ParseAddrPort(d.Flow)
			return routing.Target{Addr: ap, Transport: d.Transport, ServerName: d.ServerName}
		}
	}
	u := d.RemoteTarget
	if len(d.RouteSet) > 0 {
		u = d.RouteSet[0]
	}
	tr := uriTransport(&u)
	if tr == "" {
		tr = d.Transport
	}
	if a, err := netip.ParseAddr(strings.Trim(u.Host, "[]")); err == nil {
		port := u.Port
		if port == 0 {
			port = 5060
			if tr == "tls" {
				port = 5061
			}
		}
		return routing.Target{Addr: netip.AddrPortFrom(a.Unmap(), uint16(port)), Transport: tr, ServerName: d.ServerName}
	}
	hop := routing.Hop{Scheme: u.Scheme, Host: u.Host, Port: u.Port, Transport: tr}
	ctx, cancel := context.WithTimeout(c.context(), 3*time.Second)
	defer cancel()
	if ts, err := c.rt.resolver.Resolve(ctx, hop); err == nil && len(ts) > 0 {
		if ts[0].ServerName == "" {
			ts[0].ServerName = d.ServerName
		}
		return ts[0]
	}
	ap, _ := netip.ParseAddrPort(d.Flow)
	return routing.Target{Addr: ap, Transport: d.Transport, ServerName: d.ServerName}
}

// respond sends res on the INVITE transaction the leg answers (none: a
// leg the unit called).
func (l *leg) respond(res *sip.Response) {
	c := l.owner
	c.mu.Lock()
	ep, tx := l.ep, l.stx
	c.mu.Unlock()
	if tx != nil {
		c.svc.respond(ep, tx, res, c.st.ID)
	}
}

// retransmit2xx resends our 2xx until its ACK arrives (RFC 3261 §13.3.1.4:
// on unreliable transports this is the UAS core's job); giveUp runs when
// none came within 64*T1. It stops once the leg has left its call. It
// runs on timers, not a goroutine per call: most ACKs come long before the
// first retransmission.
func (l *leg) retransmit2xx(giveUp func()) {
	c := l.owner
	deadline := time.Now().Add(64 * sip.T1)
	var step func(d time.Duration)
	step = func(d time.Duration) {
		time.AfterFunc(d, func() {
			c.mu.Lock()
			acked, res, in := l.acked, l.final, c.legs[l.side] == l
			c.mu.Unlock()
			if acked || c.ended.Load() || res == nil || !in {
				return
			}
			if time.Now().After(deadline) {
				giveUp()
				return
			}
			l.respond(res)
			step(min(2*d, sip.T2))
		})
	}
	step(sip.T1)
}

// sendAck acknowledges the 2xx to the INVITE the unit sent on the leg; a
// repeated 2xx gets the same ACK (resendAck).
func (l *leg) sendAck(body []byte) {
	c := l.owner
	ack, _ := l.inDialog(sip.ACK, l.dialog().InviteCSeq)
	if len(body) > 0 {
		ack.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	ack.SetBody(body)
	dst := l.target()
	c.mu.Lock()
	l.ack = ack
	itx, ep := l.itx, l.ep
	c.mu.Unlock()
	if err := ep.send(ack, dst, c.st.ID); err != nil {
		c.logger().Info("ACK not sent", "err", err)
	}
	// Retransmitted 2xx now reach onStrayResponse, which repeats this ACK;
	// the transaction need not linger in its Accepted state.
	if itx != nil {
		itx.Terminate()
	}
}

// resendAck answers a retransmitted 2xx with the leg's ACK again.
func (l *leg) resendAck() {
	c := l.owner
	c.mu.Lock()
	ack, ep := l.ack, l.ep
	c.mu.Unlock()
	if ack == nil {
		return
	}
	_ = ep.send(ack, l.target(), c.st.ID)
}

// bye ends the leg: BYE once its dialog is confirmed (answered: the call
// was), else CANCEL of the INVITE the unit sent on it. A challenge to the
// BYE is answered once (auth.go).
func (l *leg) bye(answered bool) {
	c := l.owner
	c.mu.Lock()
	uas := l.uas
	confirmed := l.RemoteTag != "" && (uas || l.ack != nil || answered)
	inv, itx, tg, ep := l.inv, l.itx, l.tg, l.ep
	c.mu.Unlock()
	if !confirmed {
		if !uas && inv != nil && itx != nil {
			c.svc.cancelInvite(ep, inv, tg, c.st.ID)
		}
		return
	}
	bye, ep, d := l.newInDialog(sip.BYE, false)
	if c.rt.userAgent != "" {
		bye.AppendHeader(sip.NewHeader("User-Agent", c.rt.userAgent))
	}
	bye.SetBody(nil)
	dst := l.target()
	tx, err := ep.request(context.Background(), bye, dst, c.st.ID)
	if err != nil {
		c.logger().Info("BYE not sent", "side", sideName(l.side), "err", err)
		return
	}
	go func() {
		if r := c.svc.finishAuth(context.Background(), c.rt, ep, d.Peer, bye, tx, dst, c.st.ID, l.takeCSeq); r != nil {
			c.svc.traceIn(c.st.ID, ep, r)
		}
	}()
}

// resendAuthorized sends an in-dialog request (re-INVITE, UPDATE, INFO...)
// again answering the peer's challenge r; nil when the peer has no
// credentials or the retry could not be sent.
func (l *leg) resendAuthorized(out *sip.Request, r *sip.Response, dst routing.Target) (*sip.ClientTx, *sip.Request) {
	c := l.owner
	d, ep := l.snapshot()
	if c.rt.creds[d.Peer].Username == "" {
		return nil, nil
	}
	retry := c.svc.authRetry(c.rt, d.Peer, out, r, l.takeCSeq())
	if retry == nil {
		return nil, nil
	}
	tx, err := ep.request(c.context(), retry, dst, c.st.ID)
	if err != nil {
		c.logger().Info("authorized request not sent", "method", out.Method, "err", err)
		return nil, nil
	}
	return tx, retry
}

// reinvite sends a re-INVITE on the leg with sdp (none: ask for an offer)
// and returns the final response; for a 2xx the caller sends the ACK with
// the function returned.
func (l *leg) reinvite(sdp []byte) (*sip.Response, func(body []byte), error) {
	c := l.owner
	req, ep, _ := l.newInDialog(sip.INVITE, true)
	cseq := req.CSeq().SeqNo
	if c.rt.userAgent != "" {
		req.AppendHeader(sip.NewHeader("User-Agent", c.rt.userAgent))
	}
	if len(sdp) > 0 {
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		req.SetBody(sdp)
	} else {
		req.SetBody(nil)
	}
	dst := l.target()
	tx, err := ep.request(c.context(), req, dst, c.st.ID)
	if err != nil {
		return nil, nil, err
	}
	var ackMsg *sip.Request
	ackFn := func(body []byte) {
		ack, _ := l.inDialog(sip.ACK, cseq)
		if len(body) > 0 {
			ack.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		}
		ack.SetBody(body)
		c.mu.Lock()
		ackMsg = ack
		c.mu.Unlock()
		_ = ep.send(ack, dst, c.st.ID)
	}
	tx.OnRetransmission(func(r *sip.Response) {
		c.mu.Lock()
		a := ackMsg
		c.mu.Unlock()
		if r.IsSuccess() && a != nil {
			_ = ep.send(a, dst, c.st.ID)
		}
	})
	for {
		select {
		case r := <-tx.Responses():
			c.svc.traceIn(c.st.ID, ep, r)
			if r.StatusCode < 200 {
				continue
			}
			if r.StatusCode < 300 {
				l.updateTarget(r.Contact())
			}
			return r, ackFn, nil
		case <-tx.Done():
			err := tx.Err()
			if err == nil {
				err = errStatus(408, "Request Timeout")
			}
			return nil, nil, err
		}
	}
}

// legAt returns the leg on side s (a transfer may replace it at any time:
// what the caller does next is done on that leg).
func (c *call) legAt(s media.Side) *leg {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.legs[s]
}

// setLeg puts l on side s of c and returns the leg it replaces (c.mu held,
// or c not yet published).
func (c *call) setLeg(s media.Side, l *leg) *leg {
	old := c.legs[s]
	l.owner, l.side = c, s
	c.legs[s] = l
	return old
}
