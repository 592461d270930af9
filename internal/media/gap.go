package media

import (
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// The media gap of a takeover (docs/ha.md), as this unit sees it: per
// restored stream and direction, the time from the restore to the first
// packet relayed out of the leg. What the peers notice is longer by the
// time the takeover took to start (the lease); this is the part the unit
// adds after it.
var restoreGap = promauto.NewHistogram(prometheus.HistogramOpts{
	Namespace: "palisade", Subsystem: "media", Name: "restore_gap_seconds",
	Help:    "Per direction of each stream restored from a call record (takeover): time from the restore to the first packet relayed.",
	Buckets: []float64{.01, .02, .05, .1, .2, .5, 1, 2, 5, 10},
})

// gapLog keeps the gaps measured, for status (the newest 4096).
type gapLog struct {
	mu   sync.Mutex
	gaps []time.Duration
}

const maxGaps = 4096

// first records the gap of a leg once: the first relayed batch wins.
func (g *gapLog) first(lc *legCounters, d int64) {
	if d <= 0 {
		d = 1
	}
	if !lc.gap.CompareAndSwap(0, d) {
		return
	}
	restoreGap.Observe(time.Duration(d).Seconds())
	g.mu.Lock()
	if len(g.gaps) == maxGaps {
		g.gaps = slices.Delete(g.gaps, 0, 1)
	}
	g.gaps = append(g.gaps, time.Duration(d))
	g.mu.Unlock()
}

// GapStats sums up the media gaps of restored streams.
type GapStats struct {
	Directions int           `json:"directions"` // stream directions that carried a packet since their restore
	Median     time.Duration `json:"median"`
	Max        time.Duration `json:"max"`
}

// RestoreGaps reports the media gaps of the streams this relay restored
// (Restore) since it started: per direction, the time from the restore to
// the first packet relayed. A direction with no packet yet is not counted.
func (r *Relay) RestoreGaps() GapStats {
	r.gaps.mu.Lock()
	s := slices.Clone(r.gaps.gaps)
	r.gaps.mu.Unlock()
	if len(s) == 0 {
		return GapStats{}
	}
	slices.Sort(s)
	return GapStats{Directions: len(s), Median: s[len(s)/2], Max: s[len(s)-1]}
}
