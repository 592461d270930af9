package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/observe"
)

// TestTargetStateWords: the words `palisade status peers` prints per target.
func TestTargetStateWords(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		tg   observe.PeerTarget
		want string
	}{
		{observe.PeerTarget{Up: true, LastStatus: 200}, "up"},
		{observe.PeerTarget{LastStatus: 403}, "down"},
		{observe.PeerTarget{Up: true, OutUntil: now.Add(time.Minute)}, "out until "},
		{observe.PeerTarget{Up: true, LastError: "no answer", HeldUntil: now.Add(30 * time.Second)}, "tried last until "},
		{observe.PeerTarget{Up: true, LastStatus: 200, HeldUntil: now.Add(-time.Second)}, "up"},
	} {
		if got := targetState(tc.tg); !strings.HasPrefix(got, tc.want) || (!strings.HasSuffix(tc.want, " ") && got != tc.want) {
			t.Errorf("%+v: %q, want %q", tc.tg, got, tc.want)
		}
	}
}
