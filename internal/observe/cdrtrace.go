package observe

import (
	"context"
	"slices"
	"time"
)

// Call records from traces. When the SIP layer does not report its calls to
// the Recorder, the unit still gets a record per call, derived from the
// trace of both legs when the call ends (no media counters then). As soon
// as anything calls Recorder.CallStarted, the recorder's records are the
// only ones.

// maxPendingTraceCDRs bounds the records being written from traces at once;
// beyond it they are dropped (counted as write errors) rather than queued
// without limit.
const maxPendingTraceCDRs = 64

// recordFromTrace builds the record of a traced call.
func (t *Traces) recordFromTrace(id string) (CDR, bool) {
	ct := t.get(id)
	if ct == nil {
		return CDR{}, false
	}
	ct.mu.Lock()
	msgs := slices.Clone(ct.msgs)
	first, sum := ct.firstCID, ct.sum
	ct.mu.Unlock()
	if len(msgs) == 0 {
		return CDR{}, false
	}
	slices.SortStableFunc(msgs, func(a, b tracedMsg) int { return a.Time.Compare(b.Time) })
	c := CDR{ID: id, Direction: sum.Direction, Start: sum.Start, Code: sum.Result, Reason: sum.Reason, EndedBy: EndedByUnit}
	legOf := func(m *tracedMsg) *CallLeg {
		if m.head().CallID == first {
			return &c.A
		}
		return &c.B
	}
	for i := range msgs {
		m := &msgs[i]
		l, h := legOf(m), m.head()
		if l.CallID == "" {
			*l = CallLeg{Interface: m.Leg, Transport: m.Transport, CallID: h.CallID, Remote: m.Remote,
				From: h.FromURI, To: h.ToURI}
		}
		onA := l == &c.A
		switch {
		case h.Method == "INVITE" && h.Status >= 200 && h.Status < 300 && onA && m.Dir == Sent && c.Answer.IsZero():
			c.Answer = m.Time
		case h.Status == 0 && (h.Method == "BYE" || h.Method == "CANCEL") && c.End.IsZero():
			c.End = m.Time
			if m.Dir == Received {
				c.EndedBy = map[bool]string{true: EndedByCaller, false: EndedByCallee}[onA]
			}
		case h.Method == "INVITE" && h.Status >= 300 && c.Answer.IsZero():
			if onA && m.Dir == Sent && c.End.IsZero() {
				c.End = m.Time
			}
			if !onA && m.Dir == Received && c.EndedBy == EndedByUnit {
				c.EndedBy = EndedByCallee
			}
		}
	}
	if c.End.IsZero() {
		c.End = sum.Last
	}
	if !c.Answer.IsZero() {
		c.Duration = c.End.Sub(c.Answer)
		if c.Code == 0 {
			c.Code = 200
		}
	}
	return c, true
}

// recordTraceEnd writes the record of a call whose trace just ended, unless
// the SIP layer reports calls itself.
func (s *Service) recordTraceEnd(id string) {
	if s.Recorder.reported.Load() {
		return
	}
	select {
	case s.traceCDRs <- struct{}{}:
	default:
		cdrWrites.WithLabelValues("dropped").Inc()
		return
	}
	go func() {
		defer func() { <-s.traceCDRs }()
		c, ok := s.Traces.recordFromTrace(id)
		if !ok {
			return
		}
		c.Media, _ = s.mediaOf(id, true)
		countMedia(c.Media)
		callsTotal.WithLabelValues(c.Direction, c.Result()).Inc()
		if !c.Answer.IsZero() {
			callDuration.WithLabelValues(c.Direction).Observe(c.Duration.Seconds())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.Recorder.Write(ctx, &c); err != nil {
			s.log.Warn("call record not written", "call_id", id, "err", err)
		}
	}()
}

// activeFromTraces describes the calls in progress from their traces, for
// the status of calls while the SIP layer does not report calls (no media
// counters then).
func (s *Service) activeFromTraces() []CDR {
	out := []CDR{}
	now := time.Now()
	for _, sum := range s.Traces.List(CallFilter{Active: true}) {
		c, ok := s.Traces.recordFromTrace(sum.ID)
		if !ok {
			continue
		}
		c.End, c.EndedBy, c.Code, c.Reason, c.Duration = time.Time{}, "", 0, "", 0
		c.Media, _ = s.mediaOf(sum.ID, false)
		if !c.Answer.IsZero() {
			c.Duration = now.Sub(c.Answer)
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b CDR) int { return a.Start.Compare(b.Start) })
	return out
}
