package observe

import (
	"hash/maphash"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Bounds of one call's trace: a call that keeps sending (INFO floods,
// endless re-INVITEs) must not grow without limit.
const (
	maxMessagesPerCall = 1000
	maxBytesPerCall    = 4 << 20
	// maxTraceBytes bounds the SIP text of all traced calls together, so
	// that a full ring of flooding calls cannot take the unit's memory.
	maxTraceBytes = 256 << 20
	numShards     = 32
)

// Traces keeps the cleartext SIP of the last calls in memory: a ring of the
// newest calls (SetLimits), and calls that failed for a while longer. It
// implements Tracer and is safe for concurrent use.
//
// The hot path (TraceSIP on a known call) takes a shard's read lock and the
// call's own lock; the ring lock is taken only when a call is first seen.
type Traces struct {
	seed    maphash.Seed
	shards  [numShards]traceShard
	enabled atomic.Bool
	now     func() time.Time

	// orderMu guards order, failed and the limits. Lock order: orderMu,
	// then a shard, then a call.
	orderMu    sync.Mutex
	order      []string      // ids in the ring, oldest first
	failed     []failedEntry // failed calls kept after leaving the ring
	limit      int
	failedKeep time.Duration

	total atomic.Int64 // bytes of SIP text held by all calls
	// countCalls makes traced calls feed the call metrics (attempts, calls
	// active) while the SIP layer does not report calls to the Recorder.
	countCalls atomic.Bool

	// onEnd, when set, is called (outside every lock) when a message ends a
	// call: a final failure sent to the caller, or the first 200 to BYE.
	onEnd func(id string)

	// tap gets every message too, stored or not (HEP export).
	tap atomic.Pointer[Tracer]
}

type traceShard struct {
	mu    sync.RWMutex
	calls map[string]*callTrace
}

type failedEntry struct {
	id    string
	until time.Time
}

// callTrace is one call's messages and what is known about it.
type callTrace struct {
	mu       sync.Mutex
	id       string
	msgs     []tracedMsg
	bytes    int
	dropped  int
	firstCID string // SIP Call-ID of the first message: the caller's leg
	sum      CallSummary
	aResult  bool // the result came from the caller's leg
	removed  bool // evicted: late messages are not stored
	counted  bool // counted in palisade_calls_active (until it ends or is evicted)
}

// tracedMsg is one stored message: what TraceSIP was given, less what is
// the same for the whole call (its id) and what can be read again from Raw
// when someone looks (the Head). A call's messages were the largest
// allocation of a loaded unit when every message carried its Head (336
// bytes a message, grown by appends; bench/sip/RESULTS.md, run 9).
type tracedMsg struct {
	Leg       string
	Transport string
	Local     netip.AddrPort
	Remote    netip.AddrPort
	Time      time.Time
	Raw       []byte // owned: never written after it is stored
	Dir       Direction
}

func newTracedMsg(m SIPMessage) tracedMsg {
	return tracedMsg{Leg: m.Leg, Transport: m.Transport, Local: m.Local, Remote: m.Remote, Time: m.Time, Raw: m.Raw, Dir: m.Dir}
}

// head reads the message's start line and summary headers again; the
// strings point into Raw, which never changes.
func (m *tracedMsg) head() Head { return readHead(m.Raw, true) }

// msgsPerCall is the room a call's trace starts with: a call that is set
// up and hung up is 14 messages through a B2BUA (INVITE, 100, 180, 200,
// ACK, BYE, 200 on each leg), so it needs one allocation, not five.
const msgsPerCall = 16

// CallSummary describes one traced call for the call list and its search.
type CallSummary struct {
	ID        string    `json:"id"`
	Direction string    `json:"direction"` // from the first message's leg: inside → outbound, outside → inbound
	Start     time.Time `json:"start"`
	Answer    time.Time `json:"answer,omitzero"` // the 200 sent to the caller
	Last      time.Time `json:"last"`
	From      string    `json:"from"` // user part of the caller's From
	To        string    `json:"to"`   // user part of the caller's To
	CallIDs   []string  `json:"call_ids"`
	Legs      []string  `json:"legs"`
	Result    int       `json:"result,omitempty"` // final status of the call's INVITE
	Reason    string    `json:"reason,omitempty"`
	Ended     bool      `json:"ended"`
	Failed    bool      `json:"failed"`
	Messages  int       `json:"messages"`
	Dropped   int       `json:"dropped,omitempty"` // messages over the per-call bound
}

// NewTraces returns a trace store keeping calls calls (and failed calls for
// failedKeep after they leave the ring).
func NewTraces(calls int, failedKeep time.Duration) *Traces {
	t := &Traces{seed: maphash.MakeSeed(), now: time.Now}
	for i := range t.shards {
		t.shards[i].calls = make(map[string]*callTrace)
	}
	t.enabled.Store(true)
	t.SetLimits(calls, failedKeep)
	return t
}

// SetEnabled turns storing on or off; metrics are counted either way.
func (t *Traces) SetEnabled(on bool) { t.enabled.Store(on) }

// SetLimits changes the ring size and how long failed calls stay; a smaller
// ring drops its oldest calls at once.
func (t *Traces) SetLimits(calls int, failedKeep time.Duration) {
	if calls < 1 {
		calls = 1
	}
	t.orderMu.Lock()
	defer t.orderMu.Unlock()
	t.limit, t.failedKeep = calls, failedKeep
	t.evictLocked()
}

func (t *Traces) shard(id string) *traceShard {
	return &t.shards[maphash.String(t.seed, id)%numShards]
}

// SetTap hands every message TraceSIP receives to tap as well, whether the
// ring keeps it or not; nil removes the tap. tap must not block.
func (t *Traces) SetTap(tap Tracer) {
	if tap == nil {
		t.tap.Store(nil)
		return
	}
	t.tap.Store(&tap)
}

// TraceSIP stores a copy of m under its call. It never blocks on I/O.
func (t *Traces) TraceSIP(m SIPMessage) {
	store := t.enabled.Load() && m.CallID != ""
	if store && !m.Owned {
		m.Raw, m.Owned = slices.Clone(m.Raw), true
	}
	// The summary reads strings out of the stored copy without copying
	// them again (it was a tenth of the tracing cost under load).
	var head Head
	if m.Head != nil {
		head = *m.Head
	} else {
		head = readHead(m.Raw, m.Owned)
	}
	countSIP(m, head)
	if m.Time.IsZero() {
		m.Time = t.now()
	}
	if tap := t.tap.Load(); tap != nil {
		(*tap).TraceSIP(m)
	}
	if !store {
		return
	}
	ct := t.get(m.CallID)
	if ct == nil {
		ct = t.create(m.CallID)
	}
	if ct.add(newTracedMsg(m), head, t) && t.onEnd != nil {
		t.onEnd(m.CallID)
	}
}

func (t *Traces) get(id string) *callTrace {
	s := t.shard(id)
	s.mu.RLock()
	ct := s.calls[id]
	s.mu.RUnlock()
	return ct
}

// create adds a call to the ring (or returns the one another goroutine
// added first) and evicts the oldest calls over the limit.
func (t *Traces) create(id string) *callTrace {
	t.orderMu.Lock()
	defer t.orderMu.Unlock()
	s := t.shard(id)
	s.mu.Lock()
	ct := s.calls[id]
	if ct == nil {
		ct = &callTrace{id: id}
		s.calls[id] = ct
		t.order = append(t.order, id)
	}
	s.mu.Unlock()
	t.evictLocked()
	return ct
}

// evictLocked drops calls beyond the ring; failed ones move to the failed
// list until their time is up. orderMu must be held.
func (t *Traces) evictLocked() {
	now := t.now()
	for len(t.order) > t.limit {
		id := t.order[0]
		t.order[0] = ""
		t.order = t.order[1:]
		ct := t.get(id)
		if ct == nil {
			continue
		}
		ct.mu.Lock()
		failed, last := ct.sum.Failed, ct.sum.Last
		ct.mu.Unlock()
		if failed && t.failedKeep > 0 && now.Before(last.Add(t.failedKeep)) {
			t.failed = append(t.failed, failedEntry{id: id, until: last.Add(t.failedKeep)})
			continue
		}
		t.remove(id)
	}
	// The failed list is bounded like the ring, and expires.
	for len(t.failed) > 0 && (len(t.failed) > t.limit || !now.Before(t.failed[0].until)) {
		t.remove(t.failed[0].id)
		t.failed = t.failed[1:]
	}
	if cap(t.order) > 2*t.limit+64 { // let the queue's backing array shrink
		t.order = slices.Clone(t.order)
	}
}

func (t *Traces) remove(id string) {
	s := t.shard(id)
	s.mu.Lock()
	ct := s.calls[id]
	delete(s.calls, id)
	s.mu.Unlock()
	if ct != nil {
		ct.mu.Lock()
		ct.removed = true // a message still on its way must not count
		t.total.Add(-int64(ct.bytes))
		ct.uncount()
		ct.mu.Unlock()
	}
}

// add stores m and reports whether it ended the call.
func (ct *callTrace) add(m tracedMsg, head Head, t *Traces) (ended bool) {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	if ct.removed {
		return false
	}
	s := &ct.sum
	wasEnded := s.Ended
	defer func() {
		ended = s.Ended && !wasEnded
		if ended {
			ct.uncount()
		}
	}()
	if len(ct.msgs) == 0 && s.ID == "" {
		s.ID, s.Start, s.Direction = ct.id, m.Time, directionOf(m.Leg)
		ct.firstCID = head.CallID
		s.From, s.To = head.FromUser, head.ToUser
		if t.countCalls.Load() {
			ct.counted = true
			callAttempts.WithLabelValues(s.Direction).Inc()
			callsActive.WithLabelValues(s.Direction).Inc()
		}
	}
	if m.Time.After(s.Last) {
		s.Last = m.Time
	}
	if head.CallID != "" && !slices.Contains(s.CallIDs, head.CallID) {
		s.CallIDs = append(s.CallIDs, head.CallID)
	}
	if m.Leg != "" && !slices.Contains(s.Legs, m.Leg) {
		s.Legs = append(s.Legs, m.Leg)
	}
	ct.result(m, head)
	if len(ct.msgs) >= maxMessagesPerCall || ct.bytes+len(m.Raw) > maxBytesPerCall ||
		t.total.Load()+int64(len(m.Raw)) > maxTraceBytes {
		ct.dropped++
		s.Dropped = ct.dropped
		traceDropped.Inc()
		return ended
	}
	if ct.msgs == nil {
		ct.msgs = make([]tracedMsg, 0, msgsPerCall)
	}
	ct.msgs = append(ct.msgs, m)
	ct.bytes += len(m.Raw)
	t.total.Add(int64(len(m.Raw)))
	s.Messages = len(ct.msgs)
	return ended
}

// uncount takes an ended or evicted call out of the active calls. ct.mu
// must be held.
func (ct *callTrace) uncount() {
	if ct.counted {
		ct.counted = false
		callsActive.WithLabelValues(ct.sum.Direction).Dec()
	}
}

// result follows the call's outcome: the first final answer to INVITE the
// unit sent on the caller's leg is the call's result; until there is one,
// the latest final INVITE answer seen on any leg stands in for it.
func (ct *callTrace) result(m tracedMsg, h Head) {
	s := &ct.sum
	if h.Status >= 200 && h.Method == "INVITE" && !ct.aResult {
		s.Result, s.Reason = h.Status, h.Reason
		if h.CallID == ct.firstCID && m.Dir == Sent {
			ct.aResult = true
			if h.Status < 300 {
				s.Answer = m.Time
			}
			if h.Status >= 300 {
				s.Ended = true
			}
		}
		s.Failed = s.Result >= 400
	}
	if h.Status == 200 && h.Method == "BYE" {
		s.Ended = true
	}
}

// directionOf names a call's direction by the leg it came in on.
func directionOf(leg string) string {
	switch leg {
	case "inside":
		return DirOutbound
	case "outside":
		return DirInbound
	}
	return DirInternal
}

// End records the end of a call from the SIP layer's point of view
// (abnormal: ended by a timeout, an error or media inactivity), which keeps
// its trace longer when it failed.
func (t *Traces) End(id string, abnormal bool) {
	ct := t.get(id)
	if ct == nil {
		return
	}
	ct.mu.Lock()
	ct.sum.Ended = true
	ct.uncount()
	if abnormal {
		ct.sum.Failed = true
	}
	ct.mu.Unlock()
}

// CallFilter selects calls in List. Zero fields match everything.
type CallFilter struct {
	Number string    // part of the From or To user
	CallID string    // the unit's call id or any leg's SIP Call-ID
	Since  time.Time // calls with messages at or after
	Until  time.Time // calls that started before
	Result string    // "failed", "ok", a code ("486") or a class ("4xx")
	Active bool      // only calls not ended
	Ended  bool      // only ended calls
	Limit  int       // newest first; 0 = all
}

func (f CallFilter) match(s *CallSummary) bool {
	switch {
	case f.Number != "" && !strings.Contains(s.From, f.Number) && !strings.Contains(s.To, f.Number):
		return false
	case f.CallID != "" && s.ID != f.CallID && !slices.Contains(s.CallIDs, f.CallID):
		return false
	case !f.Since.IsZero() && s.Last.Before(f.Since):
		return false
	case !f.Until.IsZero() && !s.Start.Before(f.Until):
		return false
	case f.Active && s.Ended, f.Ended && !s.Ended:
		return false
	}
	return matchResult(f.Result, s)
}

func matchResult(want string, s *CallSummary) bool {
	code := ""
	if s.Result != 0 {
		code = itoa3(s.Result)
	}
	switch want {
	case "":
		return true
	case "failed":
		return s.Failed
	case "ok":
		return !s.Failed
	}
	if len(want) == 3 && strings.HasSuffix(want, "xx") {
		return code != "" && code[0] == want[0]
	}
	return code == want
}

func itoa3(n int) string {
	return string([]byte{byte('0' + n/100%10), byte('0' + n/10%10), byte('0' + n%10)})
}

// calls returns every stored call, one shard lock at a time.
func (t *Traces) calls() []*callTrace {
	var out []*callTrace
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.RLock()
		for _, ct := range s.calls {
			out = append(out, ct)
		}
		s.mu.RUnlock()
	}
	return out
}

