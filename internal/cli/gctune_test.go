package cli

import (
	"io"
	"log/slog"
	"runtime/debug"
	"testing"
)

func TestTuneGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	tuneGC(log)
	if got := debug.SetGCPercent(100); got != unitGCPercent {
		t.Errorf("GOGC %d, want %d", got, unitGCPercent)
	}
	if total := memTotal(); total <= 0 {
		t.Fatal("no MemTotal in /proc/meminfo")
	} else if got := debug.SetMemoryLimit(-1); got != total/unitMemLimitPart {
		t.Errorf("memory limit %d, want half of %d", got, total)
	}

	// The environment wins.
	t.Setenv("GOGC", "150")
	debug.SetGCPercent(150)
	tuneGC(log)
	if got := debug.SetGCPercent(100); got != 150 {
		t.Errorf("GOGC from the environment changed to %d", got)
	}
}
