package observe

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/store"
)

func TestServiceApply(t *testing.T) {
	var out bytes.Buffer
	log, lv := NewLoggerTo(&out, "json", "info")
	s := New(store.NewMemory(), log, lv)
	defer s.Close()
	cfg := config.Default()
	cfg.Observe.LogLevel = "debug"
	cfg.Observe.TraceBufferCalls = 2
	if err := s.Apply(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	CallLogger(log, "c42").Debug("routing")
	if !strings.Contains(out.String(), `"call_id":"c42"`) || !strings.Contains(out.String(), `"level":"DEBUG"`) {
		t.Fatalf("debug line with call_id missing: %s", out.String())
	}
	for i := range 3 {
		traceAll(s.Traces, testCall(string(rune('a'+i)), t0.Add(time.Duration(i)*time.Second), "1", "2", false))
	}
	if n := len(s.Traces.List(CallFilter{})); n != 2 {
		t.Errorf("ring holds %d calls, want 2", n)
	}

	cfg.Observe.LogLevel = "loud"
	if err := s.Apply(context.Background(), cfg); err == nil {
		t.Fatal("bad level accepted")
	}
	if lv.Level() != slog.LevelDebug {
		t.Error("a failed apply changed the level")
	}
	cfg.Observe.LogLevel = "warn"
	cfg.Observe.TraceCalls = false
	if err := s.Apply(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	log.Info("hidden")
	if out.Len() != 0 {
		t.Errorf("info logged at level warn: %s", out.String())
	}
	traceAll(s.Traces, testCall("off", t0.Add(time.Hour), "1", "2", false))
	if _, ok := s.Traces.Lookup("off"); ok {
		t.Error("trace_calls=false still stored a call")
	}
}

func TestStatusSources(t *testing.T) {
	s := New(store.NewMemory(), nil, nil)
	s.Sources.Register(StatusSource{Kind: StatusPeers, Status: func(context.Context) (any, error) {
		return []string{"trunk up"}, nil
	}})
	if got := s.Sources.Kinds(); strings.Join(got, ",") != "calls,peers" {
		t.Fatalf("kinds %v", got)
	}
	s.Recorder.CallStarted(CallStart{ID: "x", Direction: DirInbound})
	src, _ := s.Sources.Get(StatusCalls)
	v, err := src.Status(context.Background())
	if calls, ok := v.([]CDR); err != nil || !ok || len(calls) != 1 || calls[0].ID != "x" {
		t.Fatalf("calls status %v %v", v, err)
	}
	s.Sources.Unregister(StatusPeers)
	if _, ok := s.Sources.Get(StatusPeers); ok {
		t.Fatal("unregistered source still there")
	}
}

func TestParseLevel(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want slog.Level
		ok   bool
	}{{"debug", slog.LevelDebug, true}, {"INFO", slog.LevelInfo, true}, {"", slog.LevelInfo, true},
		{"warning", slog.LevelWarn, true}, {"error", slog.LevelError, true}, {"trace", slog.LevelInfo, false}} {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseLevel(tt.in)
			if got != tt.want || (err == nil) != tt.ok {
				t.Errorf("ParseLevel(%q) = %v, %v", tt.in, got, err)
			}
		})
	}
}
