//go:build linux

package media

import (
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