// List returns the summaries of the calls that match f, newest first.
func (t *Traces) List(f CallFilter) []CallSummary {
	var out []CallSummary
	for _, ct := range t.calls() {
		sum := ct.summary()
		if f.match(&sum) {
			out = append(out, sum)
		}
	}
	return newestFirst(out, func(c *CallSummary) (time.Time, string) { return c.Start, c.ID }, f.Limit)
}

// newestFirst sorts calls by start time, newest first (then by id), and
// keeps at most limit of them (0: all).
func newestFirst[T any](calls []T, key func(*T) (time.Time, string), limit int) []T {
	slices.SortFunc(calls, func(a, b T) int {
		ta, ia := key(&a)
		tb, ib := key(&b)
		if c := tb.Compare(ta); c != 0 {
			return c
		}
		return strings.Compare(ia, ib)
	})
	if limit > 0 && len(calls) > limit {
		calls = calls[:limit]
	}
	return calls
}

func (ct *callTrace) summary() CallSummary {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	s := ct.sum
	s.CallIDs = slices.Clone(s.CallIDs)
	s.Legs = slices.Clone(s.Legs)
	return s
}

// Lookup finds a call by the unit's id or by any leg's SIP Call-ID.
func (t *Traces) Lookup(id string) (CallSummary, bool) {
	if ct := t.get(id); ct != nil {
		return ct.summary(), true
	}
	if l := t.List(CallFilter{CallID: id, Limit: 1}); len(l) > 0 {
		return l[0], true
	}
	return CallSummary{}, false
}

