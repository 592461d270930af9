package b2bua

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/media"
	"github.com/palisade-sbc/palisade/internal/observe"
)

// callTracer keeps every traced message.
type callTracer struct {
	mu   sync.Mutex
	msgs []observe.SIPMessage
}

func (c *callTracer) TraceSIP(m observe.SIPMessage) {
	c.mu.Lock()
	c.msgs = append(c.msgs, m)
	c.mu.Unlock()
}

// find returns the traced messages of leg and direction whose first line
// starts with start and whose CSeq method is method.
func (c *callTracer) find(leg string, dir observe.Direction, start string, method sip.RequestMethod) []observe.SIPMessage {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []observe.SIPMessage
	for _, m := range c.msgs {
		raw := string(m.Raw)
		if m.Leg == leg && m.Dir == dir && strings.HasPrefix(raw, start) && cseqMethod(raw) == string(method) {
			out = append(out, m)
		}
	}
	return out
}

func cseqMethod(msg string) string {
	for _, l := range strings.Split(msg, "\r\n") {
		if v, ok := strings.CutPrefix(l, "CSeq: "); ok {
			_, m, _ := strings.Cut(v, " ")
			return m
		}
	}
	return ""
}

// TestCancelTraced: the trace of a call the caller cancels while it rings
// holds, on the caller's leg, the CANCEL, the unit's 200 to it and the 487
// to the INVITE (both sent by sipgo itself), and on the callee's leg the
// CANCEL, its 200 and the 487; the traced 487 is the one on the wire.
func TestCancelTraced(t *testing.T) {
	pbx, itsp := newUDPPeers(t)
	itsp.SetOnInvite(func(s *sipgo.DialogServerSession, _ *sip.Request) { _ = s.Respond(180, "Ringing", nil) })
	tr := &callTracer{}
	u := newTestUnitWith(t, pbx, itsp, Deps{Tracer: tr}, nil)
	ctx, cancel := context.WithCancel(ctxT(t))
	sess, err := pbx.Call(ctx, u.inside(), "4930123456", testSDP("127.0.0.1", 7000))
	if err != nil {
		t.Fatal(err)
	}
	err = sess.WaitAnswer(ctx, sipgo.AnswerOptions{OnResponse: func(r *sip.Response) error {
		if r.StatusCode == 180 {
			cancel() // sipgo's dialog client sends CANCEL
		}
		return nil
	}})
	if err == nil {
		t.Fatal("call answered")
	}
	waitFor(t, func() bool { return itsp.Wire.Count("CANCEL ") > 0 }, "CANCEL on the trunk's wire")
	waitNoCalls(t, u.Service)
	// what reached the PBX (the wire, not the trace)
	waitFor(t, func() bool { return pbx.Wire.Count("SIP/2.0 487") > 0 }, "487 on the PBX's wire")
	var wire487 string
	for _, m := range pbx.Wire.All() {
		if strings.HasPrefix(m, "SIP/2.0 487") {
			wire487 = m
		}
	}

	type want struct {
		leg    string
		dir    observe.Direction
		start  string
		method sip.RequestMethod
	}
	for _, w := range []want{
		{"inside", observe.Received, "CANCEL ", sip.CANCEL},
		{"inside", observe.Sent, "SIP/2.0 200", sip.CANCEL},
		{"inside", observe.Sent, "SIP/2.0 487", sip.INVITE},
		{"outside", observe.Sent, "CANCEL ", sip.CANCEL},
	} {
		got := tr.find(w.leg, w.dir, w.start, w.method)
		if len(got) != 1 {
			t.Errorf("%s leg, %v: %d traced %q (%s), want 1", w.leg, w.dir, len(got), w.start, w.method)
		}
	}
	// the answers from the trunk come back asynchronously
	for _, w := range []want{
		{"outside", observe.Received, "SIP/2.0 200", sip.CANCEL},
		{"outside", observe.Received, "SIP/2.0 487", sip.INVITE},
	} {
		waitFor(t, func() bool { return len(tr.find(w.leg, w.dir, w.start, w.method)) == 1 }, w.leg+" "+w.start+" "+string(w.method)+" traced")
	}
	traced := tr.find("inside", observe.Sent, "SIP/2.0 487", sip.INVITE)
	if len(traced) == 1 {
		m := traced[0]
		if toTag(string(m.Raw)) == "" || toTag(string(m.Raw)) != toTag(wire487) {
			t.Errorf("traced 487 To tag %q, on the wire %q", toTag(string(m.Raw)), toTag(wire487))
		}
		if m.Remote.String() != pbx.Addr.String() {
			t.Errorf("traced 487 towards %s, the PBX is %s", m.Remote, pbx.Addr)
		}
		if m.CallID == "" || m.CallID != tr.find("inside", observe.Received, "CANCEL ", sip.CANCEL)[0].CallID {
			t.Errorf("487 traced under call %q, not the CANCEL's call", m.CallID)
		}
	}
}

