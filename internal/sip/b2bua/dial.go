package b2bua

// The one engine that places an outgoing INVITE towards a routing decision:
// a new call's far leg (invite.go) and a transfer's new leg (transfer.go)
// go through it, so both try every hop and target the same way.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/routing"
	"github.com/palisade-sbc/palisade/internal/sip/keepalive"
	"github.com/palisade-sbc/palisade/internal/sip/transport"
)

// maxHops caps the hops one INVITE tries, redirects included.
const maxHops = 32

// DialError is why an outgoing INVITE was not answered: the status the
// unit reports for it, the target that gave it and, when the far end sent
// it, the final response (its headers and a 3xx's Contacts are relayed).
type DialError struct {
	Code     int
	Reason   string
	Target   string // transport address of the target tried last; "" when none resolved
	Peer     string // configured peer of that hop, if any
	Response *sip.Response
	Canceled bool  // given up because the call was cancelled or ended
	Err      error // the transport or resolution failure behind Code, if any
}

func (e *DialError) Error() string {
	t := e.Target
	if t == "" {
		t = "no target"
	}
	return fmt.Sprintf("INVITE to %s: %d %s", t, e.Code, e.Reason)
}

func (e *DialError) Unwrap() error { return e.Err }

// dialer places one outgoing INVITE. The fields are set by the caller;
// dial runs it once.
type dialer struct {
	svc *Service
	rt  *runtime
	id  string // the call's id: traces
	log func() *slog.Logger
	in  *endpoint // where the call comes from (egress choice)
	// mu guards *leg, the new leg's dialog, which build fills for each
	// target and dial completes from the responses.
	mu  sync.Locker
	leg *leg
	// build returns the INVITE for target tg of hop h sent on ep (called
	// with mu held).
	build func(h routing.Hop, tg routing.Target, ep *endpoint) *sip.Request
	// cancel, once closed, gives the INVITE up: CANCEL after its first
	// provisional response (RFC 3261 §9.1), never before.
	cancel <-chan struct{}
	// ringLast applies the no-answer time to the last target too: nobody
	// else hangs up a transfer's new leg that rings forever.
	ringLast bool
	// sent is told of each INVITE transaction (first and authorized).
	sent func(ep *endpoint, req *sip.Request, tx *sip.ClientTx, tg routing.Target)
	// early gets each provisional response but 100 (after the leg noted
	// its early dialog).
	early func(r *sip.Response)
	// fromPeer is the peer the call came from: its inbound number rules
	// apply to the caller's number (numbers.go).
	fromPeer string
}

// dialed is an answered INVITE. canceled: the 2xx crossed our CANCEL; the
// caller acknowledges and ends that dialog.
type dialed struct {
	res      *sip.Response
	req      *sip.Request
	ep       *endpoint
	tg       routing.Target
	hop      routing.Hop
	canceled bool
}

type outcome int

const (
	outDone       outcome = iota // answered, or a final answer for the caller
	outNextTarget                // no response, transport error, 408 or 5xx: next target
	outNextHop                   // no answer within the row's no-answer time: next dial plan row
	outRedirect                  // 3xx followed: Contacts become the next hops
)

func (d *dialer) canceled() bool {
	select {
	case <-d.cancel:
		return true
	default:
		return false
	}
}

func (d *dialer) canceledErr(target string) *DialError {
	return &DialError{Code: 487, Reason: "Request Terminated", Target: target, Canceled: true}
}

