package admin

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// POST /api/v1/ha/move: refused without floating addresses, durations
// checked, the move's error a 409, the defaults and the given durations
// reach the takeover.
func TestHAMove(t *testing.T) {
	f := newFixture(t)
	if r := f.doLocal("POST", "/api/v1/ha/move", `{}`, nil); r.status != http.StatusConflict {
		t.Fatalf("move without floating addresses: %d %s", r.status, r.body)
	}
	var gotWait, gotHold time.Duration
	fail := false
	f.h.env.Live.HAMove = func(_ context.Context, wait, hold time.Duration) (any, error) {
		if fail {
			return nil, errors.New("ha: this unit does not own the floating addresses")
		}
		gotWait, gotHold = wait, hold
		return map[string]int{"calls_handed_over": 2}, nil
	}
	for _, tc := range []struct {
		body       string
		status     int
		wait, hold time.Duration
	}{
		{`{}`, 200, DefaultMoveWait, DefaultMoveHold},
		{`{"wait":"0s","hold":"10s"}`, 200, 0, 10 * time.Second},
		{`{"wait":"soon"}`, 400, 0, 0},
		{`{"hold":"-1s"}`, 400, 0, 0},
		{`{"hold":"2h"}`, 400, 0, 0},
		{`{"wait":`, 400, 0, 0},
	} {
		gotWait, gotHold = -1, -1
		r := f.doLocal("POST", "/api/v1/ha/move", tc.body, nil)
		if r.status != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.body, r.status, r.body, tc.status)
			continue
		}
		if tc.status == 200 && (gotWait != tc.wait || gotHold != tc.hold) {
			t.Errorf("%s: moved with wait %v hold %v, want %v %v", tc.body, gotWait, gotHold, tc.wait, tc.hold)
		}
	}
	fail = true
	if r := f.doLocal("POST", "/api/v1/ha/move", `{}`, nil); r.status != http.StatusConflict {
		t.Fatalf("a move the takeover refuses: %d %s", r.status, r.body)
	}
}

// POST /api/v1/ha/rejoin: refused without floating addresses, the
// takeover's answer passed on.
func TestHARejoin(t *testing.T) {
	f := newFixture(t)
	if r := f.doLocal("POST", "/api/v1/ha/rejoin", `{}`, nil); r.status != http.StatusConflict {
		t.Fatalf("rejoin without floating addresses: %d %s", r.status, r.body)
	}
	f.h.env.Live.HARejoin = func() (bool, error) { return true, nil }
	if r := f.doLocal("POST", "/api/v1/ha/rejoin", `{}`, nil); r.status != 200 || !strings.Contains(string(r.body), `"was_held": true`) {
		t.Fatalf("rejoin: %d %s", r.status, r.body)
	}
}
