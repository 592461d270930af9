package media

import (
	"runtime"
	"sync/atomic"
	"time"
)

// A batch worker that relays keeps its P through its sleeps (raw system
// calls, batch_linux.go), so the relay raises GOMAXPROCS by one while it
// does, and the rest of the program keeps the Ps it had. The raise lasts
// while media flows, not for the life of the relay: with no media the
// extra Ps only let more threads than there are CPUs run SIP work
// (measured on 2 CPUs: 4 Ps cost ~80 µs more CPU per call than 2,
// bench/sip/RESULTS.md run 9). A worker gives its P back after idleGiveBack
// without a packet, so a call's 20 ms packet gaps never change GOMAXPROCS
// (each change stops the world). Nanoseconds; tests shorten it.
var idleGiveBack atomic.Int64

func init() { idleGiveBack.Store(int64(time.Second)) }

// holdP records whether w holds a P of its own and moves GOMAXPROCS with it.
// A worker told to quit takes no new P; stopWorkersLocked gives back the
// one it held.
func (r *Relay) holdP(w *worker, hold bool) {
	r.procMu.Lock()
	defer r.procMu.Unlock()
	if w.held.Load() == hold || hold && w.quitting() {
		return
	}
	w.held.Store(hold)
	n := runtime.GOMAXPROCS(0)
	if hold {
		n++
	} else {
		n--
	}
	runtime.GOMAXPROCS(max(n, 1))
}
