package observe

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/palisade-sbc/palisade/internal/observe/history"
	"github.com/palisade-sbc/palisade/internal/store"
)

// Call directions, as the SIP layer reports them.
const (
	DirInbound  = "inbound"  // from the outside (trunk) to the inside (PBX)
	DirOutbound = "outbound" // from the inside to the outside
	DirInternal = "internal" // both legs on the same side
)

// Who ended a call.
const (
	EndedByCaller  = "caller"
	EndedByCallee  = "callee"
	EndedByUnit    = "unit"    // timeout, media inactivity, shutdown, error
	EndedByUnknown = "unknown" // e.g. the unit restarted during the call
)

// CallLeg identifies one leg of a call as the unit saw it.
type CallLeg struct {
	Interface string         `json:"interface,omitempty"`
	Transport string         `json:"transport,omitempty"`
	From      string         `json:"from,omitempty"` // From URI
	To        string         `json:"to,omitempty"`   // To URI
	CallID    string         `json:"call_id,omitempty"`
	Remote    netip.AddrPort `json:"remote,omitzero"`
	Peer      string         `json:"peer,omitempty"` // configured peer name, when known
}

// merge fills o's empty fields from n's non-empty ones.
func (o *CallLeg) merge(n CallLeg) {
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&o.Interface, n.Interface)
	set(&o.Transport, n.Transport)
	set(&o.From, n.From)
	set(&o.To, n.To)
	set(&o.CallID, n.CallID)
	set(&o.Peer, n.Peer)
	if n.Remote.IsValid() {
		o.Remote = n.Remote
	}
}

// MediaLeg is one leg's media counters. Its fields are those of
// media.LegStats (plus JSON names), so the SIP layer converts with
// observe.MediaLeg(stats.Legs[i]); observe does not import media.
type MediaLeg struct {
	Local        netip.AddrPort `json:"local,omitzero"`
	Remote       netip.AddrPort `json:"remote,omitzero"`
	Codec        string         `json:"codec,omitempty"`
	SRTP         bool           `json:"srtp"`
	Suite        string         `json:"suite,omitempty"`
	PacketsIn    uint64         `json:"packets_in"`
	PacketsOut   uint64         `json:"packets_out"`
	BytesIn      uint64         `json:"bytes_in"`
	BytesOut     uint64         `json:"bytes_out"`
	Lost         uint64         `json:"lost"`
	AuthFailures uint64         `json:"auth_failures"`
	JitterMs     float64        `json:"jitter_ms"` // RFC 3550 interarrival jitter of received RTP
}

// CDR is the record of one call.
type CDR struct {
	ID        string        `json:"id"` // the unit's call id
	Direction string        `json:"direction"`
	Start     time.Time     `json:"start"`
	Answer    time.Time     `json:"answer,omitzero"`
	End       time.Time     `json:"end,omitzero"`
	Duration  time.Duration `json:"duration"` // talk time: End - Answer
	A         CallLeg       `json:"a"`        // the caller's leg
	B         CallLeg       `json:"b"`        // the callee's leg
	Code      int           `json:"code"`     // final SIP status of the call (200 when answered)
	Reason    string        `json:"reason,omitempty"`
	EndedBy   string        `json:"ended_by,omitempty"`
	Media     [2]MediaLeg   `json:"media"` // [0] caller's leg, [1] callee's leg
	// Unit is the unit of a cluster that carried the call (set in
	// cluster-wide listings; records are stored without it).
	Unit string `json:"unit,omitempty"`
}

// Result is the call's outcome in one word (the metric label).
func (c *CDR) Result() string {
	switch {
	case !c.Answer.IsZero():
		return "answered"
	case c.Code == 486 || c.Code == 600:
		return "busy"
	case c.Code == 487:
		return "cancelled"
	case c.Code == 408 || c.Code == 480:
		return "no_answer"
	case c.Code >= 400 && c.Code < 500 || c.Code >= 600:
		return "rejected"
	}
	return "failed"
}

// Failed reports whether the call ended in a failure worth keeping its trace
// for: a final status of 400 or more (but not a caller's cancel), or an end
// the unit forced.
func (c *CDR) Failed() bool {
	if c.Answer.IsZero() {
		return c.Code >= 400 && c.Code != 487 || c.Code == 0
	}
	return c.EndedBy == EndedByUnit
}

