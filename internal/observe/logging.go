package observe

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// NewLogger returns the unit's logger writing to stderr in format "text" or
// "json" at level (debug, info, warn, error), and the LevelVar that changes
// its level at run time (Service.Apply sets it from observe.log_level).
func NewLogger(format, level string) (*slog.Logger, *slog.LevelVar) {
	return NewLoggerTo(os.Stderr, format, level)
}

// NewLoggerTo is NewLogger writing to w. An unknown level means info and an
// unknown format means text, so that a logger is always there.
func NewLoggerTo(w io.Writer, format, level string) (*slog.Logger, *slog.LevelVar) {
	lv := new(slog.LevelVar)
	if l, err := ParseLevel(level); err == nil {
		lv.Set(l)
	}
	opts := &slog.HandlerOptions{Level: lv}
	var h slog.Handler
	if strings.EqualFold(format, "json") {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(h), lv
}

// ParseLevel reads debug, info, warn (warning) or error; "" means info.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return slog.LevelInfo, fmt.Errorf("unknown log level %q (debug, info, warn, error)", s)
}

// CallLogger returns base with the call's id on every line (key call_id),
// the key every call's log lines are searched by.
func CallLogger(base *slog.Logger, callID string) *slog.Logger {
	if base == nil {
		base = slog.Default()
	}
	return base.With(slog.String("call_id", callID))
}
