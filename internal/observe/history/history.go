// Package history keeps the unit's own recent traffic history for the
// dashboard: one sample per minute for the last day, in memory (a restart
// starts an empty history; long-term graphs belong in a Prometheus server
// scraping /metrics).
package history

import (
	"sync"
	"time"
)

// Minutes is how many per-minute samples the ring holds (one day).
const Minutes = 24 * 60

// Sample is what happened in one minute.
type Sample struct {
	Minute    time.Time `json:"minute"`    // start of the minute (UTC)
	Attempts  int       `json:"attempts"`  // calls started
	Ended     int       `json:"ended"`     // calls that ended (seizures)
	Answered  int       `json:"answered"`  // ... of which answered
	Failed    int       `json:"failed"`    // ... of which failed (SIP 4xx-6xx but not cancelled, or ended by the unit)
	TalkSecs  float64   `json:"talk_secs"` // talk time of the answered ones
	Packets   uint64    `json:"packets"`   // media packets received by the unit
	Lost      uint64    `json:"lost"`      // media packets lost
	JitterSum float64   `json:"-"`
	JitterN   int       `json:"-"`
	PeakCalls int       `json:"peak_calls"` // most calls in progress at once
}

// Jitter is the mean interarrival jitter (ms) of the legs that ended in the
// minute, 0 without media.
func (s Sample) Jitter() float64 {
	if s.JitterN == 0 {
		return 0
	}
	return s.JitterSum / float64(s.JitterN)
}

// LossPct is the share of media packets lost, in percent.
func (s Sample) LossPct() float64 {
	if s.Packets+s.Lost == 0 {
		return 0
	}
	return 100 * float64(s.Lost) / float64(s.Packets+s.Lost)
}

// Ring is the per-minute history. The zero value is ready; it is safe for
// concurrent use.
type Ring struct {
	mu     sync.Mutex
	buf    [Minutes]Sample
	active int
}

func minuteOf(t time.Time) time.Time { return t.UTC().Truncate(time.Minute) }

// slot returns the sample of t's minute, resetting a slot last used a day ago.
func (r *Ring) slot(t time.Time) *Sample {
	m := minuteOf(t)
	s := &r.buf[(m.Unix()/60)%Minutes]
	if !s.Minute.Equal(m) {
		*s = Sample{Minute: m, PeakCalls: r.active}
	}
	return s
}

// CallStarted notes a call that started at t.
func (r *Ring) CallStarted(t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.active++
	s := r.slot(t)
	s.Attempts++
	s.PeakCalls = max(s.PeakCalls, r.active)
}

// Call is an ended call as the history needs it.
type Call struct {
	End      time.Time
	Started  bool // CallStarted was called for it (calls refused before routing were not)
	Answered bool
	Failed   bool
	Talk     time.Duration
	Packets  uint64
	Lost     uint64
	Jitters  []float64 // per leg with media, ms
}

// CallEnded notes an ended call.
func (r *Ring) CallEnded(c Call) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c.Started && r.active > 0 {
		r.active--
	}
	s := r.slot(c.End)
	if !c.Started {
		s.Attempts++
	}
	s.Ended++
	if c.Answered {
		s.Answered++
		s.TalkSecs += c.Talk.Seconds()
	}
	if c.Failed {
		s.Failed++
	}
	s.Packets += c.Packets
	s.Lost += c.Lost
	for _, j := range c.Jitters {
		s.JitterSum += j
		s.JitterN++
	}
}

// Last returns the samples of the n minutes up to and including now's,
// oldest first; minutes without traffic come as zero samples with their time
// (a minute before the unit started too).
func (r *Ring) Last(now time.Time, n int) []Sample {
	n = min(max(n, 1), Minutes)
	r.mu.Lock()
	defer r.mu.Unlock()
	end := minuteOf(now)
	out := make([]Sample, n)
	for i := range out {
		m := end.Add(-time.Duration(n-1-i) * time.Minute)
		s := r.buf[(m.Unix()/60)%Minutes]
		if !s.Minute.Equal(m) {
			s = Sample{Minute: m}
			if i == n-1 {
				s.PeakCalls = r.active
			}
		}
		out[i] = s
	}
	return out
}

// Stats sums a stretch of samples.
type Stats struct {
	Window         time.Duration `json:"window"`
	Attempts       int           `json:"attempts"`
	Ended          int           `json:"ended"`
	Answered       int           `json:"answered"`
	Failed         int           `json:"failed"`
	CallsPerSecond float64       `json:"calls_per_second"`
	// ASR is answered / ended in percent (answer-seizure ratio); -1 when no
	// call ended in the window.
	ASR float64 `json:"asr"`
	// ACD is the mean talk time of the answered calls; 0 without any.
	ACD     time.Duration `json:"acd"`
	LossPct float64       `json:"loss_pct"`
	Jitter  float64       `json:"jitter_ms"`
	// MediaPackets are the media packets the unit received on the calls
	// that ended (0: loss and jitter mean nothing).
	MediaPackets uint64 `json:"media_packets"`
}

// Summarize returns the stats of samples covering window.
func Summarize(samples []Sample, window time.Duration) Stats {
	st := Stats{Window: window, ASR: -1}
	var talk, jsum float64
	var jn int
	var packets, lost uint64
	for _, s := range samples {
		st.Attempts += s.Attempts
		st.Ended += s.Ended
		st.Answered += s.Answered
		st.Failed += s.Failed
		talk += s.TalkSecs
		packets += s.Packets
		lost += s.Lost
		jsum += s.JitterSum
		jn += s.JitterN
	}
	if window > 0 {
		st.CallsPerSecond = float64(st.Attempts) / window.Seconds()
	}
	if st.Ended > 0 {
		st.ASR = 100 * float64(st.Answered) / float64(st.Ended)
	}
	if st.Answered > 0 {
		st.ACD = time.Duration(talk / float64(st.Answered) * float64(time.Second))
	}
	st.MediaPackets = packets
	if packets+lost > 0 {
		st.LossPct = 100 * float64(lost) / float64(packets+lost)
	}
	if jn > 0 {
		st.Jitter = jsum / float64(jn)
	}
	return st
}
