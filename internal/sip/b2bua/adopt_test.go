package b2bua

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/media"
)

// fakeKeeper keeps what the B2BUA tells it, in memory.
type fakeKeeper struct {
	mu       sync.Mutex
	recs     map[string]func() ([]byte, error)
	ended    []string
	released []string
	changed  chan string
}

func newFakeKeeper() *fakeKeeper {
	return &fakeKeeper{recs: map[string]func() ([]byte, error){}, changed: make(chan string, 100)}
}

func (k *fakeKeeper) Changed(id string, rec func() ([]byte, error)) {
	k.mu.Lock()
	k.recs[id] = rec
	k.mu.Unlock()
	k.changed <- id
}

// Ended after Release is ignored, as internal/ha/takeover's keeper does.
func (k *fakeKeeper) Ended(id string) {
	k.mu.Lock()
	if !slices.Contains(k.released, id) {
		k.ended = append(k.ended, id)
	}
	k.mu.Unlock()
}

func (k *fakeKeeper) Release(id string) {
	k.mu.Lock()
	k.released = append(k.released, id)
	k.mu.Unlock()
}

func (k *fakeKeeper) record(t *testing.T, id string) []byte {
	t.Helper()
	k.mu.Lock()
	rec := k.recs[id]
	k.mu.Unlock()
	b, err := rec()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAdoptedCallAnswersInDialog: a call set up through one service is
// written down, left by that service without a word to its peers, and
// adopted by a second service on the same addresses: the caller's BYE,
// sent while that service is adopting, gets 200 (not 481) and reaches the callee with the CSeq continued above the
// jump; nothing else was sent to the peers.
func TestAdoptedCallAnswersInDialog(t *testing.T) {
	pbx, itsp := newUDPPeers(t)
	ka := newFakeKeeper()
	a := newTestUnitWith(t, pbx, itsp, Deps{Keeper: ka, Unit: "a"}, nil)
	ctx := ctxT(t)
	sess := ackedCall(t, ctx, pbx, a.inside())
	itsp.Next(sip.ACK)
	id := recv(t, ka.changed, "the confirmed call's record")
	rec := ka.record(t, id)
	r, snap, err := DecodeRecord(rec)
	if err != nil || snap != nil || r.Unit != "a" || r.Call.Phase != PhaseConfirmed {
		t.Fatalf("record %s: %+v, %v", rec, r, err)
	}
	calleeCSeq := r.Call.Legs[media.SideB].LocalCSeq

	// a loses the addresses: it forgets the call, sends nothing and keeps
	// the record (released, not ended).
	in, out := a.inside(), a.outside()
	if n := a.Abandon([]string{"inside", "outside"}); n != 1 {
		t.Fatalf("Abandon forgot %d calls", n)
	}
	a.Close()
	ka.mu.Lock()
	if len(ka.ended) != 0 || len(ka.released) != 1 {
		t.Fatalf("a ended %v, released %v", ka.ended, ka.released)
	}
	ka.mu.Unlock()

	kb := newFakeKeeper()
	b := newTestUnitWith(t, pbx, itsp, Deps{Keeper: kb, Unit: "b"}, func(c *config.Config) {
		c.SIP.Listeners[0].Port, c.SIP.Listeners[1].Port = int(in.Port()), int(out.Port())
	})
	// The caller's BYE reaches b while b is adopting (its listeners are
	// open): it waits for the adoption instead of getting 481.
	b.Adopting(true)
	byeDone := make(chan error, 1)
	go func() { byeDone <- sess.Bye(ctx) }()
	time.Sleep(200 * time.Millisecond) // the BYE first (were it later, the wait would go untested, never fail)
	if got, err := b.Adopt(rec); err != nil || got != id {
		t.Fatalf("Adopt = %q, %v", got, err)
	}
	if _, err := b.Adopt(rec); !errors.Is(err, ErrCarried) {
		t.Fatalf("second Adopt of the same call: %v", err)
	}
	if got := recv(t, kb.changed, "the adopted call's record"); got != id {
		t.Fatalf("b wrote %q", got)
	}
	if r2, _, err := DecodeRecord(kb.record(t, id)); err != nil || r2.Unit != "b" ||
		r2.Call.Legs[media.SideB].LocalCSeq != calleeCSeq+cseqJump {
		t.Fatalf("b's record: %+v, %v", r2, err)
	}
	b.Adopting(false)
	if err := <-byeDone; err != nil {
		t.Fatalf("BYE during the adoption: %v", err)
	}
	bye := itsp.Next(sip.BYE)
	if got := bye.CSeq().SeqNo; got != calleeCSeq+cseqJump+1 {
		t.Fatalf("BYE to the callee with CSeq %d, want %d", got, calleeCSeq+cseqJump+1)
	}
	waitNoCalls(t, b.Service)
	kb.mu.Lock()
	if len(kb.ended) != 1 || kb.ended[0] != id {
		t.Fatalf("b ended %v", kb.ended)
	}
	kb.mu.Unlock()
	if n := itsp.Wire.Count("INVITE "); n != 1 {
		t.Fatalf("the callee got %d INVITEs (the adoption must send nothing)", n)
	}
}

func TestDecodeRecordRefuses(t *testing.T) {
	leg := func(tag string) Leg {
		return Leg{Interface: "inside", Transport: "udp", CallID: "c-" + tag, LocalTag: "l" + tag, RemoteTag: "r" + tag}
	}
	good := CallRecord{Version: RecordVersion, Unit: "a", Written: time.Now(),
		Call: CallState{ID: "x1", Phase: PhaseConfirmed, Legs: [2]Leg{leg("a"), leg("b")}}}
	enc := func(edit func(r *CallRecord)) []byte {
		r := good
		if edit != nil {
			edit(&r)
		}
		b, err := json.Marshal(&r)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if _, _, err := DecodeRecord(enc(nil)); err != nil {
		t.Fatalf("good record refused: %v", err)
	}
	full := enc(nil)
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"other version", enc(func(r *CallRecord) { r.Version = 2 }), "written as version 2"},
		{"no version", []byte(`{"unit":"a"}`), "no version"},
		{"not JSON", []byte("\x00\x01garbage"), "not a JSON object"},
		{"truncated", full[:len(full)/2], "refused"},
		{"unknown field", []byte(strings.Replace(string(full), `"unit"`, `"owner":1,"unit"`, 1)), "unknown field"},
		{"data after", append(append([]byte{}, full...), []byte(`{}`)...), "data after"},
		{"early", enc(func(r *CallRecord) { r.Call.Phase = PhaseEarly }), "only confirmed calls"},
		{"leg without tag", enc(func(r *CallRecord) { r.Call.Legs[1].RemoteTag = "" }), "no whole dialog"},
		{"corrupt media", enc(func(r *CallRecord) { r.Media = json.RawMessage(`{"version":1,"id":"x1"}`) }), "call x1"},
		{"too big", make([]byte, maxRecord+1), "bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := DecodeRecord(tt.in)
			if !errors.Is(err, ErrBadRecord) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("DecodeRecord = %v, want ErrBadRecord with %q", err, tt.want)
			}
		})
	}
}

