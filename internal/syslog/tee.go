package syslog

import (
	"context"
	"log/slog"
	"sync/atomic"
)

// active is the service that log records go to (the unit's; one per
// process), nil while no collector takes logs.
var active atomic.Pointer[Service]

// Tee returns a handler that passes every record to next and, while a
// collector takes logs, also to the syslog service. Wrap the unit's
// handler with it once, where the logger is made.
func Tee(next slog.Handler) slog.Handler {
	return &tee{next: next, text: slog.NewTextHandler(lineSink{}, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{} // the syslog header has the time
			}
			return a
		},
	})}
}

type tee struct {
	next slog.Handler
	text slog.Handler // formats the record as the MSG, one line
}

func (h *tee) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *tee) Handle(ctx context.Context, r slog.Record) error {
	if s := active.Load(); s != nil && r.Level >= s.cur.Load().minLevel {
		_ = h.text.Handle(ctx, r) // into lineSink
	}
	return h.next.Handle(ctx, r)
}

func (h *tee) WithAttrs(as []slog.Attr) slog.Handler {
	return &tee{next: h.next.WithAttrs(as), text: h.text.WithAttrs(as)}
}

func (h *tee) WithGroup(name string) slog.Handler {
	return &tee{next: h.next.WithGroup(name), text: h.text.WithGroup(name)}
}

// lineSink receives each formatted record in one Write.
type lineSink struct{}

func (lineSink) Write(p []byte) (int, error) {
	if s := active.Load(); s != nil {
		s.logLine(append([]byte(nil), p...))
	}
	return len(p), nil
}
