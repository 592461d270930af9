package web

import (
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/observe"
)

func TestTargetWords(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		t            observe.PeerTarget
		word, answer string
	}{
		{observe.PeerTarget{Up: true}, "not checked yet", "-"},
		{observe.PeerTarget{Up: true, LastStatus: 200}, "up", "200"},
		{observe.PeerTarget{LastStatus: 403}, "down", "403"},
		{observe.PeerTarget{LastError: "no answer to OPTIONS"}, "down", "no answer to OPTIONS"},
		{observe.PeerTarget{LastStatus: 503, OutUntil: now.Add(time.Minute)}, "out until 12:01:00 UTC", "503"},
		// Once the Retry-After time has passed the keepalive state counts.
		{observe.PeerTarget{Up: true, LastStatus: 200, OutUntil: now.Add(-time.Minute)}, "up", "200"},
		{observe.PeerTarget{LastStatus: 408, LastError: "timeout"}, "down", "408 (timeout)"},
		// A peer without keepalive: a call found the target dead.
		{observe.PeerTarget{Up: true, LastError: "no answer", HeldUntil: now.Add(30 * time.Second)}, "tried last until 12:00:30 UTC", "no answer"},
		{observe.PeerTarget{Up: true, LastStatus: 200, HeldUntil: now.Add(-time.Second)}, "up", "200"},
	} {
		if w, _ := targetState(tc.t, now); w != tc.word {
			t.Errorf("%+v: state %q, want %q", tc.t, w, tc.word)
		}
		if a := targetAnswer(tc.t); a != tc.answer {
			t.Errorf("%+v: answer %q, want %q", tc.t, a, tc.answer)
		}
	}
}