// Hold keeps an interface's listeners closed (a floating address owned by
// another unit) across applies, and opens them again when released.
func TestHoldListeners(t *testing.T) {
	u := newTestUnit(t, nil, nil, nil)
	ctx := ctxT(t)
	in := u.inside()
	if err := u.Hold(ctx, []string{"inside"}); err != nil {
		t.Fatal(err)
	}
	if got := u.inside(); got.IsValid() {
		t.Fatalf("inside still listens on %v", got)
	}
	if !u.outside().IsValid() {
		t.Fatal("outside closed too")
	}
	u.cfg.SIP.Listeners[0].Port = int(in.Port())
	if err := u.Apply(ctx, u.cfg); err != nil || u.inside().IsValid() {
		t.Fatalf("an apply opened a held listener: %v %v", u.inside(), err)
	}
	if err := u.Hold(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if got := u.inside(); got != in {
		t.Fatalf("released: inside listens on %v, want %v", got, in)
	}
}

// TestAnswerAfterAbandon: the unit loses the floating addresses (Abandon)
// while a call rings, and the callee's 200 reaches the call after that (a
// race the dialer can lose). The unit crashed there (the caller's INVITE,
// dropped when the call ended, was answered); now it sends the caller
// nothing and goes on serving calls.
func TestAnswerAfterAbandon(t *testing.T) {
	pbx, itsp := newUDPPeers(t)
	invites := make(chan *sip.Request, 1)
	itsp.SetOnInvite(func(s *sipgo.DialogServerSession, req *sip.Request) {
		_ = s.Respond(180, "Ringing", nil)
		invites <- req
	})
	a := newTestUnitWith(t, pbx, itsp, Deps{Keeper: newFakeKeeper(), Unit: "a"}, nil)
	ctx := ctxT(t)
	if _, err := pbx.Call(ctx, a.inside(), "4930123456", testSDP("127.0.0.1", 7000)); err != nil {
		t.Fatal(err)
	}
	inv := recv(t, invites, "the INVITE at the callee")
	calls := a.calls.all()
	if len(calls) != 1 {
		t.Fatalf("%d calls ringing", len(calls))
	}
	if n := a.Abandon([]string{"inside", "outside"}); n != 1 {
		t.Fatalf("Abandon forgot %d calls", n)
	}
	res := sip.NewResponseFromRequest(inv, 200, "OK", testSDP("127.0.0.3", 5000))
	res.To().Params.Add("tag", "late")
	calls[0].onAnswerB(res)
	if n := pbx.Wire.Count("SIP/2.0 200"); n != 0 {
		t.Fatalf("the caller got %d 200s from a call the unit forgot", n)
	}
	itsp.SetOnInvite(ringAndAnswer)
	sess, err := pbx.Call(ctx, a.inside(), "4930123456", testSDP("127.0.0.1", 7002))
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		t.Fatalf("a call after the abandoned one: %v", err)
	}
}

// TestNewCallsWaitForAdoption: while a takeover adopts calls, a new call
// is answered 503 with Retry-After: 1 (it could take a port a call still
// to be restored needs); afterwards calls are taken again.
func TestNewCallsWaitForAdoption(t *testing.T) {
	pbx, itsp := newUDPPeers(t)
	a := newTestUnit(t, pbx, itsp, nil)
	ctx := ctxT(t)
	a.Adopting(true)
	sess, err := pbx.Call(ctx, a.inside(), "4930123456", testSDP("127.0.0.1", 7000))
	if err != nil {
		t.Fatal(err)
	}
	var de *sipgo.ErrDialogResponse
	if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{}); !errors.As(err, &de) || de.Res.StatusCode != 503 ||
		de.Res.GetHeader("Retry-After") == nil || de.Res.GetHeader("Retry-After").Value() != "1" {
		t.Fatalf("a new call during the adoption: %v, want 503 with Retry-After: 1", err)
	}
	a.Adopting(false)
	sess, err = pbx.Call(ctx, a.inside(), "4930123456", testSDP("127.0.0.1", 7002))
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		t.Fatalf("a call after the adoption: %v", err)
	}
}