func toTag(msg string) string {
	for _, l := range strings.Split(msg, "\r\n") {
		if v, ok := strings.CutPrefix(l, "To: "); ok {
			if _, tag, ok := strings.Cut(v, "tag="); ok {
				tag, _, _ = strings.Cut(tag, ";")
				return tag
			}
		}
	}
	return ""
}

// gateMedia holds every new call's media set-up until open is closed.
type gateMedia struct {
	media.Passthrough
	entered chan struct{}
	open    chan struct{}
}

func (g gateMedia) NewCall(id string, a, b media.Leg) (media.Call, error) {
	g.entered <- struct{}{}
	<-g.open
	return g.Passthrough.NewCall(id, a, b)
}

// TestCancelDuringSetUp: a CANCEL that arrives while the call is still
// being set up (here: its media) is answered by sipgo with 200 and 487; the
// far leg must then never be called.
func TestCancelDuringSetUp(t *testing.T) {
	pbx, itsp := newUDPPeers(t)
	g := gateMedia{entered: make(chan struct{}, 1), open: make(chan struct{})}
	u := newTestUnitWith(t, pbx, itsp, Deps{Media: g}, nil)
	ctx, cancel := context.WithCancel(ctxT(t))
	sess, err := pbx.Call(ctx, u.inside(), "4930123456", testSDP("127.0.0.1", 7000))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- sess.WaitAnswer(ctx, sipgo.AnswerOptions{OnResponse: func(r *sip.Response) error {
			if r.StatusCode == 100 {
				cancel() // CANCEL after the 100 Trying
			}
			return nil
		}})
	}()
	recv(t, g.entered, "the call's media set-up")
	waitFor(t, func() bool { return pbx.Wire.Count("SIP/2.0 487") > 0 }, "487 for the cancelled INVITE")
	close(g.open)
	if err := recv(t, done, "WaitAnswer to return"); err == nil {
		t.Fatal("call answered")
	}
	waitNoCalls(t, u.Service)
	sleepMS(300) // an INVITE sent on the far leg would have arrived by now
	if n := itsp.Wire.Count("INVITE "); n != 0 {
		t.Fatalf("the trunk got %d INVITEs for a call cancelled during set-up", n)
	}
}

// TestCancelAfterTryingOnly: the callee has sent only 100 Trying when the
// caller cancels; 100 is a provisional response, so the unit cancels the
// far leg at once (RFC 3261 §9.1) instead of waiting for a 18x that may
// never come.
func TestCancelAfterTryingOnly(t *testing.T) {
	pbx, itsp := newUDPPeers(t)
	itsp.SetOnInvite(func(s *sipgo.DialogServerSession, _ *sip.Request) { _ = s.Respond(100, "Trying", nil) })
	u := newTestUnit(t, pbx, itsp, nil)
	ctx, cancel := context.WithCancel(ctxT(t))
	sess, err := pbx.Call(ctx, u.inside(), "4930123456", testSDP("127.0.0.1", 7000))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sess.WaitAnswer(ctx, sipgo.AnswerOptions{}) }()
	itsp.Next(sip.INVITE)
	// whether the trunk's 100 reaches the unit before or after the
	// caller's CANCEL, the far leg is cancelled
	cancel() // WaitAnswer sends CANCEL
	if err := recv(t, done, "WaitAnswer to return"); err == nil {
		t.Fatal("call answered")
	}
	waitFor(t, func() bool { return itsp.Wire.Count("CANCEL ") > 0 }, "CANCEL at the trunk")
	waitNoCalls(t, u.Service)
	if n := pbx.Wire.Count("SIP/2.0 487"); n == 0 {
		t.Error("the PBX got no 487")
	}
}
