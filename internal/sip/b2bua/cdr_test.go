package b2bua

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/media"
	"github.com/palisade-sbc/palisade/internal/observe"
	"github.com/palisade-sbc/palisade/internal/observe/callmedia"
	"github.com/palisade-sbc/palisade/internal/store"
)

// fakeRecorder keeps what the B2BUA reports.
type fakeRecorder struct {
	mu      sync.Mutex
	starts  []observe.CallStart
	answers []observe.CallAnswer
	ends    []observe.CallEnd
}

func (f *fakeRecorder) CallStarted(e observe.CallStart) {
	f.mu.Lock()
	f.starts = append(f.starts, e)
	f.mu.Unlock()
}

func (f *fakeRecorder) CallAnswered(e observe.CallAnswer) {
	f.mu.Lock()
	f.answers = append(f.answers, e)
	f.mu.Unlock()
}

func (f *fakeRecorder) CallEnded(e observe.CallEnd) {
	f.mu.Lock()
	f.ends = append(f.ends, e)
	f.mu.Unlock()
}

func (f *fakeRecorder) counts() (int, int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.starts), len(f.answers), len(f.ends)
}

// statsMedia is the passthrough engine with fixed counters.
type statsMedia struct{ media.Passthrough }

type statsCall struct{ media.Call }

func (m statsMedia) NewCall(id string, a, b media.Leg) (media.Call, error) {
	c, err := m.Passthrough.NewCall(id, a, b)
	return statsCall{c}, err
}

func (statsCall) Stats() media.CallStats {
	var s media.CallStats
	s.Legs[media.SideA].PacketsIn, s.Legs[media.SideB].PacketsOut = 111, 222
	return s
}

func TestCallRecordAnsweredCall(t *testing.T) {
	pbx, itsp := newUDPPeers(t)
	rec := &fakeRecorder{}
	u := newTestUnitWith(t, pbx, itsp, Deps{Calls: rec, Media: statsMedia{}}, nil)
	sess, srv := establish(t, u, pbx, itsp, viaInside(u))
	if err := srv.Bye(ctxT(t)); err != nil { // the callee hangs up
		t.Fatal(err)
	}
	pbx.Next(sip.BYE)
	waitNoCalls(t, u.Service)
	if s, a, e := rec.counts(); s != 1 || a != 1 || e != 1 {
		t.Fatalf("reports: %d started, %d answered, %d ended; want 1 each", s, a, e)
	}
	st, an, en := rec.starts[0], rec.answers[0], rec.ends[0]
	if st.ID == "" || an.ID != st.ID || en.ID != st.ID {
		t.Fatalf("ids %q %q %q", st.ID, an.ID, en.ID)
	}
	if st.Direction != observe.DirOutbound || st.A.Interface != "inside" || st.A.Peer != "pbx" ||
		st.A.CallID != sess.InviteRequest.CallID().Value() || st.A.Remote.String() != pbx.Addr.String() {
		t.Fatalf("start %+v", st)
	}
	if st.A.From != sess.InviteRequest.From().Address.String() {
		t.Fatalf("caller From %q, want %q", st.A.From, sess.InviteRequest.From().Address.String())
	}
	if an.B.Interface != "outside" || an.B.Peer != "itsp" || an.B.CallID != srv.InviteRequest.CallID().Value() ||
		an.B.Remote.String() != itsp.Addr.String() || an.B.To != srv.InviteRequest.To().Address.String() {
		t.Fatalf("answer %+v", an)
	}
	if en.Code != 200 || en.EndedBy != observe.EndedByCallee || len(en.Media) != 2 ||
		en.Media[0].PacketsIn != 111 || en.Media[1].PacketsOut != 222 {
		t.Fatalf("end %+v", en)
	}
}

