package sdnotify

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"syscall"
	"testing"
)

func TestPriorityPrefix(t *testing.T) {
	var b bytes.Buffer
	pw := &priorityWriter{w: &b}
	for _, h := range []slog.Handler{slog.NewTextHandler(pw, &slog.HandlerOptions{Level: slog.LevelDebug}),
		slog.NewJSONHandler(pw, &slog.HandlerOptions{Level: slog.LevelDebug})} {
		log := slog.New(h)
		for _, tc := range []struct {
			level slog.Level
			want  string
		}{{slog.LevelDebug, "<7>"}, {slog.LevelInfo, "<6>"}, {slog.LevelWarn, "<4>"}, {slog.LevelError, "<3>"}, {slog.LevelError + 2, "<3>"}} {
			b.Reset()
			log.Log(nil, tc.level, "m", "note", "level=DEBUG in a value")
			if got := b.String(); len(got) < 3 || got[:3] != tc.want {
				t.Errorf("%v: %q, want prefix %s", tc.level, got, tc.want)
			}
		}
	}
}

// Only a stderr that is the journal's stream gets prefixes.
func TestJournalStreamDetection(t *testing.T) {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(os.Stderr.Fd()), &st); err != nil {
		t.Skip(err)
	}
	t.Setenv("JOURNAL_STREAM", "")
	if _, ok := JournalStream(os.Stderr).(*priorityWriter); ok {
		t.Fatal("prefixes without JOURNAL_STREAM")
	}
	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino+1))
	if _, ok := JournalStream(os.Stderr).(*priorityWriter); ok {
		t.Fatal("prefixes although stderr is another file than the journal's stream")
	}
	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino))
	if _, ok := JournalStream(os.Stderr).(*priorityWriter); !ok {
		t.Fatal("no prefixes although stderr is the journal's stream")
	}
	if _, ok := JournalStream(&bytes.Buffer{}).(*priorityWriter); ok {
		t.Fatal("prefixes on a writer that is not stderr")
	}
}