// Events the SIP layer reports (plain structs so they can cross any boundary).
type (
	CallStart struct {
		ID        string
		Time      time.Time // zero = now
		Direction string    // DirInbound, DirOutbound, DirInternal
		A         CallLeg   // the caller's leg
		B         CallLeg   // the callee's leg, as far as known
	}
	CallAnswer struct {
		ID   string
		Time time.Time
		B    CallLeg // the answering leg's details (merged)
	}
	CallEnd struct {
		ID      string
		Time    time.Time
		Code    int // final status; 200 for an answered call that ended with BYE
		Reason  string
		EndedBy string     // EndedByCaller, EndedByCallee, EndedByUnit
		A, B    CallLeg    // merged into what was known
		Media   []MediaLeg // caller's leg first; may be empty
	}
)

// CallRecorder is what the SIP layer calls for every call.
type CallRecorder interface {
	CallStarted(CallStart)
	CallAnswered(CallAnswer)
	CallEnded(CallEnd)
}

// NopRecorder records nothing.
type NopRecorder struct{}

func (NopRecorder) CallStarted(CallStart)   {}
func (NopRecorder) CallAnswered(CallAnswer) {}
func (NopRecorder) CallEnded(CallEnd)       {}

// Recorder keeps calls in progress in memory, counts them in the call
// metrics, and writes a CDR to the store when a call ends. It implements
// CallRecorder and is safe for concurrent use.
type Recorder struct {
	st     store.Store
	log    *slog.Logger
	traces *Traces // told when a call ends, to keep failed traces longer; may be nil
	now    func() time.Time
	hist   *history.Ring // the dashboard's per-minute history; may be nil

	// reported turns true at the first CallStarted: from then on the SIP
	// layer reports calls and no records are derived from traces.
	reported atomic.Bool

	mu     sync.Mutex
	active map[string]*activeCall

	w     *cdrWriter                  // writes ended calls' records in batches, off the call path
	sinks atomic.Pointer[[]func(CDR)] // cdrsink.go
}

type activeCall struct {
	cdr   CDR
	stats func() [2]MediaLeg
}

// NewRecorder returns a recorder writing to st. traces may be nil.
func NewRecorder(st store.Store, traces *Traces, log *slog.Logger) *Recorder {
	if log == nil {
		log = slog.Default()
	}
	r := &Recorder{st: st, log: log, traces: traces, now: time.Now, active: make(map[string]*activeCall)}
	r.w = newCDRWriter(r)
	return r
}

// Flush waits until the records of every call ended so far are in the store.
func (r *Recorder) Flush() { r.w.flush() }

// Close writes the records still queued; records of calls ending later are
// written at once by the caller.
func (r *Recorder) Close() { r.w.close() }

func (r *Recorder) at(t time.Time) time.Time {
	if t.IsZero() {
		return r.now()
	}
	return t
}

// CallStarted records a new call.
func (r *Recorder) CallStarted(e CallStart) {
	dir := e.Direction
	if dir == "" {
		dir = DirInternal
	}
	if !r.reported.Swap(true) && r.traces != nil {
		r.traces.countCalls.Store(false) // the recorder counts calls from now on
	}
	c := &activeCall{cdr: CDR{ID: e.ID, Direction: dir, Start: r.at(e.Time), A: e.A, B: e.B}}
	r.mu.Lock()
	_, dup := r.active[e.ID]
	r.active[e.ID] = c
	r.mu.Unlock()
	if !dup {
		callAttempts.WithLabelValues(dir).Inc()
		callsActive.WithLabelValues(dir).Inc()
		if r.hist != nil {
			r.hist.CallStarted(c.cdr.Start)
		}
	}
}

// SetStatsFunc attaches a function giving the live media counters of a
// call in progress, shown in the status of calls.
func (r *Recorder) SetStatsFunc(id string, fn func() [2]MediaLeg) {
	r.mu.Lock()
	if c := r.active[id]; c != nil {
		c.stats = fn
	}
	r.mu.Unlock()
}

// CallAnswered records the answer of a call.
func (r *Recorder) CallAnswered(e CallAnswer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.active[e.ID]; c != nil && c.cdr.Answer.IsZero() {
		c.cdr.Answer = r.at(e.Time)
		c.cdr.B.merge(e.B)
	}
}