// Message is one traced SIP message as the API and the diagrams show it.
type Message struct {
	Index     int            `json:"index"` // 1-based, in time order
	Time      time.Time      `json:"time"`
	Leg       string         `json:"leg"`
	Direction string         `json:"direction"` // "in" (received) or "out" (sent)
	Transport string         `json:"transport"`
	Local     netip.AddrPort `json:"local"`
	Remote    netip.AddrPort `json:"remote"`
	Label     string         `json:"label"` // method or status
	SDP       bool           `json:"sdp"`   // carries an SDP offer or answer
	Method    string         `json:"method"`
	Status    int            `json:"status,omitempty"`
	SIPCallID string         `json:"sip_call_id"`
	Text      string         `json:"text"`
}

// Messages returns the messages of one call (unit id or SIP Call-ID) in
// time order.
func (t *Traces) Messages(id string) ([]Message, bool) {
	sum, ok := t.Lookup(id)
	if !ok {
		return nil, false
	}
	ct := t.get(sum.ID)
	if ct == nil {
		return nil, false
	}
	ct.mu.Lock()
	msgs := slices.Clone(ct.msgs)
	ct.mu.Unlock()
	return toMessages(msgs), true
}

func toMessages(msgs []tracedMsg) []Message {
	// Both legs' messages arrive from different goroutines; sort by time,
	// keeping arrival order for equal times.
	slices.SortStableFunc(msgs, func(a, b tracedMsg) int { return a.Time.Compare(b.Time) })
	out := make([]Message, len(msgs))
	for i := range msgs {
		m := &msgs[i]
		dir := "in"
		if m.Dir == Sent {
			dir = "out"
		}
		h := m.head()
		out[i] = Message{
			Index: i + 1, Time: m.Time, Leg: m.Leg, Direction: dir, Transport: m.Transport,
			Local: m.Local, Remote: m.Remote, Label: h.Label(), SDP: h.SDP, Method: h.Method,
			Status: h.Status, SIPCallID: h.CallID, Text: string(m.Raw),
		}
	}
	return out
}

// Window returns the messages of every stored call that fall in
// [since, until) (zero until = now), in time order; for pcap export.
func (t *Traces) Window(since, until time.Time) []Message {
	var all []tracedMsg
	for _, ct := range t.calls() {
		ct.mu.Lock()
		for _, m := range ct.msgs {
			if !m.Time.Before(since) && (until.IsZero() || m.Time.Before(until)) {
				all = append(all, m)
			}
		}
		ct.mu.Unlock()
	}
	return toMessages(all)
}