// dial tries the hops in order, every resolved target of each, until one
// answers. It returns the 2xx or a *DialError.
func (d *dialer) dial(ctx context.Context, hops []routing.Hop) (*dialed, error) {
	var last *sip.Response
	var lastErr error = errStatus(404, "Not Found")
	lastTarget, lastPeer := "", ""
	for i := 0; i < len(hops) && i < maxHops; i++ {
		h := d.rt.peerOfHop(hops[i])
		if d.canceled() {
			return nil, d.canceledErr(lastTarget)
		}
		targets, err := d.targets(ctx, h)
		if err != nil || len(targets) == 0 {
			lastErr = errStatus(503, "Service Unavailable")
			d.log().Info("no targets for hop", "host", h.Host, "peer", h.Peer, "err", err)
			continue
		}
	targets:
		for j, pt := range targets {
			more := j < len(targets)-1 || i < len(hops)-1
			out, ans, res, redirect, err := d.attempt(ctx, pt.hop, pt.Target, more)
			lastTarget, lastPeer = pt.Addr.String(), h.Peer
			d.report(pt, out, res, err)
			switch out {
			case outDone:
				if ans != nil {
					return ans, nil
				}
				return nil, d.failure(res, err, lastTarget, h.Peer)
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
	if d.canceled() {
		return nil, d.canceledErr(lastTarget)
	}
	return nil, d.failure(last, lastErr, lastTarget, lastPeer)
}

// failure is the DialError for a final response res (relayed) or err.
func (d *dialer) failure(res *sip.Response, err error, target, peer string) *DialError {
	if res != nil {
		code, reason := mapFinal(res.StatusCode, res.Reason)
		return &DialError{Code: code, Reason: reason, Target: target, Peer: peer, Response: res}
	}
	if errors.Is(err, errDialCanceled) {
		return d.canceledErr(target)
	}
	code, reason := statusFor(err)
	return &DialError{Code: code, Reason: reason, Target: target, Peer: peer, Err: err}
}

var errDialCanceled = errors.New("canceled")

// hopTarget is one target of a hop with the hop to build its request
// from: for a peer watched by the keepalive monitor the hop of the name
// (sip, sip2, sip3 …) the target was resolved from.
type hopTarget struct {
	routing.Target
	hop routing.Hop
	ka  *keepalive.Target // nil: not a monitored peer's target
}

// targets returns the targets of hop h in the order to try them. A hop to
// a configured peer (its own address or domain) takes the peer's targets
// from the keepalive monitor: every name of the peer (DNS override used),
// those down or kept out by Retry-After left out; keepalive.ErrAllDown
// when none is usable. Other hops are resolved (RFC 3263).
func (d *dialer) targets(ctx context.Context, h routing.Hop) ([]hopTarget, error) {
	if mon := d.svc.peers.mon; h.Peer != "" && d.rt.isPeerHost(h) {
		kts, err := mon.NextTargets(ctx, h.Peer)
		if !errors.Is(err, keepalive.ErrUnknownPeer) {
			if err != nil {
				return nil, err
			}
			out := make([]hopTarget, len(kts))
			for i := range kts {
				hh := h
				hh.Host, hh.Port, hh.Transport = kts[i].Hop.Host, kts[i].Hop.Port, kts[i].Hop.Transport
				out[i] = hopTarget{Target: kts[i].Target, hop: hh, ka: &kts[i]}
			}
			return out, nil
		}
	}
	ts, err := d.resolve(ctx, h)
	out := make([]hopTarget, len(ts))
	for i, t := range ts {
		out[i] = hopTarget{Target: t, hop: h}
	}
	return out, err
}

// report tells the keepalive monitor what a monitored target answered:
// no answer takes it out, a 503's Retry-After keeps it out that long.
func (d *dialer) report(pt hopTarget, out outcome, res *sip.Response, err error) {
	if pt.ka == nil || errors.Is(err, errDialCanceled) {
		return
	}
	switch {
	case res != nil:
		d.svc.peers.mon.Report(*pt.ka, res.StatusCode, keepalive.RetryAfter(res))
	case out == outNextTarget: // transport failure or silence
		d.svc.peers.mon.Report(*pt.ka, 0, 0)
	}
}

// isPeerHost reports whether h is addressed to its peer's own address or
// domain (not a registered contact or a redirect target of that peer).
func (rt *runtime) isPeerHost(h routing.Hop) bool {
	if rt.table == nil {
		return false
	}
	ph, ok := rt.table.PeerHop(h.Peer)
	return ok && strings.EqualFold(strings.TrimSuffix(ph.Host, "."), strings.TrimSuffix(h.Host, "."))
}

func (d *dialer) resolve(ctx context.Context, h routing.Hop) ([]routing.Target, error) {
	if _, err := netip.ParseAddr(strings.Trim(h.Host, "[]")); err == nil {
		return d.rt.resolver.Resolve(ctx, h) // no DNS: no deadline needed
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return d.rt.resolver.Resolve(rctx, h)
}

// peerOfHop completes a hop without peer (a DNS override, a dial plan URI,
// a redirect) addressed to one of a configured peer's names (its address or
// domain, trunk.targets, their DNS overrides) with the same port, if both
// give one: it is placed as a call to that peer (its interface, headers,
// credentials, number rules). A peer whose port matches exactly wins over
// one matched by host alone (two peers on one address).
func (rt *runtime) peerOfHop(h routing.Hop) routing.Hop {
	if h.Peer != "" || rt.table == nil {
		return h
	}
	ph, ok := rt.peerHopAt(h.Host, h.Port)
	if !ok {
		return h
	}
	h.Peer = ph.Peer
	if h.Interface == "" {
		h.Interface = ph.Interface
	}
	if h.Headers == nil {
		h.Headers = ph.Headers
	}
	return h
}

// peerHopAt returns the peer hop of the first peer with a name at host
// and port (0: any), an exact port first.
func (rt *runtime) peerHopAt(host string, port int) (routing.Hop, bool) {
	var loose routing.Hop
	found := false
	for _, p := range rt.table.Peers() {
		for _, ph := range rt.table.PeerHops(p.Name, "") {
			if !strings.EqualFold(strings.TrimSuffix(ph.Host, "."), strings.TrimSuffix(host, ".")) {
				continue
			}
			switch {
			case ph.Port != 0 && ph.Port == port:
				return ph, true
			case (ph.Port == 0 || port == 0) && !found:
				loose, found = ph, true
			}
		}
	}
	return loose, found
}

// attempt sends the INVITE to one target and reads its responses.
func (d *dialer) attempt(ctx context.Context, h routing.Hop, tg routing.Target, more bool) (outcome, *dialed, *sip.Response, []routing.Hop, error) {
	s, rt := d.svc, d.rt
	ep := rt.egress(h, d.in)
	d.mu.Lock()
	req := d.build(h, tg, ep)
	d.rt.numbersOut(req, d.fromPeer, h.Peer)
	d.leg.LocalURI, d.leg.RemoteURI = req.From().Address, req.To().Address
	d.mu.Unlock()

	rs := ep.watch(req) // responses in wire order (order.go)
	defer func() { rs.Stop() }()
	tx, err := ep.request(ctx, req, tg, d.id)
	if err != nil {
		d.log().Info("INVITE not sent", "target", tg.Addr, "err", err)
		return outNextTarget, nil, nil, nil, err
	}
	if d.sent != nil {
		d.sent(ep, req, tx, tg)
	}
	rs.Start(tx)
	var noAnswer <-chan time.Time
	if more || d.ringLast {
		dur := h.Timeout
		if dur <= 0 {
			dur = rt.noAnswer
		}
		if dur > 0 {
			t := time.NewTimer(dur)
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
	// it may be cancelled (RFC 3261 §9.1); gotProv: a 18x came.
	var gotProv, alive, cancelSent, timedOut bool
	cancelNow := func() {
		if alive && !cancelSent {
			s.cancelInvite(ep, req, tg, d.id)
			cancelSent = true
		}
	}
	authTries := 0
	canceled := d.cancel
	for {
		select {
		case <-canceled:
			canceled = nil
			cancelNow()
		case <-noAnswer:
			noAnswer = nil
			timedOut = true
			failovers.WithLabelValues("no_answer").Inc()
			if !alive {
				tx.Terminate()
				s.abandon(tx.Key(), req, tg, d.id) // nothing came back: a late 2xx is ended (dialog.go)
				return outNextHop, nil, nil, nil, errStatus(408, "Request Timeout")
			}
			cancelNow()
		case <-silent:
			silent = nil
			d.log().Info("no response to INVITE: next target", "target", tg.Addr, "after", rt.inviteTimeout)
			tx.Terminate() // no more retransmissions
			s.abandon(tx.Key(), req, tg, d.id)
			if d.canceled() {
				return outDone, nil, nil, nil, errDialCanceled
			}
			return outNextTarget, nil, nil, nil, errStatus(408, "Request Timeout")
		case <-rs.Done():
			err := tx.Err()
			switch {
			case d.canceled():
				return outDone, nil, nil, nil, errDialCanceled
			case timedOut:
				return outNextHop, nil, nil, nil, errStatus(408, "Request Timeout")
			case err == nil || errors.Is(err, sip.ErrTransactionTerminated):
				err = errStatus(408, "Request Timeout")
			}
			return outNextTarget, nil, nil, nil, err
		case r := <-rs.Responses():
			silent = nil // the target is alive
			s.traceIn(d.id, ep, r)
			switch {
			case r.StatusCode == 100:
				alive = true
				if d.canceled() || timedOut {
					cancelNow()
				}
			case r.StatusCode < 200:
				gotProv, alive = true, true
				if d.canceled() || timedOut {
					cancelNow()
					continue
				}
				if getTag(r.To().Params) != "" {
					d.establish(r)
				}
				if d.early != nil {
					d.early(r)
				}
			case r.StatusCode < 300:
				d.establish(r)
				return outDone, &dialed{res: r, req: req, ep: ep, tg: tg, hop: h, canceled: d.canceled()}, nil, nil, nil
			case d.canceled():
				return outDone, nil, nil, nil, errDialCanceled
			case r.StatusCode < 400:
				if rt.followRedirects {
					if hops := redirectHops(r, h); len(hops) > 0 {
						return outRedirect, nil, r, hops, nil
					}
				}
				return outDone, nil, r, nil, nil
			default:
				if !timedOut && !gotProv && answerable(r, authTries) {
					// a trunk asking for credentials: same target (auth.go)
					authTries++
					if ntx, nreq, nrs := d.resendAuthorized(ctx, ep, h, tg, req, r); ntx != nil {
						rs.Stop()
						tx, req, rs = ntx, nreq, nrs
						alive = false       // a new transaction: CANCEL waits for its own provisional
						if silentT != nil { // the retry gets its own time to be answered
							silentT.Reset(rt.inviteTimeout)
							silent = silentT.C
						}
						continue
					}
				}
				switch {
				case timedOut:
					return outNextHop, nil, nil, nil, errStatus(480, "Temporarily Unavailable")
				case !keepalive.MovesOn(r.StatusCode):
					// 6xx ends the search (RFC 3261 §16.7), and so does a
					// 4xx other than 408: another target or row would ring
					// a callee who declined, or refuse the same request.
					return outDone, nil, r, nil, nil
				case !gotProv:
					return outNextTarget, nil, r, nil, nil
				}
				// It rang there, then failed (408/5xx): the callee was
				// alerted already, so no other target or row is called
				// (it would ring twice; Teams fails over the same way).
				return outDone, nil, r, nil, nil
			}
		}
	}
}

// establish records the new leg's (early) dialog from a response with a
// To tag.
func (d *dialer) establish(r *sip.Response) {
	d.mu.Lock()
	d.leg.establish(r)
	d.mu.Unlock()
}

// resendAuthorized sends the INVITE again answering the challenge r (new
// CSeq and branch, same Call-ID and From tag) and returns its transaction,
// the request and its response stream; nil when the peer has no
// credentials or the request could not be sent.
func (d *dialer) resendAuthorized(ctx context.Context, ep *endpoint, h routing.Hop, tg routing.Target, req *sip.Request, r *sip.Response) (*sip.ClientTx, *sip.Request, *transport.Ordered) {
	d.mu.Lock()
	retry := d.svc.authRetry(d.rt, h.Peer, req, r, d.leg.LocalCSeq+1)
	if retry == nil {
		d.mu.Unlock()
		return nil, nil, nil
	}
	d.leg.LocalCSeq++
	d.leg.InviteCSeq = d.leg.LocalCSeq
	d.mu.Unlock()
	// Watched before it is sent, as the first INVITE: a trunk answering
	// the retry with 180 and 200 back to back must not lose the 180.
	rs := ep.watch(retry)
	tx, err := ep.request(ctx, retry, tg, d.id)
	if err != nil {
		rs.Stop()
		d.log().Info("authorized INVITE not sent", "target", tg.Addr, "err", err)
		return nil, nil, nil
	}
	if d.sent != nil {
		d.sent(ep, retry, tx, tg)
	}
	rs.Start(tx)
	return tx, retry, rs
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

// cancelInvite sends CANCEL for an INVITE we sent (RFC 3261 §9.1).
func (s *Service) cancelInvite(ep *endpoint, inv *sip.Request, tg routing.Target, id string) {
	req := sip.NewRequest(sip.CANCEL, inv.Recipient)
	req.AppendHeader(sip.HeaderClone(inv.Via()))
	for _, n := range []string{"Route", "Max-Forwards", "From", "To", "Call-ID"} {
		for _, h := range inv.GetHeaders(n) {
			req.AppendHeader(sip.HeaderClone(h))
		}
	}
	req.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.CANCEL})
	req.SetBody(nil)
	tx, err := ep.request(context.Background(), req, tg, id)
	if err != nil {
		s.limited.Warn("sip-cancel", "CANCEL not sent", "err", err)
		return
	}
	go func() {
		if r := waitFinal(tx); r != nil {
			s.traceIn(id, ep, r)
		}
	}()
}
