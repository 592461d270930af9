package admin

import (
	"context"
	"errors"
	"net/http"
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

// POST /api/v1/ha/vrrp: refused without floating addresses, the state
// and the wait checked, the takeover's answer passed on.
func TestHAVRRP(t *testing.T) {
	f := newFixture(t)
	if r := f.doLocal("POST", "/api/v1/ha/vrrp", `{"state":"BACKUP"}`, nil); r.status != http.StatusConflict {
		t.Fatalf("without floating addresses: %d %s", r.status, r.body)
	}
	var got string
	var gotWait time.Duration
	f.h.env.Live.HAVRRP = func(_ context.Context, state string, wait time.Duration) (any, error) {
		got, gotWait = state, wait
		return map[string]bool{"standby": state != "MASTER"}, nil
	}
	for _, tc := range []struct {
		body   string
		status int
		state  string
		wait   time.Duration
	}{
		{`{"state":"BACKUP"}`, 200, "BACKUP", 0},
		{`{"state":"FAULT","wait":"10s"}`, 200, "FAULT", 10 * time.Second},
		{`{"state":"MASTER"}`, 200, "MASTER", 0},
		{`{"state":"SPLIT"}`, 400, "", 0},
		{`{"state":"STOP","wait":"2h"}`, 400, "", 0},
	} {
		got, gotWait = "", -1
		r := f.doLocal("POST", "/api/v1/ha/vrrp", tc.body, nil)
		if r.status != tc.status || tc.status == 200 && (got != tc.state || gotWait != tc.wait) {
			t.Errorf("%s: %d %s, took %q wait %v", tc.body, r.status, r.body, got, gotWait)
		}
	}
}
