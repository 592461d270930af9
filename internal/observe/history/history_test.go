package history

import (
	"bytes"
	"encoding/xml"
	"testing"
	"time"
)

func TestRingAndSummary(t *testing.T) {
	var r Ring
	t0 := time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)
	r.CallStarted(t0.Add(time.Second))
	r.CallStarted(t0.Add(2 * time.Second))
	r.CallEnded(Call{End: t0.Add(70 * time.Second), Started: true, Answered: true, Talk: 60 * time.Second, Packets: 98, Lost: 2, Jitters: []float64{4, 6}})
	r.CallEnded(Call{End: t0.Add(75 * time.Second), Started: true, Failed: true})
	last := r.Last(t0.Add(2*time.Minute), 3)
	if len(last) != 3 || !last[0].Minute.Equal(t0) || last[0].Attempts != 2 || last[0].PeakCalls != 2 || last[1].Ended != 2 || last[2].Ended != 0 {
		t.Fatalf("samples = %+v", last)
	}
	st := Summarize(last, 3*time.Minute)
	if st.Attempts != 2 || st.ASR != 50 || st.ACD != time.Minute || st.LossPct != 2 || st.Jitter != 5 || st.Failed != 1 {
		t.Fatalf("stats = %+v", st)
	}
	// A day later the slot is reused, not added to.
	r.CallStarted(t0.Add(24 * time.Hour))
	if got := r.Last(t0.Add(24*time.Hour), 1)[0]; got.Attempts != 1 {
		t.Fatalf("a day later: %+v", got)
	}
	if st := Summarize(nil, time.Hour); st.ASR != -1 {
		t.Fatalf("no calls: ASR %v, want -1 (none)", st.ASR)
	}
}

func TestChartIsSVG(t *testing.T) {
	times := []time.Time{time.Unix(0, 0), time.Unix(60, 0), time.Unix(120, 0)}
	svg := Chart("Calls <last hour>", "calls per minute", times, Series{Name: "calls", Color: "#1f6feb", Values: []float64{0, 3, 7}})
	if err := xml.Unmarshal(svg, new(struct{})); err != nil {
		t.Fatalf("not well-formed: %v\n%s", err, svg)
	}
	if !bytes.Contains(svg, []byte("&lt;last hour&gt;")) || !bytes.Contains(svg, []byte(">10<")) {
		t.Fatalf("want the escaped title and a y axis up to 10:\n%s", svg)
	}
	if m := Merge(make([]Sample, 1440), 10); len(m) != 144 {
		t.Fatalf("merged %d, want 144", len(m))
	}
}
