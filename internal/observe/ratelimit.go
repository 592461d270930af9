package observe

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// LimitedLogger logs bad-traffic events at a bounded rate: at most burst
// lines per interval for each key; the rest are counted and summarised in the
// next line that gets through.
type LimitedLogger struct {
	log      *slog.Logger
	interval time.Duration
	burst    int

	mu   sync.Mutex
	keys map[string]*limitState
}

type limitState struct {
	start      time.Time
	n          int
	suppressed int
}

// NewLimitedLogger returns a logger allowing burst lines per interval per key.
func NewLimitedLogger(l *slog.Logger, interval time.Duration, burst int) *LimitedLogger {
	return &LimitedLogger{log: l, interval: interval, burst: burst, keys: make(map[string]*limitState)}
}

// Warn logs msg under key unless the key is over its budget.
func (ll *LimitedLogger) Warn(key, msg string, args ...any) {
	now := time.Now()
	ll.mu.Lock()
	st := ll.keys[key]
	if st == nil {
		if len(ll.keys) > 10000 { // bound memory under floods of distinct keys
			clear(ll.keys)
		}
		st = &limitState{start: now}
		ll.keys[key] = st
	}
	if now.Sub(st.start) >= ll.interval {
		st.start, st.n = now, 0
	}
	st.n++
	if st.n > ll.burst {
		st.suppressed++
		ll.mu.Unlock()
		return
	}
	suppressed := st.suppressed
	st.suppressed = 0
	ll.mu.Unlock()
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	ll.log.Log(context.Background(), slog.LevelWarn, msg, args...)
}
