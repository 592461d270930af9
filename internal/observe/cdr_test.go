package observe

import (
	"bytes"
	"context"
	"encoding/csv"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/store"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func runCall(r *Recorder, id string, start time.Time, answered bool, code int, endedBy string) {
	r.CallStarted(CallStart{ID: id, Time: start, Direction: DirOutbound,
		A: CallLeg{Interface: "inside", Transport: "udp", From: "sip:1001@pbx", To: "sip:4687@pbx", CallID: id + "-a",
			Remote: netip.MustParseAddrPort("10.0.0.10:5060")}})
	if answered {
		r.CallAnswered(CallAnswer{ID: id, Time: start.Add(2 * time.Second),
			B: CallLeg{Interface: "outside", Transport: "tls", CallID: id + "-b", Remote: netip.MustParseAddrPort("203.0.113.5:5061"), Peer: "trunk"}})
	}
	r.CallEnded(CallEnd{ID: id, Time: start.Add(12 * time.Second), Code: code, Reason: "x", EndedBy: endedBy,
		Media: []MediaLeg{{Codec: "PCMU", PacketsIn: 500, PacketsOut: 499}, {Codec: "PCMU", SRTP: true, Suite: "AES_CM_128_HMAC_SHA1_80", PacketsIn: 499, Lost: 1, JitterMs: 1.25}}})
	r.Flush()
}

func TestCDRRoundTrip(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory()
	r := NewRecorder(st, nil, nil)
	base := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

	activeBefore := value(t, callsActive.WithLabelValues(DirOutbound))
	answeredBefore := value(t, callsTotal.WithLabelValues(DirOutbound, "answered"))
	busyBefore := value(t, callsTotal.WithLabelValues(DirOutbound, "busy"))
	attemptsBefore := value(t, callAttempts.WithLabelValues(DirOutbound))
	packetsBefore := value(t, mediaPackets.WithLabelValues("a", "in"))

	runCall(r, "c1", base, true, 200, EndedByCaller)
	runCall(r, "c2", base.Add(time.Minute), false, 486, EndedByCallee)
	// c3 is still in progress.
	r.CallStarted(CallStart{ID: "c3", Time: base.Add(2 * time.Minute), Direction: DirOutbound})
	r.SetStatsFunc("c3", func() [2]MediaLeg { return [2]MediaLeg{{PacketsIn: 7}} })

	if got := value(t, callsActive.WithLabelValues(DirOutbound)) - activeBefore; got != 1 {
		t.Errorf("active calls changed by %v, want 1", got)
	}
	if got := value(t, callAttempts.WithLabelValues(DirOutbound)) - attemptsBefore; got != 3 {
		t.Errorf("attempts changed by %v, want 3", got)
	}
	if got := value(t, callsTotal.WithLabelValues(DirOutbound, "answered")) - answeredBefore; got != 1 {
		t.Errorf("answered calls changed by %v", got)
	}
	if got := value(t, callsTotal.WithLabelValues(DirOutbound, "busy")) - busyBefore; got != 1 {
		t.Errorf("busy calls changed by %v", got)
	}
	if got := value(t, mediaPackets.WithLabelValues("a", "in")) - packetsBefore; got != 1000 {
		t.Errorf("caller leg's packets in changed by %v, want 2×500", got)
	}

	cdrs, skipped, err := ListCDRs(ctx, st, time.Time{})
	if err != nil || skipped != 0 {
		t.Fatalf("list: %v (skipped %d)", err, skipped)
	}
	if len(cdrs) != 2 || cdrs[0].ID != "c1" || cdrs[1].ID != "c2" {
		t.Fatalf("records %+v", cdrs)
	}
	c1 := cdrs[0]
	if c1.Duration != 10*time.Second || c1.Code != 200 || c1.EndedBy != EndedByCaller || c1.B.Peer != "trunk" ||
		c1.A.Remote.String() != "10.0.0.10:5060" || c1.Media[1].Lost != 1 || !c1.Media[1].SRTP || c1.Result() != "answered" {
		t.Errorf("c1 = %+v", c1)
	}
	if c2 := cdrs[1]; c2.Duration != 0 || !c2.Answer.IsZero() || c2.Result() != "busy" || !c2.Failed() {
		t.Errorf("c2 = %+v", c2)
	}
	since, _, _ := ListCDRs(ctx, st, base.Add(30*time.Second))
	if len(since) != 1 || since[0].ID != "c2" {
		t.Errorf("since: %+v", since)
	}
	act := r.Active()
	if len(act) != 1 || act[0].ID != "c3" || act[0].Media[0].PacketsIn != 7 {
		t.Errorf("active = %+v", act)
	}

	var b bytes.Buffer
	if err := WriteCSV(&b, cdrs); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || !slices.Equal(rows[0], CSVHeader) {
		t.Fatalf("csv rows %v", rows)
	}
	col := func(row []string, name string) string { return row[slices.Index(CSVHeader, name)] }
	if col(rows[1], "id") != "c1" || col(rows[1], "duration_s") != "10.000" || col(rows[1], "b_remote") != "203.0.113.5:5061" ||
		col(rows[1], "start") != "2026-11-25T10:00:00Z" || col(rows[2], "code") != "486" || col(rows[2], "answer") != "" ||
		col(rows[1], "a_jitter_ms") != "0.00" || col(rows[1], "b_jitter_ms") != "1.25" || col(rows[1], "unit") != "" {
		t.Errorf("csv rows %v", rows[1:])
	}
}