// CallEnded completes the call's record and queues it for the store
// (cdrwriter.go).
func (r *Recorder) CallEnded(e CallEnd) {
	r.mu.Lock()
	c := r.active[e.ID]
	delete(r.active, e.ID)
	r.mu.Unlock()
	started := c != nil
	if c == nil { // ended without a start (e.g. refused before routing)
		c = &activeCall{cdr: CDR{ID: e.ID, Direction: DirInternal, Start: r.at(e.Time)}}
		callAttempts.WithLabelValues(c.cdr.Direction).Inc()
	} else {
		callsActive.WithLabelValues(c.cdr.Direction).Dec()
	}
	cdr := &c.cdr
	cdr.End = r.at(e.Time)
	cdr.Code, cdr.Reason, cdr.EndedBy = e.Code, e.Reason, e.EndedBy
	if cdr.EndedBy == "" {
		cdr.EndedBy = EndedByUnknown
	}
	cdr.A.merge(e.A)
	cdr.B.merge(e.B)
	copy(cdr.Media[:], e.Media)
	if len(e.Media) == 0 && c.stats != nil {
		cdr.Media = c.stats()
	}
	if !cdr.Answer.IsZero() {
		cdr.Duration = cdr.End.Sub(cdr.Answer)
		callDuration.WithLabelValues(cdr.Direction).Observe(cdr.Duration.Seconds())
	}
	callsTotal.WithLabelValues(cdr.Direction, cdr.Result()).Inc()
	countMedia(cdr.Media)
	if r.hist != nil {
		r.hist.CallEnded(historyCall(cdr, started))
	}
	if r.traces != nil {
		r.traces.End(cdr.ID, cdr.Failed())
	}
	r.w.add(cdr)
}

// Active returns the calls in progress, oldest first, with live media
// counters where the SIP layer attached them.
func (r *Recorder) Active() []CDR {
	r.mu.Lock()
	calls := make([]*activeCall, 0, len(r.active))
	for _, c := range r.active {
		calls = append(calls, c)
	}
	out := make([]CDR, 0, len(calls))
	fns := make([]func() [2]MediaLeg, 0, len(calls))
	for _, c := range calls {
		out = append(out, c.cdr)
		fns = append(fns, c.stats)
	}
	r.mu.Unlock()
	now := r.now()
	for i := range out { // outside the lock: stats may take the media engine's locks
		if fns[i] != nil {
			out[i].Media = fns[i]()
		}
		if !out[i].Answer.IsZero() {
			out[i].Duration = now.Sub(out[i].Answer)
		}
	}
	slices.SortFunc(out, func(a, b CDR) int { return a.Start.Compare(b.Start) })
	return out
}

// cdrTimeLayout is RFC 3339 with a fixed nine-digit fraction, so that keys
// sort in time order (time.RFC3339Nano drops trailing zeros and would not).
const cdrTimeLayout = "2006-01-02T15:04:05.000000000Z07:00"

const cdrPrefix = "cdr/"

// CDRKey is the store key of a record: cdr/<start, UTC>-<id>.
func CDRKey(c *CDR) string {
	return cdrPrefix + c.Start.UTC().Format(cdrTimeLayout) + "-" + c.ID
}

// Write stores a record.
func (r *Recorder) Write(ctx context.Context, c *CDR) error {
	b, err := json.Marshal(c)
	if err == nil {
		err = r.st.Put(ctx, CDRKey(c), b)
	}
	return r.countWrite(c, err)
}

func (r *Recorder) countWrite(c *CDR, err error) error {
	if err != nil {
		cdrWrites.WithLabelValues("error").Inc()
		return fmt.Errorf("write call record %s: %w", c.ID, err)
	}
	cdrWrites.WithLabelValues("ok").Inc()
	r.notify(c)
	return nil
}

// reportWrite counts and logs the outcome of a queued record's write.
func (r *Recorder) reportWrite(c *CDR, err error) {
	if err := r.countWrite(c, err); err != nil {
		r.log.Error("call record not written", "call_id", c.ID, "err", err)
	}
}

// historyCall is what the dashboard's history keeps of an ended call.
func historyCall(cdr *CDR, started bool) history.Call {
	h := history.Call{End: cdr.End, Started: started, Answered: !cdr.Answer.IsZero(),
		Failed: cdr.Failed(), Talk: cdr.Duration}
	for _, m := range cdr.Media {
		h.Packets += m.PacketsIn
		h.Lost += m.Lost
		if m.PacketsIn > 0 {
			h.Jitters = append(h.Jitters, m.JitterMs)
		}
	}
	return h
}
