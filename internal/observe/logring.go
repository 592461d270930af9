package observe

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// LogRecord is one line of the unit's log as the web admin's Log page shows
// it.
type LogRecord struct {
	Time   time.Time
	Level  slog.Level
	Msg    string
	Attrs  string // key=value pairs
	CallID string // the call_id attribute, if any (linked to the call's flow)
	Peer   string // the peer attribute, if any
}

// LogRingSize is how many records the unit keeps for the web admin's Log
// page.
const LogRingSize = 2000

// LogRing keeps the newest records of the unit's log (bounded: the oldest
// are dropped) for the web admin's Log page. The composition root wraps the
// unit's logger with Handler and hands the ring to the admin API; it is
// safe for concurrent use.
type LogRing struct {
	mu   sync.Mutex
	recs []LogRecord
	next int // where the next record goes once the ring is full
}

// NewLogRing returns a ring keeping the newest size records.
func NewLogRing(size int) *LogRing {
	return &LogRing{recs: make([]LogRecord, 0, max(size, 1))}
}

func (l *LogRing) add(r LogRecord) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.recs) < cap(l.recs) {
		l.recs = append(l.recs, r)
		return
	}
	l.recs[l.next] = r
	l.next = (l.next + 1) % len(l.recs)
}

// Newest returns up to n records at or above min, newest first.
func (l *LogRing) Newest(n int, min slog.Level) []LogRecord {
	return l.Find(n, LogFilter{Level: min})
}

// LogFilter selects log records; zero fields match everything.
type LogFilter struct {
	Level    slog.Level
	Text     string // in the message or the details, any case
	Peer     string
	CallID   string
	From, To time.Time
}

// Match reports whether f selects r.
func (f LogFilter) Match(r LogRecord) bool {
	if r.Level < f.Level || !f.From.IsZero() && r.Time.Before(f.From) || !f.To.IsZero() && r.Time.After(f.To) {
		return false
	}
	if f.Peer != "" && !strings.EqualFold(r.Peer, f.Peer) {
		return false
	}
	if f.CallID != "" && r.CallID != f.CallID && !strings.Contains(r.Attrs, f.CallID) {
		return false
	}
	if f.Text != "" {
		t := strings.ToLower(f.Text)
		if !strings.Contains(strings.ToLower(r.Msg), t) && !strings.Contains(strings.ToLower(r.Attrs), t) {
			return false
		}
	}
	return true
}

// Find returns up to n records that f matches, newest first.
func (l *LogRing) Find(n int, f LogFilter) []LogRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []LogRecord
	for i := 0; i < len(l.recs) && len(out) < n; i++ {
		j := (l.next - 1 - i + 2*len(l.recs)) % len(l.recs)
		if r := l.recs[j]; f.Match(r) {
			out = append(out, r)
		}
	}
	return out
}

// Handler returns a handler that passes every record to next and keeps a
// copy in the ring. The unit wraps its logger with it.
func (l *LogRing) Handler(next slog.Handler) slog.Handler { return &teeHandler{ring: l, next: next} }

type teeHandler struct {
	ring   *LogRing
	next   slog.Handler
	attrs  string // pre-formatted attributes from WithAttrs
	prefix string // group prefix from WithGroup
	callID string // call_id and peer from WithAttrs (a per-call logger)
	peer   string
}

// noteKey returns a's value when its key is key, else cur.
func noteKey(a slog.Attr, key, cur string) string {
	if a.Key == key {
		return a.Value.Resolve().String()
	}
	return cur
}

func (h *teeHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *teeHandler) Handle(ctx context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(h.attrs)
	callID, peer := h.callID, h.peer
	r.Attrs(func(a slog.Attr) bool {
		writeAttr(&b, h.prefix, a)
		callID, peer = noteKey(a, "call_id", callID), noteKey(a, "peer", peer)
		return true
	})
	h.ring.add(LogRecord{Time: r.Time, Level: r.Level, Msg: r.Message, Attrs: strings.TrimSpace(b.String()), CallID: callID, Peer: peer})
	return h.next.Handle(ctx, r)
}

func (h *teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.attrs)
	callID, peer := h.callID, h.peer
	for _, a := range as {
		writeAttr(&b, h.prefix, a)
		callID, peer = noteKey(a, "call_id", callID), noteKey(a, "peer", peer)
	}
	return &teeHandler{ring: h.ring, next: h.next.WithAttrs(as), attrs: b.String(), prefix: h.prefix, callID: callID, peer: peer}
}

func (h *teeHandler) WithGroup(name string) slog.Handler {
	return &teeHandler{ring: h.ring, next: h.next.WithGroup(name), attrs: h.attrs, prefix: h.prefix + name + ".", callID: h.callID, peer: h.peer}
}

func writeAttr(b *strings.Builder, prefix string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		for _, g := range a.Value.Group() {
			writeAttr(b, prefix+a.Key+".", g)
		}
		return
	}
	v := a.Value.String()
	if strings.ContainsAny(v, " \t\n\"=") {
		v = fmt.Sprintf("%q", v)
	}
	b.WriteString(" " + prefix + a.Key + "=" + v)
}