func TestCDRKeysSortByTime(t *testing.T) {
	// RFC3339Nano would print .1 after .12; the fixed layout must not.
	a := &CDR{ID: "x", Start: time.Date(2026, 1, 1, 0, 0, 0, 100_000_000, time.UTC)}
	b := &CDR{ID: "x", Start: time.Date(2026, 1, 1, 0, 0, 0, 120_000_000, time.UTC)}
	c := &CDR{ID: "x", Start: time.Date(2026, 1, 1, 1, 0, 0, 0, time.FixedZone("CET", 3600))} // 00:00 UTC
	if !(CDRKey(c) < CDRKey(a) && CDRKey(a) < CDRKey(b)) {
		t.Fatalf("keys out of order: %s %s %s", CDRKey(c), CDRKey(a), CDRKey(b))
	}
}

func TestCDRRetention(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory()
	s := New(st, nil, nil)
	defer s.Close()
	now := time.Now()
	for i, age := range []time.Duration{100 * 24 * time.Hour, 40 * 24 * time.Hour, time.Hour} {
		runCall(s.Recorder, string(rune('a'+i)), now.Add(-age), true, 200, EndedByCaller)
	}
	cfg := config.Default()
	cfg.Observe.CDRRetention = config.Duration(30 * 24 * time.Hour)
	if err := s.Apply(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	n, err := s.Prune(ctx) // Apply also started a prune in the background; either deletes
	if err != nil {
		t.Fatal(err)
	}
	cdrs, _, _ := ListCDRs(ctx, st, time.Time{})
	if len(cdrs) != 1 || cdrs[0].ID != "c" {
		t.Fatalf("after pruning (%d now): %+v", n, cdrs)
	}
	// Retention 0 keeps everything.
	cfg.Observe.CDRRetention = 0
	_ = s.Apply(ctx, cfg)
	runCall(s.Recorder, "old", now.Add(-1000*24*time.Hour), false, 487, EndedByCaller)
	if n, _ := s.Prune(ctx); n != 0 {
		t.Fatalf("retention 0 pruned %d", n)
	}
}

func TestCDRUndecodableSkipped(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory()
	_ = st.Put(ctx, "cdr/2026-01-01T00:00:00.000000000Z-bad", []byte("{"))
	runCall(NewRecorder(st, nil, nil), "good", time.Now(), true, 200, EndedByCaller)
	cdrs, skipped, err := ListCDRs(ctx, st, time.Time{})
	if err != nil || skipped != 1 || len(cdrs) != 1 {
		t.Fatalf("cdrs %d skipped %d err %v", len(cdrs), skipped, err)
	}
}

func TestCDRResult(t *testing.T) {
	ans := time.Now()
	tests := []struct {
		c      CDR
		result string
		failed bool
	}{
		{CDR{Answer: ans, Code: 200, EndedBy: EndedByCaller}, "answered", false},
		{CDR{Answer: ans, Code: 200, EndedBy: EndedByUnit}, "answered", true},
		{CDR{Code: 486}, "busy", true},
		{CDR{Code: 487}, "cancelled", false},
		{CDR{Code: 408}, "no_answer", true},
		{CDR{Code: 403}, "rejected", true},
		{CDR{Code: 503}, "failed", true},
		{CDR{}, "failed", true},
	}
	for _, tt := range tests {
		t.Run(tt.result, func(t *testing.T) {
			if got := tt.c.Result(); got != tt.result {
				t.Errorf("Result() = %s, want %s", got, tt.result)
			}
			if got := tt.c.Failed(); got != tt.failed {
				t.Errorf("Failed() = %v, want %v", got, tt.failed)
			}
		})
	}
}

func TestRecorderMarksFailedTrace(t *testing.T) {
	tr := NewTraces(1, time.Hour)
	r := NewRecorder(store.NewMemory(), tr, nil)
	traceAll(tr, testCall("c1", time.Now(), "1", "2", false)[:8])
	runCall(r, "c1", time.Now(), true, 200, EndedByUnit) // e.g. media inactivity
	traceAll(tr, testCall("c2", time.Now(), "1", "2", false))
	if s, ok := tr.Lookup("c1"); !ok || !s.Failed || !s.Ended {
		t.Fatalf("c1 summary %+v (kept %v)", s, ok)
	}
}

// value reads a counter or gauge.
func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	switch {
	case d.Counter != nil:
		return d.Counter.GetValue()
	case d.Gauge != nil:
		return d.Gauge.GetValue()
	}
	t.Fatal("not a counter or gauge")
	return 0
}

func TestCSVSafe(t *testing.T) {
	for in, want := range map[string]string{
		"+4687123": "+4687123", "-1": "-1", "Busy Here": "Busy Here", "": "",
		"=HYPERLINK(\"x\")": "'=HYPERLINK(\"x\")", "@SUM(A1)": "'@SUM(A1)", "+cmd": "'+cmd", "-": "'-",
	} {
		if got := csvSafe(in); got != want {
			t.Errorf("csvSafe(%q) = %q, want %q", in, got, want)
		}
	}
}
