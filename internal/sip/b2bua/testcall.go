package b2bua

// Test calls from the administrator's tools: the unit itself places an
// INVITE through the one dial engine (dial.go), as if a peer had called
// (routed by the dial plan) or straight to a SIP URI, holds an answered call
// for a moment, ends it with BYE, and returns the outcome with its ladder.
// The messages go to a capture of their own (trace.go), not to the trace
// buffer: a test call is no call of the unit (no call record, no metrics).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/media"
	"github.com/palisade-sbc/palisade/internal/observe"
	"github.com/palisade-sbc/palisade/internal/routing"
)

// TestCall is what to call and how.
type TestCall struct {
	// Number is dialled through the dial plan as a call from Source would
	// be; URI ("sip:user@host:port;transport=tls") is called directly.
	// Exactly one is set.
	Number string
	URI    string
	// Source is the peer the call is routed as coming from; "" = the first
	// peer of kind pbx (else the first interface).
	Source string
	// Caller is the From user ("" = "palisade").
	Caller string
	// Hold is how long an answered call stays up before the BYE.
	Hold time.Duration
	// Ring is how long each target may ring before the CANCEL (every hop's
	// no-answer time); 0 = the dial plan's and sip.no_answer_timeout.
	Ring time.Duration
}

// Test call results.
const (
	TestAnswered = "answered"
	TestRejected = "rejected"  // a final non-2xx from the far end
	TestTimedOut = "timed_out" // no answer: silence, or ringing until CANCEL
	TestFailed   = "failed"    // no route, no target, transport failure, media
)

// TestCallResult is the outcome of a test call and its SIP messages.
type TestCallResult struct {
	ID       string            // the id of the capture (also the Call-ID's prefix)
	Result   string            // TestAnswered, ...
	Code     int               // final status (2xx answered; the failure's status)
	Reason   string            // its reason phrase, or why the unit gave up
	Target   string            // transport address of the target that answered or failed last
	Peer     string            // configured peer of that target, if any
	Source   string            // the peer or interface the call was routed as from
	Rang     bool              // a 18x came
	Held     time.Duration     // how long the answered call stayed up
	Answered time.Duration     // INVITE to 2xx
	Messages []observe.Message // the ladder
}

// captures holds the tools' captures by call id; captureN keeps the check
// in trace() to one atomic load while there is none.
var (
	captures sync.Map // id → *observe.Capture
	captureN atomic.Int32
)

// captureOf returns the capture of a tools exchange; tools says id is one
// (a message after its end, such as the ending of a late 2xx, is dropped).
func captureOf(id string) (c *observe.Capture, tools bool) {
	if !strings.HasPrefix(id, toolsIDPrefix) {
		return nil, false
	}
	if captureN.Load() == 0 {
		return nil, true
	}
	if v, ok := captures.Load(id); ok {
		return v.(*observe.Capture), true
	}
	return nil, true
}

const toolsIDPrefix = "tools-"

// newCapture starts capturing the messages traced under a new id; done
// stops it.
func newCapture() (id string, c *observe.Capture, done func()) {
	id, c = toolsIDPrefix+newID(), &observe.Capture{}
	captures.Store(id, c)
	captureN.Add(1)
	return id, c, func() {
		captures.Delete(id)
		captureN.Add(-1)
	}
}

// Limits of a test call.
const (
	maxTestHold = time.Minute
	maxTestRing = 2 * time.Minute
)

// testSource is where a test call comes from: a peer and its interface.
func (rt *runtime) testSource(name string) (peer string, in *endpoint, err error) {
	if rt.table == nil {
		return "", nil, errors.New("sip: no configuration applied")
	}
	if name == "" {
		for _, p := range rt.table.Peers() {
			if p.Kind == "pbx" {
				name = p.Name
				break
			}
		}
	}
	if name != "" {
		p, ok := rt.table.Peer(name)
		if !ok {
			return "", nil, fmt.Errorf("%q is not a peer of the running configuration", name)
		}
		ph, _ := rt.table.PeerHop(p.Name)
		return p.Name, rt.egress(routing.Hop{Interface: ph.Interface}, nil), nil
	}
	if len(rt.ifaceOrder) == 0 {
		return "", nil, errors.New("sip: no interface")
	}
	return "", rt.endpoints[rt.ifaceOrder[0]], nil
}

