//go:build linux

package media

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/media/sdp"
)

// A socket with more queued than one round reads (a burst, a flood) is
// read on in the next rounds without waiting for another packet to arrive,
// and the other calls are served in between.
func TestBatchDrainsBurst(t *testing.T) {
	cfg := testConfig(t, 20)
	cfg.Media.BatchInterval = config.Duration(250 * time.Microsecond)
	r := newTestRelay(t, cfg)
	c := newTestCall(t, r)
	pbx, ext := pbxToOutside(t, c, sdp.SuiteAES80)
	exchange(t, pbx, ext, "before")

	// Hold the worker while the burst queues up on the relay's socket.
	started, release := make(chan struct{}), make(chan struct{})
	c.wk.do(func() {
		close(started)
		<-release
	})
	<-started
	const burst = 3*maxDrainReads*workerBatch/2 + 4 // more than one round reads
	for i := range burst {
		pbx.sendRTP([]byte{byte(i), 1, 2, 3})
	}
	close(release)
	for i := range burst {
		if got := ext.recvRTP(); got[0] != byte(i) {
			t.Fatalf("packet %d of the burst: got payload %d", i, got[0])
		}
	}
	exchange(t, pbx, ext, "after")
}

// media.realtime_priority puts the batch workers' threads under SCHED_FIFO
// (as Apply asks, without a restart), relays as before, and gives the
// threads back under the normal scheduler when it is set to 0 and when
// the relay closes.
func TestRealtimePriority(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SCHED_FIFO needs CAP_SYS_NICE")
	}
	cfg := testConfig(t, 20)
	cfg.Media.BatchInterval = config.Duration(250 * time.Microsecond)
	cfg.Media.RealtimePriority = 3
	r := newTestRelay(t, cfg)
	waitFIFO(t, len(r.workers), "with realtime_priority 3")
	c := newTestCall(t, r)
	pbx, ext := pbxToOutside(t, c, sdp.SuiteAES80)
	exchange(t, pbx, ext, "realtime")

	cfg.Media.RealtimePriority = 0
	if err := r.Apply(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	waitFIFO(t, 0, "after realtime_priority 0")
	exchange(t, pbx, ext, "normal")

	cfg.Media.RealtimePriority = 5
	if err := r.Apply(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	waitFIFO(t, len(r.workers), "with realtime_priority 5")
	r.Close()
	waitFIFO(t, 0, "after Close")
}

// waitFIFO waits (generously) until exactly want threads of this process
// run under SCHED_FIFO.
func waitFIFO(t *testing.T, want int, when string) {
	t.Helper()
	got := -1
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if got = fifoThreads(t); got == want {
			return
		}
	}
	t.Fatalf("%s: %d threads under SCHED_FIFO, want %d", when, got, want)
}

func fifoThreads(t *testing.T) int {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + e.Name() + "/stat")
		if err != nil {
			continue // the thread ended meanwhile
		}
		s := string(b)
		// Fields after the command's closing parenthesis; policy is field 41.
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(f) > 38 && f[38] == "1" { // SCHED_FIFO
			n++
		}
	}
	return n
}
