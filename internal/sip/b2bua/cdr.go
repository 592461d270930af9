package b2bua

import (
	"net/netip"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/media"
	"github.com/palisade-sbc/palisade/internal/observe"
	"github.com/palisade-sbc/palisade/internal/observe/callmedia"
)

// Call records: the B2BUA reports each call's start, answer and end to
// Deps.Calls (observe's Recorder in the unit). Its first report switches
// off the records observe would otherwise derive from traces, so each call
// has exactly one record, traced or not.

// callRecord is what the record of a call needs beyond its CallState;
// guarded by call.mu.
type callRecord struct {
	started bool   // CallStarted was reported (calls made by a transfer are not)
	code    int    // final answer to the caller (non-2xx)
	reason  string // its reason phrase
	endedBy string // set where the cause is known; else derived from the end reason
}

// direction follows the caller's interface, as trace-derived records do.
func direction(iface string) string {
	switch iface {
	case "inside":
		return observe.DirOutbound
	case "outside":
		return observe.DirInbound
	}
	return observe.DirInternal
}

func recordLeg(l *Leg) observe.CallLeg {
	cl := observe.CallLeg{Interface: l.Interface, Transport: l.Transport, CallID: l.CallID, Peer: l.Peer}
	if l.RemoteURI.Host != "" {
		cl.From, cl.To = l.RemoteURI.String(), l.LocalURI.String()
	}
	cl.Remote, _ = netip.ParseAddrPort(l.Flow)
	return cl
}

// calleeLeg is the callee's leg with From/To as we sent them (recordLeg
// gives the caller's leg as the caller wrote them).
func calleeLeg(l *Leg) observe.CallLeg {
	cl := recordLeg(l)
	if l.LocalURI.Host != "" {
		cl.From, cl.To = l.LocalURI.String(), l.RemoteURI.String()
	}
	return cl
}

// recordStart reports a new call (newCall, once the call exists).
func (c *call) recordStart() {
	c.mu.Lock()
	c.rec.started = true
	e := observe.CallStart{ID: c.st.ID, Time: c.st.Started, Direction: direction(c.leg(media.SideA).Interface),
		A: recordLeg(c.leg(media.SideA)), B: observe.CallLeg{Interface: c.leg(media.SideB).Interface}}
	c.mu.Unlock()
	c.svc.deps.Calls.CallStarted(e)
}

// recordAnswer reports the callee's answer.
func (c *call) recordAnswer() {
	c.mu.Lock()
	e := observe.CallAnswer{ID: c.st.ID, Time: c.st.Answered, B: calleeLeg(c.leg(media.SideB))}
	started := c.rec.started
	c.mu.Unlock()
	if started {
		c.svc.deps.Calls.CallAnswered(e)
	}
}

// noteFinalA remembers the final non-2xx answer the caller gets.
func (c *call) noteFinalA(res *sip.Response) {
	if res.StatusCode < 300 {
		return
	}
	c.mu.Lock()
	if c.rec.code == 0 {
		c.rec.code, c.rec.reason = res.StatusCode, res.Reason
	}
	c.mu.Unlock()
}

// setEndedBy names who ended the call, when the cause is known first hand.
func (c *call) setEndedBy(who string) {
	c.mu.Lock()
	if c.rec.endedBy == "" {
		c.rec.endedBy = who
	}
	c.mu.Unlock()
}

// recordEnd reports the end of a call (from end(), before its media
// closes, so that the media counters are the last ones).
func (c *call) recordEnd(reason string, answered bool, a, b Leg) {
	c.mu.Lock()
	r := c.rec
	c.mu.Unlock()
	if !r.started {
		return
	}
	e := observe.CallEnd{ID: c.st.ID, Time: time.Now(), Code: r.code, Reason: r.reason, EndedBy: r.endedBy,
		A: recordLeg(&a), B: calleeLeg(&b)}
	switch {
	case answered:
		e.Code, e.Reason = 200, "OK"
	case strings.HasPrefix(reason, "canceled"):
		e.Code, e.Reason = 487, "Request Terminated"
	case e.Code == 0:
		e.Code, e.Reason = 503, "Service Unavailable"
	}
	if e.EndedBy == "" {
		switch {
		case strings.HasPrefix(reason, "canceled"), reason == "bye from caller":
			e.EndedBy = observe.EndedByCaller
		case reason == "bye from callee":
			e.EndedBy = observe.EndedByCallee
		default:
			e.EndedBy = observe.EndedByUnit
		}
	}
	if answered && e.EndedBy == observe.EndedByUnit && reason != "" {
		e.Reason = reason // why the unit ended a call in progress, e.g. "media inactivity timeout"
	}
	if mc := c.mediaOf(); mc != nil { // under the lock: a transfer may swap it
		st := callmedia.Convert(mc.Stats())
		e.Media = st[:]
	}
	c.svc.deps.Calls.CallEnded(e)
}

// recordRefused reports an INVITE refused before a call existed (draining,
// no route, media refused): one record with the caller's leg only.
func (s *Service) recordRefused(id string, ep *endpoint, req *sip.Request, code int, reason string) {
	now := time.Now()
	a := observe.CallLeg{Interface: ep.name, Transport: strings.ToLower(req.Transport()), CallID: req.CallID().Value()}
	if f, t := req.From(), req.To(); f != nil && t != nil {
		a.From, a.To = f.Address.String(), t.Address.String()
	}
	a.Remote, _ = netip.ParseAddrPort(req.Source())
	s.deps.Calls.CallStarted(observe.CallStart{ID: id, Time: now, Direction: direction(ep.name), A: a})
	s.deps.Calls.CallEnded(observe.CallEnd{ID: id, Time: now, Code: code, Reason: reason, EndedBy: observe.EndedByUnit})
}
