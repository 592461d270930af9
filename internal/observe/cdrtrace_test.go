package observe

import (
	"context"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/store"
)

func TestRecordFromTrace(t *testing.T) {
	tests := []struct {
		name    string
		busy    bool
		code    int
		endedBy string
		talk    time.Duration
	}{
		// testCall: 200 OK to the caller at +7 ms, BYE from the caller at +10 ms.
		{"answered, caller hangs up", false, 200, EndedByCaller, 3 * time.Millisecond},
		{"busy", true, 486, EndedByCallee, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := NewTraces(10, time.Hour)
			traceAll(tr, testCall("c1", t0, "1001", "4687", tt.busy))
			c, ok := tr.recordFromTrace("c1")
			if !ok {
				t.Fatal("no record")
			}
			if c.Code != tt.code || c.EndedBy != tt.endedBy || c.Duration != tt.talk || c.Direction != DirOutbound ||
				!c.Start.Equal(t0) || c.A.CallID != "c1-a@10.0.0.10" || c.B.CallID != "c1-b@palisade" ||
				c.A.From != "sip:1001@example.com" || c.B.Remote != trunkAddr || c.B.Transport != "tls" || c.A.Interface != "inside" {
				t.Errorf("record %+v", c)
			}
		})
	}
}

func TestServiceWritesRecordsFromTraces(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory()
	s := New(st, nil, nil)
	traceAll(s.Traces, testCall("c1", time.Now(), "1001", "4687", false))
	traceAll(s.Traces, testCall("c2", time.Now(), "1001", "4687", true))
	s.Close() // waits for the writes
	cdrs, _, _ := ListCDRs(ctx, st, time.Time{})
	if len(cdrs) != 2 {
		t.Fatalf("%d records from traces, want 2", len(cdrs))
	}

	// Once the SIP layer reports calls, traces make no records.
	st = store.NewMemory()
	s = New(st, nil, nil)
	s.Recorder.CallStarted(CallStart{ID: "r1"})
	traceAll(s.Traces, testCall("c3", time.Now(), "1001", "4687", false))
	s.Close()
	if cdrs, _, _ := ListCDRs(ctx, st, time.Time{}); len(cdrs) != 0 {
		t.Fatalf("records %+v; the recorder's calls only were expected", cdrs)
	}
}

func TestStatusCallsFromTraces(t *testing.T) {
	s := New(store.NewMemory(), nil, nil)
	defer s.Close()
	traceAll(s.Traces, testCall("c1", time.Now(), "1001", "4687", false)[:9]) // answered and ACKed
	traceAll(s.Traces, testCall("c2", time.Now(), "1001", "4687", true))      // ended
	src, _ := s.Sources.Get(StatusCalls)
	v, _ := src.Status(context.Background())
	calls := v.([]CDR)
	if len(calls) != 1 || calls[0].ID != "c1" || calls[0].Answer.IsZero() || calls[0].B.CallID != "c1-b@palisade" || !calls[0].End.IsZero() {
		t.Fatalf("calls in progress %+v", calls)
	}
}

func TestTracedCallsFeedCallMetrics(t *testing.T) {
	s := New(store.NewMemory(), nil, nil)
	defer s.Close()
	active := func() float64 { return value(t, callsActive.WithLabelValues(DirOutbound)) }
	attempts := func() float64 { return value(t, callAttempts.WithLabelValues(DirOutbound)) }
	a0, n0 := active(), attempts()
	call := testCall("m1", time.Now(), "1001", "4687", false)
	traceAll(s.Traces, call[:8]) // answered
	if active()-a0 != 1 || attempts()-n0 != 1 {
		t.Fatalf("during the call: active %+v, attempts %+v", active()-a0, attempts()-n0)
	}
	traceAll(s.Traces, call[8:]) // ACK, BYE, 200s
	if active() != a0 || attempts()-n0 != 1 {
		t.Fatalf("after the call: active %+v, attempts %+v", active()-a0, attempts()-n0)
	}
	// A call pushed out of the ring before it ended leaves the gauge too.
	s.Traces.SetLimits(1, 0)
	traceAll(s.Traces, testCall("m2", time.Now(), "1", "2", false)[:3])
	traceAll(s.Traces, testCall("m3", time.Now(), "1", "2", false)[:3])
	if got := active() - a0; got != 1 {
		t.Fatalf("with m2 evicted and m3 ringing, %v calls active", got)
	}
	// Once the SIP layer reports calls, traces stop counting them.
	s.Recorder.CallStarted(CallStart{ID: "r1", Direction: DirInbound})
	traceAll(s.Traces, testCall("m4", time.Now(), "1", "2", false)[:3])
	if got := attempts() - n0; got != 3 {
		t.Fatalf("attempts %v, want 3 (m1, m2, m3)", got)
	}
}
