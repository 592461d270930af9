//go:build linux

package cli

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"

	"github.com/palisade-sbc/palisade/internal/ha/takeover"
	"github.com/palisade-sbc/palisade/internal/testkit"
	"github.com/palisade-sbc/palisade/internal/testkit/siptest"
)

// TestPlannedMove: `palisade ha move` on the owner a while it carries
// calls. a refuses new calls (503) while it waits for its calls to end,
// then hands them over through their records: b adopts them, the media
// goes on both ways, a holds no media port any more. During a's hold, and
// after it while b carries calls, b keeps the addresses (no fail-back
// while they carry calls); once the calls have ended the preferred a
// takes them back.
func TestPlannedMove(t *testing.T) {
	p := newHAPair(t, "")
	dirA, dirB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	a := p.start(t, dirA, p.storeURL, "a")
	b := p.start(t, dirB, p.storeURL, "b")
	bLog := func() string { return testkit.LastLines(b.log.String(), 60) }
	legs := p.placeCalls(t, 3, 1)
	mediaBack(t, legs, time.Now().Add(time.Second), func() string { return testkit.LastLines(a.log.String(), 40) })

	type moved struct {
		r   takeover.MoveResult
		err string
	}
	done := make(chan moved, 1)
	go func() {
		r := palisade(t, dirA, "ha", "move", "--wait", "3s", "--hold", "2s", "--json")
		var m moved
		if r.code != 0 {
			m.err = r.stderr
		} else if err := json.Unmarshal([]byte(r.stdout), &m.r); err != nil {
			m.err = err.Error() + ": " + r.stdout
		}
		done <- m
	}()
	waitLog(t, a, "ha: planned move: draining", 30*time.Second)
	// A new call while a drains is refused with 503.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sess, err := p.caller.Call(ctx, p.dst, "1000", siptest.SDP("127.0.0.1", 4000))
	if err == nil {
		err = sess.WaitAnswer(ctx, sipgo.AnswerOptions{})
	}
	var refused *sipgo.ErrDialogResponse
	if !errors.As(err, &refused) || refused.Res.StatusCode != 503 {
		t.Fatalf("a new call while a drains: %v, want 503", err)
	}
	m := <-done
	if m.err != "" {
		t.Fatalf("ha move: %s\n%s", m.err, testkit.LastLines(a.log.String(), 40))
	}
	t.Logf("ha move: %+v", m.r)
	if m.r.CallsHandedOver != len(legs) || m.r.CallsEnded != 0 {
		t.Fatalf("ha move handed over %d calls and saw %d end, want %d and 0", m.r.CallsHandedOver, m.r.CallsEnded, len(legs))
	}
	released := time.Now()
	waitLog(t, b, "ha: floating addresses taken", 30*time.Second)
	mediaBack(t, legs, released, bLog)
	time.Sleep(time.Second)
	for i, l := range legs {
		t.Logf("call %d: media gap of the move: to the caller %v, to the callee %v", i,
			l.in.gap(released.Add(-m.r.Took)).Round(time.Millisecond), l.out.gap(released.Add(-m.r.Took)).Round(time.Millisecond))
		if f := l.out.authFailures(); f != 0 {
			t.Errorf("call %d: %d SRTP authentication failures", i, f)
		}
	}
	if !strings.Contains(b.log.String(), "calls_adopted=3 calls_refused=0") {
		t.Errorf("b did not adopt the 3 calls:\n%s", bLog())
	}
	if n := metricSum(t, dirA, "palisade_media_ports_in_use"); n != 0 {
		t.Errorf("a still holds %v media ports after the move", n)
	}
	// a's hold (2 s) is over: a is back in the election, but b keeps the
	// addresses while they carry calls.
	waitLog(t, a, "vip: out of the election after a release", 10*time.Second)
	time.Sleep(4 * time.Second)
	if strings.Count(a.log.String(), "ha: floating addresses taken") != 1 {
		t.Fatalf("a took the addresses back while b carries calls:\n%s", testkit.LastLines(a.log.String(), 40))
	}
	for i, l := range legs {
		if err := l.sess.Bye(ctx); err != nil {
			t.Fatalf("call %d: BYE after the move: %v\n%s", i, err, bLog())
		}
		l.stop()
	}
	// No call left: the preferred a takes the addresses back.
	for deadline := time.Now().Add(30 * time.Second); strings.Count(a.log.String(), "ha: floating addresses taken") < 2; {
		if time.Now().After(deadline) {
			t.Fatalf("a did not take the addresses back once b was idle:\n%s", testkit.LastLines(a.log.String(), 40))
		}
		time.Sleep(50 * time.Millisecond)
	}
	// New calls go through a again.
	l := placeCall(t, p.caller, p.callee, p.dst, len(legs))
	if err := l.sess.Bye(ctx); err != nil {
		t.Fatalf("a call through a after the fail-back: BYE: %v", err)
	}
}
