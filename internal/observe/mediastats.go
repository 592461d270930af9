package observe

import "sync"

// Live media counters per call. The media engine is wrapped (package
// observe/callmedia) so that every call's counters reach the status of
// calls and the call records without the SIP layer passing them on.

// maxFinalMedia bounds the final counters kept for records not yet written
// (e.g. when tracing is off and no record will ever ask for them).
const maxFinalMedia = 10000

type mediaTracker struct {
	mu    sync.Mutex
	live  map[string]func() [2]MediaLeg
	final map[string][2]MediaLeg
}

// TrackMedia registers the live counters of a call's media; call done when
// the media closes (before it forgets its counters): the last counters are
// kept for the call's record.
func (s *Service) TrackMedia(id string, stats func() [2]MediaLeg) (done func()) {
	m := &s.media
	m.mu.Lock()
	if m.live == nil {
		m.live, m.final = map[string]func() [2]MediaLeg{}, map[string][2]MediaLeg{}
	}
	m.live[id] = stats
	m.mu.Unlock()
	s.Recorder.SetStatsFunc(id, stats)
	var once sync.Once
	return func() {
		once.Do(func() {
			last := stats()
			m.mu.Lock()
			delete(m.live, id)
			if len(m.final) >= maxFinalMedia {
				clear(m.final)
			}
			m.final[id] = last
			m.mu.Unlock()
			// The recorder's record of the call (when the SIP layer reports
			// it) gets the last counters too.
			s.Recorder.SetStatsFunc(id, func() [2]MediaLeg { return last })
		})
	}
}

// mediaOf returns a call's counters: live while its media runs, else the
// last ones (which it then forgets, as their record is being written).
func (s *Service) mediaOf(id string, forget bool) ([2]MediaLeg, bool) {
	m := &s.media
	m.mu.Lock()
	fn, live := m.live[id]
	last, ended := m.final[id]
	if ended && forget {
		delete(m.final, id)
	}
	m.mu.Unlock()
	switch {
	case live:
		return fn(), true // outside the lock: the engine takes its own
	case ended:
		return last, true
	}
	return [2]MediaLeg{}, false
}