// testHops routes tc: the dial plan for a number, the URI itself otherwise.
func (s *Service) testHops(rt *runtime, tc TestCall, peer string, in *endpoint) ([]routing.Hop, error) {
	if tc.URI != "" {
		var u sip.Uri
		if err := sip.ParseUri(strings.TrimSpace(tc.URI), &u); err != nil || u.Host == "" {
			return nil, fmt.Errorf("%q is not a SIP URI (sip:user@host[:port][;transport=udp|tcp|tls])", tc.URI)
		}
		if u.Scheme != "sip" && u.Scheme != "sips" {
			return nil, fmt.Errorf("%q: only sip: and sips: URIs can be called", tc.URI)
		}
		return []routing.Hop{{Step: "uri", Scheme: u.Scheme, User: u.User, Host: u.Host, Port: u.Port, Transport: uriTransport(&u)}}, nil
	}
	n := strings.TrimSpace(tc.Number)
	if n == "" {
		return nil, errors.New("give the number or the SIP URI to call")
	}
	info := in.info.Load()
	rr := routing.Request{Method: "INVITE", User: n, Host: info.Host, SourcePeer: peer, SourceInterface: in.name,
		FromURI: "sip:" + testCaller(tc) + "@" + info.Host}
	return rt.table.Route(rr, s.peers.isUp)
}

func testCaller(tc TestCall) string {
	if tc.Caller != "" {
		return tc.Caller
	}
	return "palisade"
}

// TestCall places a test call and returns its outcome. The error is for a
// request that cannot be placed at all (bad URI, unknown source); a call
// that fails is a result.
func (s *Service) TestCall(ctx context.Context, tc TestCall) (*TestCallResult, error) {
	rt := s.rt.Load()
	if (tc.Number == "") == (tc.URI == "") {
		return nil, errors.New("give either a number or a SIP URI to call")
	}
	tc.Hold = min(max(tc.Hold, 0), maxTestHold)
	tc.Ring = min(max(tc.Ring, 0), maxTestRing)
	peer, in, err := rt.testSource(tc.Source)
	if err != nil {
		return nil, err
	}
	id, capt, done := newCapture()
	defer done()
	res := &TestCallResult{ID: id, Source: peer}
	if peer == "" {
		res.Source = in.name
	}
	finish := func() *TestCallResult {
		res.Messages = capt.Messages()
		for _, m := range res.Messages {
			if m.Direction == "in" && m.Status > 100 && m.Status < 200 {
				res.Rang = true
			}
		}
		return res
	}
	hops, err := s.testHops(rt, tc, peer, in)
	if err != nil {
		if tc.URI != "" || tc.Number == "" {
			return nil, err
		}
		res.Result, res.Code, res.Reason = TestFailed, 404, "no route: "+err.Error()
		if code, reason := statusFor(err); code != 500 {
			res.Code, res.Reason = code, reason+" (no route in the dial plan)"
		}
		return finish(), nil
	}
	if tc.Ring > 0 {
		for i := range hops {
			hops[i].Timeout = tc.Ring
		}
	}
	infoIn := in.info.Load()
	out := rt.egress(rt.peerOfHop(hops[0]), in)
	mc, err := s.newMedia(id,
		media.Leg{Interface: in.name, Bind: infoIn.addr, Advertised: infoIn.addr},
		media.Leg{Interface: out.name, Bind: out.info.Load().addr, Advertised: out.info.Load().addr})
	if err != nil {
		res.Result, res.Code, res.Reason = TestFailed, 503, "no media: "+err.Error()
		return finish(), nil
	}
	defer mc.Close()
	codecs := rt.offerCodecs(hops)
	if codecs == nil {
		codecs = config.DefaultOfferCodecs
	}
	// The unit's relay anchors the media: its offer towards the far end
	// is made from a silent caller on the source interface (port 9).
	offer, err := makeOffer(mc, infoIn.addr, codecs)
	if err != nil {
		res.Result, res.Code, res.Reason = TestFailed, 500, "no SDP offer: "+err.Error()
		return finish(), nil
	}
	var mu sync.Mutex
	nl := &leg{Leg: Leg{CallID: id, LocalTag: newID()}}
	var ack atomic.Pointer[sip.Request]
	d := &dialer{
		svc: s, rt: rt, id: id, log: func() *slog.Logger { return s.log.With("test_call", id) }, in: in,
		mu: &mu, leg: nl, cancel: ctx.Done(), ringLast: true, fromPeer: peer,
		build: func(h routing.Hop, tg routing.Target, ep *endpoint) *sip.Request {
			return buildTestInvite(rt, &nl.Leg, tc, h, tg, ep, offer)
		},
		sent: func(ep *endpoint, _ *sip.Request, tx *sip.ClientTx, tg routing.Target) {
			tx.OnRetransmission(func(r *sip.Response) { // our ACK again for a repeated 2xx
				if a := ack.Load(); r.IsSuccess() && a != nil {
					_ = ep.send(a, tg, id)
				}
			})
		},
	}
	start := time.Now()
	ans, err := d.dial(ctx, hops)
	if err != nil {
		var de *DialError
		if !errors.As(err, &de) {
			res.Result, res.Code, res.Reason = TestFailed, 500, err.Error()
			return finish(), nil
		}
		res.Code, res.Reason, res.Target, res.Peer = de.Code, de.Reason, de.Target, de.Peer
		switch {
		case de.Response != nil:
			res.Result = TestRejected
			res.Code, res.Reason = de.Response.StatusCode, de.Response.Reason
		case de.Canceled:
			res.Result, res.Reason = TestFailed, "the test call was abandoned"
		case de.Code == 408 || de.Code == 480:
			res.Result = TestTimedOut
		default:
			res.Result = TestFailed
			if de.Err != nil {
				res.Reason += ": " + de.Err.Error()
			}
		}
		return finish(), nil
	}
	res.Answered = time.Since(start)
	res.Result, res.Code, res.Reason = TestAnswered, ans.res.StatusCode, ans.res.Reason
	res.Target, res.Peer = ans.tg.Addr.String(), ans.hop.Peer
	mu.Lock()
	dl := nl.Leg
	mu.Unlock()
	a := newRequest(sip.ACK, &dl, ans.ep.info.Load(), rt.maxForwards, dl.InviteCSeq)
	a.SetBody(nil)
	ack.Store(a)
	_ = ans.ep.send(a, ans.tg, id)
	if _, err := mc.Answer(media.SideB, ans.res.Body()); err != nil && len(ans.res.Body()) > 0 {
		res.Reason += " (its SDP answer was refused: " + err.Error() + ")"
	}
	if !ans.canceled {
		t := time.NewTimer(tc.Hold)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
		res.Held = time.Since(start) - res.Answered
	}
	s.byeTest(ans, &dl, rt, id)
	return finish(), nil
}

