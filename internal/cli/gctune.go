package cli

import (
	"bufio"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// The unit's garbage collector: with Go's default (GOGC=100) a loaded unit
// spent a fifth of its CPU collecting (SIP messages, transactions and call
// state are short-lived garbage). GOGC=400 cut that to 6-8 % at 700 calls/s
// (bench/sip/RESULTS.md); live memory per call does not change, only how far
// the heap may grow between collections. A memory limit of half the
// machine's memory makes the collector run earlier instead of letting that
// growth reach the machine's limit. GOGC and GOMEMLIMIT in the environment
// win over both.
const (
	unitGCPercent    = 400
	unitMemLimitPart = 2 // limit = MemTotal / unitMemLimitPart
)

func tuneGC(log *slog.Logger) {
	gc, limit := "GOGC", "GOMEMLIMIT" // from the environment
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(unitGCPercent)
		gc = strconv.Itoa(unitGCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		if total := memTotal(); total > 0 {
			debug.SetMemoryLimit(total / unitMemLimitPart)
			limit = strconv.FormatInt(total/unitMemLimitPart>>20, 10) + " MiB"
		}
	}
	log.Debug("garbage collector", "gogc", gc, "memory_limit", limit)
}

// memTotal is MemTotal of /proc/meminfo in bytes, 0 when unknown.
func memTotal() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
