package media

import (
	"runtime"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/media/sdp"
)

// Both kinds of worker relay RTP and SRTCP both ways, latch and count.
func TestWorkerKinds(t *testing.T) {
	// 0: the Go-poller worker.
	for _, batch := range []time.Duration{0, 250 * time.Microsecond, 2 * time.Millisecond} {
		t.Run(batch.String(), func(t *testing.T) {
			procs := runtime.GOMAXPROCS(0)
			cfg := testConfig(t, 20)
			cfg.Media.BatchInterval = config.Duration(batch)
			r := newTestRelay(t, cfg)
			if want := batchSupported && batch > 0; (r.batched > 0) != want {
				t.Fatalf("batched workers %d, want batched %v", r.batched, want)
			}
			c := newTestCall(t, r)
			pbx, ext := pbxToOutside(t, c, sdp.SuiteAES80)
			for i := range 5 {
				exchange(t, pbx, ext, batch.String()+" "+string(rune('0'+i)))
			}
			pbx.sendRTCP(0xaaaa)
			if got := ext.recvRTCP(); got != 0xaaaa {
				t.Fatalf("RTCP ssrc %x", got)
			}
			st := c.Stats()
			if st.Legs[SideA].PacketsIn < 5 || st.Legs[SideB].PacketsOut < 5 || st.Legs[SideA].Remote.Port() != uint16(pbx.port()) {
				t.Fatalf("stats: %+v", st)
			}
			c.Close()
			r.Close()
			if got := runtime.GOMAXPROCS(0); got != procs {
				t.Fatalf("GOMAXPROCS %d after Close, was %d", got, procs)
			}
		})
	}
}

// The unit builds the relay without a configuration and applies it
// before the first call: the workers become the configured kind. With
// calls up, a change of kind waits for the next start.
func TestBatchIntervalApply(t *testing.T) {
	if !batchSupported {
		t.Skip("no batched workers here")
	}
	procs := runtime.GOMAXPROCS(0)
	r, err := New(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.batched != 0 {
		t.Fatalf("batched %d before any configuration", r.batched)
	}
	cfg := testConfig(t, 20)
	cfg.Media.BatchInterval = config.Duration(300 * time.Microsecond)
	if err := r.Apply(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	// No P is taken before media flows (procs.go).
	if r.batched == 0 || runtime.GOMAXPROCS(0) != procs {
		t.Fatalf("batched %d, GOMAXPROCS %d (was %d)", r.batched, runtime.GOMAXPROCS(0), procs)
	}
	c := newTestCall(t, r)
	pbx, ext := pbxToOutside(t, c, sdp.SuiteAES80)
	exchange(t, pbx, ext, "batched")
	if got := runtime.GOMAXPROCS(0); got <= procs || got > procs+r.batched {
		t.Fatalf("GOMAXPROCS %d while media flows (was %d, %d batch workers)", got, procs, r.batched)
	}

	cfg.Media.BatchInterval = 0
	if err := r.Apply(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	if r.batched == 0 {
		t.Fatal("the workers of a call in progress were replaced")
	}
	exchange(t, pbx, ext, "after apply")
	c.Close()
	r.Close()
	if got := runtime.GOMAXPROCS(0); got != procs {
		t.Fatalf("GOMAXPROCS %d after Close, was %d", got, procs)
	}
}

// A batch worker takes a P of its own when media starts to flow and gives
// it back once the relay has been idle for idleGiveBack, so a unit carrying
// only signalling runs with the Ps it was given.
func TestBatchWorkerHoldsPWhileMediaFlows(t *testing.T) {
	if !batchSupported {
		t.Skip("no batched workers here")
	}
	defer idleGiveBack.Store(idleGiveBack.Load())
	idleGiveBack.Store(int64(50 * time.Millisecond))
	procs := runtime.GOMAXPROCS(0)
	cfg := testConfig(t, 20)
	cfg.Media.BatchInterval = config.Duration(250 * time.Microsecond)
	r := newTestRelay(t, cfg)
	c := newTestCall(t, r)
	pbx, ext := pbxToOutside(t, c, sdp.SuiteAES80)
	if got := runtime.GOMAXPROCS(0); got != procs {
		t.Fatalf("GOMAXPROCS %d with a call set up and no media, want %d", got, procs)
	}
	for round := range 2 {
		exchange(t, pbx, ext, "flowing")
		if got := runtime.GOMAXPROCS(0); got <= procs {
			t.Fatalf("round %d: GOMAXPROCS %d while media flows, want more than %d", round, got, procs)
		}
		// Idle: the P goes back (a generous bound; the give-back comes
		// 50 ms after the last packet).
		deadline := time.Now().Add(20 * time.Second)
		for runtime.GOMAXPROCS(0) != procs {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: GOMAXPROCS still %d after the media stopped, want %d", round, runtime.GOMAXPROCS(0), procs)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	c.Close()
	r.Close()
	if got := runtime.GOMAXPROCS(0); got != procs {
		t.Fatalf("GOMAXPROCS %d after Close, was %d", got, procs)
	}
}
