package observe

import (
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func TestTracesKeepsBothLegsInOrder(t *testing.T) {
	tr := NewTraces(10, time.Hour)
	call := testCall("c1", t0, "1001", "4687", false)
	// Deliver out of order, as two legs' goroutines would.
	rev := slices.Clone(call)
	slices.Reverse(rev)
	traceAll(tr, rev)

	msgs, ok := tr.Messages("c1")
	if !ok {
		t.Fatal("call c1 not found")
	}
	if len(msgs) != len(call) {
		t.Fatalf("got %d messages, want %d", len(msgs), len(call))
	}
	for i, m := range msgs {
		if m.Text != string(call[i].Raw) || m.Index != i+1 {
			t.Errorf("message %d: got %q (index %d), want %q", i, m.Label, m.Index, ReadHead(call[i].Raw).Label())
		}
	}
	sum, ok := tr.Lookup("c1-b@palisade") // by the outside leg's SIP Call-ID
	if !ok {
		t.Fatal("lookup by the outside Call-ID failed")
	}
	if sum.ID != "c1" || sum.Result != 200 || sum.Failed || !sum.Ended || sum.From != "1001" || sum.To != "4687" {
		t.Errorf("summary = %+v", sum)
	}
	if sum.Direction != DirOutbound || !sum.Answer.Equal(call[7].Time) { // the 200 sent to the PBX
		t.Errorf("direction %q, answer %v", sum.Direction, sum.Answer)
	}
	if !slices.Equal(sum.Legs, []string{"inside", "outside"}) || len(sum.CallIDs) != 2 {
		t.Errorf("legs %v, call ids %v", sum.Legs, sum.CallIDs)
	}
}

func TestTracesCopiesRaw(t *testing.T) {
	tr := NewTraces(10, time.Hour)
	m := testCall("c1", t0, "1", "2", false)[0]
	orig := string(m.Raw)
	tr.TraceSIP(m)
	for i := range m.Raw {
		m.Raw[i] = 'x' // the SIP layer reuses its buffer
	}
	msgs, _ := tr.Messages("c1")
	if msgs[0].Text != orig {
		t.Fatalf("stored message changed with the caller's buffer: %q", msgs[0].Text)
	}
}

func TestTracesRingAndFailedKeep(t *testing.T) {
	tr := NewTraces(3, time.Hour)
	now := t0.Add(time.Minute)
	tr.now = func() time.Time { return now }
	// c0 fails (486), c1..c5 are answered: the ring holds 3 calls; the failed
	// one stays beyond the ring.
	traceAll(tr, testCall("c0", t0, "1", "2", true))
	for i := 1; i <= 5; i++ {
		traceAll(tr, testCall(fmt.Sprintf("c%d", i), t0.Add(time.Duration(i)*time.Second), "1", "2", false))
	}
	var ids []string
	for _, s := range tr.List(CallFilter{}) {
		ids = append(ids, s.ID)
	}
	if want := []string{"c5", "c4", "c3", "c0"}; !slices.Equal(ids, want) {
		t.Fatalf("kept %v, want %v", ids, want)
	}
	// After the keep time the failed call goes with the next eviction.
	now = t0.Add(2 * time.Hour)
	traceAll(tr, testCall("c6", t0.Add(6*time.Second), "1", "2", false))
	ids = ids[:0]
	for _, s := range tr.List(CallFilter{}) {
		ids = append(ids, s.ID)
	}
	if want := []string{"c6", "c5", "c4"}; !slices.Equal(ids, want) {
		t.Fatalf("kept %v, want %v", ids, want)
	}
	// A smaller ring drops calls at once.
	tr.SetLimits(1, time.Hour)
	if n := len(tr.List(CallFilter{})); n != 1 {
		t.Fatalf("after SetLimits(1) %d calls kept", n)
	}
}

func TestTracesEndAbnormalKeepsLonger(t *testing.T) {
	tr := NewTraces(1, time.Hour)
	tr.now = func() time.Time { return t0.Add(time.Minute) }
	traceAll(tr, testCall("c1", t0, "1", "2", false)[:8]) // answered, no BYE yet
	tr.End("c1", true)                                    // media timeout
	traceAll(tr, testCall("c2", t0.Add(time.Second), "1", "2", false))
	if _, ok := tr.Lookup("c1"); !ok {
		t.Fatal("abnormally ended call was not kept")
	}
}

func TestTracesFilter(t *testing.T) {
	tr := NewTraces(100, time.Hour)
	traceAll(tr, testCall("ok1", t0, "1001", "4687", false))
	traceAll(tr, testCall("busy", t0.Add(time.Minute), "1002", "5550", true))
	active := testCall("act", t0.Add(2*time.Minute), "1003", "4688", false)[:8]
	traceAll(tr, active)
	tests := []struct {
		name string
		f    CallFilter
		want []string
	}{
		{"all newest first", CallFilter{}, []string{"act", "busy", "ok1"}},
		{"number in To", CallFilter{Number: "468"}, []string{"act", "ok1"}},
		{"number in From", CallFilter{Number: "1002"}, []string{"busy"}},
		{"unit id", CallFilter{CallID: "ok1"}, []string{"ok1"}},
		{"SIP call id", CallFilter{CallID: "busy-a@10.0.0.10"}, []string{"busy"}},
		{"failed", CallFilter{Result: "failed"}, []string{"busy"}},
		{"class 4xx", CallFilter{Result: "4xx"}, []string{"busy"}},
		{"code 200", CallFilter{Result: "200"}, []string{"act", "ok1"}},
		{"since", CallFilter{Since: t0.Add(30 * time.Second)}, []string{"act", "busy"}},
		{"until", CallFilter{Until: t0.Add(30 * time.Second)}, []string{"ok1"}},
		{"active", CallFilter{Active: true}, []string{"act"}},
		{"ended", CallFilter{Ended: true}, []string{"busy", "ok1"}},
		{"limit", CallFilter{Limit: 1}, []string{"act"}},
		{"no match", CallFilter{Number: "999"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, s := range tr.List(tt.f) {
				got = append(got, s.ID)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTracesPerCallBound(t *testing.T) {
	tr := NewTraces(10, time.Hour)
	m := testCall("flood", t0, "1", "2", false)[0]
	for i := 0; i < maxMessagesPerCall+5; i++ {
		tr.TraceSIP(m)
	}
	s, _ := tr.Lookup("flood")
	if s.Messages != maxMessagesPerCall || s.Dropped != 5 {
		t.Fatalf("messages %d dropped %d", s.Messages, s.Dropped)
	}
}

func TestTracesDisabled(t *testing.T) {
	tr := NewTraces(10, time.Hour)
	tr.SetEnabled(false)
	traceAll(tr, testCall("c1", t0, "1", "2", false))
	if _, ok := tr.Lookup("c1"); ok {
		t.Fatal("a disabled trace store kept a call")
	}
}

func TestTracesWindow(t *testing.T) {
	tr := NewTraces(10, time.Hour)
	traceAll(tr, testCall("a", t0, "1", "2", false))
	traceAll(tr, testCall("b", t0.Add(time.Minute), "1", "2", true))
	got := tr.Window(t0.Add(30*time.Second), time.Time{})
	if len(got) != 8 {
		t.Fatalf("window holds %d messages, want the 8 of call b", len(got))
	}
	if got[0].Label != "INVITE" || got[len(got)-1].Label != "ACK" {
		t.Errorf("window order: first %q last %q", got[0].Label, got[len(got)-1].Label)
	}
}

// TestTracesConcurrent runs many calls from many goroutines (go test -race).
func TestTracesConcurrent(t *testing.T) {
	tr := NewTraces(50, time.Hour)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 40; i++ {
				id := fmt.Sprintf("g%d-%d", g, i)
				traceAll(tr, testCall(id, t0.Add(time.Duration(i)*time.Second), "1", "2", i%5 == 0))
				tr.List(CallFilter{Number: "1"})
			}
		}()
	}
	wg.Wait()
	calls := tr.List(CallFilter{})
	if len(calls) < 50 || len(calls) > 100 {
		t.Fatalf("%d calls kept; want the ring (50) plus at most 50 failed", len(calls))
	}
	for _, c := range calls {
		if c.Messages != 14 && c.Messages != 8 {
			t.Errorf("call %s has %d messages", c.ID, c.Messages)
		}
	}
}

func BenchmarkTraceSIP(b *testing.B) {
	tr := NewTraces(1000, time.Hour)
	call := testCall("bench", t0, "1001", "4687", false)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			m := call[i%len(call)]
			m.CallID = fmt.Sprint("bench", i/len(call)%2000)
			tr.TraceSIP(m)
			i++
		}
	})
}

func TestTracesByteAccounting(t *testing.T) {
	tr := NewTraces(2, 0)
	for i := range 5 {
		traceAll(tr, testCall(fmt.Sprint("c", i), t0.Add(time.Duration(i)*time.Second), "1", "2", false))
	}
	var want int64
	for _, s := range tr.List(CallFilter{}) {
		msgs, _ := tr.Messages(s.ID)
		for _, m := range msgs {
			want += int64(len(m.Text))
		}
	}
	if got := tr.total.Load(); got != want || want == 0 {
		t.Fatalf("accounted %d bytes, the kept calls hold %d", got, want)
	}
}

// A message handed over with the Head its SIP stack parsed is summarised
// and shown exactly as one the store reads itself: the same summary (users,
// legs, Call-IDs, result, end) and the same messages, read from the text.
func TestTracesParsedHeadSameAsRead(t *testing.T) {
	for _, busy := range []bool{false, true} {
		read, parsed := NewTraces(10, time.Hour), NewTraces(10, time.Hour)
		for _, m := range testCall("c1", t0, "1001", "4420", busy) {
			read.TraceSIP(m)
			h := ReadHead(m.Raw)
			h.FromURI, h.ToURI, h.RequestURI = "", "", "" // what the SIP layer leaves out
			m.Head = &h
			parsed.TraceSIP(m)
		}
		a, b := read.List(CallFilter{}), parsed.List(CallFilter{})
		if len(a) != 1 || !reflect.DeepEqual(a, b) {
			t.Fatalf("busy=%v: summaries differ:\nread   %+v\nparsed %+v", busy, a, b)
		}
		if a[0].From != "1001" || a[0].To != "4420" || !a[0].Ended || len(a[0].CallIDs) != 2 {
			t.Fatalf("busy=%v: summary %+v", busy, a[0])
		}
		ma, _ := read.Messages("c1")
		mb, _ := parsed.Messages("c1")
		if len(ma) == 0 || !reflect.DeepEqual(ma, mb) {
			t.Fatalf("busy=%v: messages differ:\n%+v\n%+v", busy, ma, mb)
		}
		if mb[0].Method != "INVITE" || mb[0].SIPCallID != "c1-a@10.0.0.10" || !mb[0].SDP {
			t.Fatalf("busy=%v: first message %+v", busy, mb[0])
		}
	}
}