func TestCallRecordFailures(t *testing.T) {
	for _, tc := range []struct {
		name    string
		answer  func(s *sipgo.DialogServerSession, req *sip.Request)
		drain   bool
		cancel  bool
		code    int
		endedBy string
	}{
		{name: "busy", answer: func(s *sipgo.DialogServerSession, _ *sip.Request) { _ = s.Respond(486, "Busy Here", nil) },
			code: 486, endedBy: observe.EndedByCallee},
		{name: "canceled", answer: func(s *sipgo.DialogServerSession, _ *sip.Request) { _ = s.Respond(180, "Ringing", nil) },
			cancel: true, code: 487, endedBy: observe.EndedByCaller},
		{name: "refused while draining", drain: true, code: 503, endedBy: observe.EndedByUnit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pbx, itsp := newUDPPeers(t)
			if tc.answer != nil {
				itsp.SetOnInvite(tc.answer)
			}
			rec := &fakeRecorder{}
			u := newTestUnitWith(t, pbx, itsp, Deps{Calls: rec}, nil)
			u.draining.Store(tc.drain)
			ctx, cancel := context.WithCancel(ctxT(t))
			sess, err := pbx.Call(ctx, u.inside(), "4930123456", testSDP("127.0.0.1", 7000))
			if err != nil {
				t.Fatal(err)
			}
			err = sess.WaitAnswer(ctx, sipgo.AnswerOptions{OnResponse: func(r *sip.Response) error {
				if r.StatusCode == 180 && tc.cancel {
					cancel()
				}
				return nil
			}})
			if err == nil {
				t.Fatal("call answered")
			}
			waitNoCalls(t, u.Service)
			waitFor(t, func() bool { _, _, e := rec.counts(); return e > 0 }, "the end of the call reported")
			if s, a, e := rec.counts(); s != 1 || a != 0 || e != 1 {
				t.Fatalf("reports: %d started, %d answered, %d ended", s, a, e)
			}
			if en := rec.ends[0]; en.Code != tc.code || en.EndedBy != tc.endedBy || en.ID != rec.starts[0].ID {
				t.Fatalf("end %+v", en)
			}
		})
	}
}

// slowRecorder takes its time to store a call's end, as a database does.
type slowRecorder struct{ fakeRecorder }

func (f *slowRecorder) CallEnded(e observe.CallEnd) {
	time.Sleep(300 * time.Millisecond)
	f.fakeRecorder.CallEnded(e)
}

// TestDrainWaitsForCallRecord: Drain (and CallCount) count a call as over
// only once its record is written, so a unit shutting down after Drain
// loses no record (the call used to be counted out before).
func TestDrainWaitsForCallRecord(t *testing.T) {
	pbx, itsp := newUDPPeers(t)
	rec := &slowRecorder{}
	u := newTestUnitWith(t, pbx, itsp, Deps{Calls: rec}, nil)
	sess, _ := establish(t, u, pbx, itsp, viaInside(u))
	ctx := ctxT(t)
	if err := sess.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	if err := u.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, e := rec.counts(); e != 1 {
		t.Fatalf("Drain returned with %d call ends recorded, want 1", e)
	}
}

// TestCallRecordInStore runs a call through the service wired to observe
// as in the unit (recorder, tracer, wrapped media): the store holds one
// record for it, with both legs.
func TestCallRecordInStore(t *testing.T) {
	st := store.NewMemory()
	obs := observe.New(st, testLogger(), nil)
	t.Cleanup(func() { obs.Close() })
	pbx, itsp := newUDPPeers(t)
	u := newTestUnitWith(t, pbx, itsp, Deps{Calls: obs.Recorder, Tracer: obs.Traces, Media: callmedia.Wrap(statsMedia{}, obs)}, nil)
	if !u.cfg.Observe.TraceCalls {
		t.Fatal("traces are off by default: the trace-derived record would not be tried")
	}
	sess, srv := establish(t, u, pbx, itsp, viaInside(u))
	ctx := ctxT(t)
	if err := sess.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	itsp.Next(sip.BYE)
	waitNoCalls(t, u.Service)
	var cdrs []observe.CDR
	waitFor(t, func() bool { cdrs, _, _ = observe.ListCDRs(ctx, st, time.Time{}); return len(cdrs) > 0 }, "a call record")
	if len(cdrs) != 1 {
		t.Fatalf("%d records for one call: %+v", len(cdrs), cdrs)
	}
	c := cdrs[0]
	if c.Code != 200 || c.EndedBy != observe.EndedByCaller || c.Direction != observe.DirOutbound || c.Answer.IsZero() ||
		c.A.CallID != sess.InviteRequest.CallID().Value() || c.B.CallID != srv.InviteRequest.CallID().Value() ||
		c.A.Peer != "pbx" || c.B.Peer != "itsp" || c.Media[0].PacketsIn != 111 {
		t.Fatalf("record %+v", c)
	}
}