// byeTest ends an answered test call and waits for the answer to the BYE
// (traced: the ladder ends with it).
func (s *Service) byeTest(ans *dialed, dl *Leg, rt *runtime, id string) {
	dl.LocalCSeq++
	bye := newRequest(sip.BYE, dl, ans.ep.info.Load(), rt.maxForwards, dl.LocalCSeq)
	bye.SetBody(nil)
	ctx, cancel := context.WithTimeout(s.base, 40*time.Second)
	defer cancel()
	tx, err := ans.ep.request(ctx, bye, ans.tg, id)
	if err != nil {
		s.log.Info("test call: BYE not sent", "err", err)
		return
	}
	if r := waitFinal(tx); r != nil {
		s.traceIn(id, ans.ep, r)
	}
}

// buildTestInvite is the test call's INVITE for target tg of hop h on ep
// (the dialer's lock held).
func buildTestInvite(rt *runtime, l *Leg, tc TestCall, h routing.Hop, tg routing.Target, ep *endpoint, offer []byte) *sip.Request {
	info := ep.info.Load()
	l.Interface, l.Transport, l.Peer = ep.name, tg.Transport, h.Peer
	l.LocalURI = sip.Uri{Scheme: "sip", User: testCaller(tc), Host: info.Host}
	l.RemoteURI = sip.Uri{Scheme: "sip", User: h.User, Host: h.Host}
	l.RemoteTarget = hopURI(h)
	l.RemoteTag, l.RouteSet = "", nil
	l.ServerName, l.Flow = tg.ServerName, tg.Addr.String()
	l.LocalCSeq++
	l.InviteCSeq = l.LocalCSeq
	req := newRequest(sip.INVITE, l, info, rt.maxForwards, l.LocalCSeq)
	req.AppendHeader(info.Contact(tg.Transport))
	rt.trunkHeaders(req, nil, h.Peer, info)
	for k, v := range h.Headers {
		req.AppendHeader(sip.NewHeader(k, v))
	}
	if rt.userAgent != "" {
		req.AppendHeader(sip.NewHeader("User-Agent", rt.userAgent))
	}
	req.AppendHeader(sip.NewHeader("Subject", "Palisade test call"))
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(offer)
	return req
}
