package media

import (
	"encoding/binary"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/palisade-sbc/palisade/internal/media/sdp"
)

// Interarrival jitter of received RTP, as RFC 3550 §6.4.1 defines it: the
// mean deviation of the spacing of arrivals from the spacing of the RTP
// timestamps, smoothed with gain 1/16. It is kept per leg (not per SSRC):
// the estimator starts again when the SSRC or the clock rate changes.
//
// Arrival times are taken once per received batch (recvmmsg), so packets
// that queued up together count as arriving together, which is what they
// did as far as the relay can tell.

// monoEpoch makes arrival times small monotonic nanosecond counts.
var monoEpoch = time.Now()

func monoNow() int64 { return int64(time.Since(monoEpoch)) }

// jitterState is one leg's estimator; only the worker of the leg's RTP
// socket touches it (the result goes to legCounters.jitter for readers).
type jitterState struct {
	have bool
	ssrc uint32
	rate uint32 // RTP clock rate in Hz
	ts   uint32 // RTP timestamp of the previous packet
	arr  int64  // its arrival, monotonic ns
	j    float64
}

// update feeds one RTP packet (at least 12 bytes, decrypted) that arrived
// at now and returns the estimate in milliseconds; ok is false while the
// estimator has only one packet of its stream.
func (s *jitterState) update(b []byte, now int64, rate uint32) (ms float64, ok bool) {
	ts := binary.BigEndian.Uint32(b[4:8])
	ssrc := binary.BigEndian.Uint32(b[8:12])
	if !s.have || ssrc != s.ssrc || rate != s.rate {
		*s = jitterState{have: true, ssrc: ssrc, rate: rate, ts: ts, arr: now}
		return 0, false
	}
	// D(i,j) in timestamp units; int32 of the difference handles wrap-around
	// and packets that arrive out of order.
	d := float64(now-s.arr)*float64(rate)/1e9 - float64(int32(ts-s.ts))
	s.ts, s.arr = ts, now
	s.j += (math.Abs(d) - s.j) / 16
	return s.j * 1000 / float64(rate), true
}

// defaultClockRate is G.711's and that of most narrowband codecs.
const defaultClockRate = 8000

// clockRate is the RTP clock rate of the first (negotiated) payload type of
// m: from its a=rtpmap, else the static table, else 8000.
func clockRate(m *sdp.Media) uint32 {
	if len(m.Fmts) == 0 {
		return defaultClockRate
	}
	n := m.RTPMap(m.Fmts[0])
	if n == "" {
		n = staticCodecs[m.Fmts[0]]
	}
	_, r, _ := strings.Cut(n, "/")
	r, _, _ = strings.Cut(r, "/")
	if v, err := strconv.ParseUint(strings.TrimSpace(r), 10, 32); err == nil && v >= 1000 && v <= 1000000 {
		return uint32(v)
	}
	return defaultClockRate
}
