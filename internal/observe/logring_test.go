package observe

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestLogRingKeepsNewest(t *testing.T) {
	var out bytes.Buffer
	ring := NewLogRing(LogRingSize)
	log := slog.New(ring.Handler(slog.NewTextHandler(&out, nil))).With("call_id", "c1")
	for i := range LogRingSize + 10 {
		log.Info("line", "n", i, slog.Group("g", "k", "v w"))
	}
	log.Warn("last warning")
	got := ring.Newest(3, slog.LevelInfo)
	if len(got) != 3 || got[0].Msg != "last warning" || got[1].Msg != "line" {
		t.Fatalf("newest = %+v", got)
	}
	if want := `call_id=c1 n=2009 g.k="v w"`; got[1].Attrs != want {
		t.Errorf("attrs %q, want %q", got[1].Attrs, want)
	}
	if w := ring.Newest(10, slog.LevelWarn); len(w) != 1 {
		t.Errorf("warnings = %d", len(w))
	}
	if !strings.Contains(out.String(), "last warning") {
		t.Error("the records did not reach the unit's own handler")
	}
}
