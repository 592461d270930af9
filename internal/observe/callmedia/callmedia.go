// Package callmedia connects the media engine to observe: every call's
// media counters (addresses, codec, SRTP, packets, losses) reach the status
// of calls and the call records. It is its own package because media
// imports observe (for its rate-limited logger).
package callmedia

import (
	"errors"
	"sync"

	"github.com/palisade-sbc/palisade/internal/media"
	"github.com/palisade-sbc/palisade/internal/observe"
)

// Tracker is what the wrapper reports to (observe.Service does).
type Tracker interface {
	TrackMedia(id string, stats func() [2]observe.MediaLeg) (done func())
}

// Wrap returns an engine whose calls report their counters to t.
func Wrap(e media.Engine, t Tracker) media.Engine {
	if t == nil {
		return e
	}
	return &engine{Engine: e, t: t}
}

type engine struct {
	media.Engine
	t Tracker
}

func (e *engine) NewCall(id string, a, b media.Leg) (media.Call, error) {
	c, err := e.Engine.NewCall(id, a, b)
	if err != nil {
		return nil, err
	}
	done := e.t.TrackMedia(id, func() [2]observe.MediaLeg { return Convert(c.Stats()) })
	return &call{Call: c, done: done}, nil
}

type call struct {
	media.Call
	once sync.Once
	done func()
}

// Close takes the last counters before the media forgets them.
func (c *call) Close() {
	c.once.Do(c.done)
	c.Call.Close()
}

// Convert turns media counters into observe's (the same fields).
func Convert(s media.CallStats) [2]observe.MediaLeg {
	return [2]observe.MediaLeg{observe.MediaLeg(s.Legs[0]), observe.MediaLeg(s.Legs[1])}
}

// Unwrap is the engine's call (b2bua finds the media snapshot under it).
func (c *call) Unwrap() media.Call { return c.Call }

// Reoffer passes a re-offer on as one (media.Reoffer).
func (c *call) Reoffer(from media.Side, sdp []byte) ([]byte, error) {
	return media.Reoffer(c.Call, from, sdp)
}

// restorer is the media relay's takeover of a call (media.Relay.Restore).
type restorer interface {
	Restore(s *media.CallSnapshot) (media.Call, error)
}

// Restore restores a call another unit anchored, reporting its counters
// like a new call's.
func (e *engine) Restore(s *media.CallSnapshot) (media.Call, error) {
	r, ok := e.Engine.(restorer)
	if !ok {
		return nil, errors.New("callmedia: the media engine cannot restore calls")
	}
	c, err := r.Restore(s)
	if err != nil {
		return nil, err
	}
	done := e.t.TrackMedia(s.ID, func() [2]observe.MediaLeg { return Convert(c.Stats()) })
	return &call{Call: c, done: done}, nil
}
