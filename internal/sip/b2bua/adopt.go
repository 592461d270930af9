package b2bua

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/palisade-sbc/palisade/internal/media"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var callsAdopted = promauto.NewCounter(prometheus.CounterOpts{
	Namespace: "palisade", Subsystem: "sip", Name: "calls_adopted_total",
	Help: "Calls this unit carried on from another unit's record (a takeover).",
})

// A call taken over by another unit (docs/ha.md): the owning unit keeps a
// record of each confirmed call (its CallState and its media snapshot) in
// the cluster's store; the unit that takes the floating addresses over
// adopts the records, sending nothing.

// RecordVersion is the version of CallRecord this build writes and reads.
const RecordVersion = 1

// maxRecord bounds a record (a real one is a few KiB).
const maxRecord = 128 << 10

// cseqJump is how far an adopted leg's local CSeq continues above the
// recorded one: requests the dead unit sent after its last write must not
// meet ours under the same number (RFC 3261 only asks that it grows).
const cseqJump = 100

// ErrBadRecord is wrapped by every error refusing a call record.
var ErrBadRecord = errors.New("b2bua: call record refused")

// ErrCarried is wrapped by Adopt's error for a call this unit carries
// already (its own record).
var ErrCarried = errors.New("b2bua: the call is carried here already")

// CallRecord is what a unit taking a call over reads.
type CallRecord struct {
	Version int       `json:"version"`
	Unit    string    `json:"unit"`    // the unit that wrote it
	Written time.Time `json:"written"` // when
	Call    CallState `json:"call"`
	// Media is the media.CallSnapshot (versioned on its own); absent when
	// the call's media is not anchored.
	Media json.RawMessage `json:"media,omitempty"`
}

// Keeper keeps the records of confirmed calls where a unit taking over
// finds them (internal/ha/calls). Both methods return at once: the writes
// happen off the call path, and several changes of a call before its write
// make one write.
type Keeper interface {
	// Changed says the call's state changed: rec is called later, off the
	// call path, and what it returns is written.
	Changed(id string, rec func() ([]byte, error))
	// Ended says the call ended here: its record goes.
	Ended(id string)
	// Release says the call left this unit without ending (another unit
	// carries it on, hold.go): nothing of it is written or deleted any more.
	Release(id string)
}

// snapshotter finds the media snapshot under the wrappers of a call's
// media (sdpMemo, the observe wrapper).
func snapshotOf(mc media.Call) (*media.CallSnapshot, error) {
	for mc != nil {
		if s, ok := mc.(media.Snapshotter); ok {
			return s.Snapshot()
		}
		u, ok := mc.(interface{ Unwrap() media.Call })
		if !ok {
			return nil, nil // not anchored (media.Passthrough)
		}
		mc = u.Unwrap()
	}
	return nil, nil
}

// Unwrap is the media call under the SDP memo.
func (m *sdpMemo) Unwrap() media.Call { return m.Call }

// persist tells the keeper the call changed; only confirmed calls are kept
// (early dialogs are not adopted).
func (c *call) persist() {
	k := c.svc.deps.Keeper
	if k == nil || c.ended.Load() {
		return
	}
	c.mu.Lock()
	// A transfer's ghost leg (transfer.go) shares the call's id and has
	// one dialog only: it is never the call's record.
	confirmed := c.st.Phase == PhaseConfirmed && c.legs[0].CallID != "" && c.legs[1].CallID != ""
	c.mu.Unlock()
	if confirmed {
		k.Changed(c.st.ID, c.record)
	}
}

// unpersist tells the keeper the call with legs a and b ended (not a
// ghost leg, see persist).
func (c *call) unpersist(a, b Leg) {
	if k := c.svc.deps.Keeper; k != nil && a.CallID != "" && b.CallID != "" {
		k.Ended(c.st.ID)
	}
}

// record encodes the call's record now.
func (c *call) record() ([]byte, error) {
	if c.ended.Load() {
		return nil, errCallEnded
	}
	c.mu.Lock()
	st := c.state()
	mc := c.media
	c.mu.Unlock()
	r := CallRecord{Version: RecordVersion, Unit: c.svc.deps.Unit, Written: time.Now().UTC(), Call: st}
	snap, err := snapshotOf(mc)
	if err != nil {
		return nil, fmt.Errorf("call %s: %w", st.ID, err)
	}
	if snap != nil {
		if r.Media, err = snap.Encode(); err != nil {
			return nil, err
		}
	}
	return json.Marshal(&r)
}

var errCallEnded = errors.New("b2bua: the call has ended")

// DecodeRecord reads a record written by a unit of this version. A record
// of another version, with fields this build does not know, truncated, or
// of a call that cannot be adopted (not confirmed, a leg without its
// dialog) is refused with an error wrapping ErrBadRecord.
func DecodeRecord(b []byte) (*CallRecord, *media.CallSnapshot, error) {
	if len(b) > maxRecord {
		return nil, nil, fmt.Errorf("%w: %d bytes (at most %d)", ErrBadRecord, len(b), maxRecord)
	}
	var v struct {
		Version *int `json:"version"`
	}
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&v); err != nil {
		return nil, nil, fmt.Errorf("%w: not a JSON object: %v", ErrBadRecord, err)
	}
	switch {
	case v.Version == nil:
		return nil, nil, fmt.Errorf("%w: no version", ErrBadRecord)
	case *v.Version != RecordVersion:
		return nil, nil, fmt.Errorf("%w: written as version %d, this build reads version %d", ErrBadRecord, *v.Version, RecordVersion)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	r := &CallRecord{}
	if err := d.Decode(r); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrBadRecord, err)
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, nil, fmt.Errorf("%w: data after the record", ErrBadRecord)
	}
	if r.Call.ID == "" || r.Call.Phase != PhaseConfirmed {
		return nil, nil, fmt.Errorf("%w: call %q in phase %q (only confirmed calls are adopted)", ErrBadRecord, r.Call.ID, r.Call.Phase)
	}
	for i, l := range r.Call.Legs {
		if l.CallID == "" || l.LocalTag == "" || l.RemoteTag == "" || l.Interface == "" {
			return nil, nil, fmt.Errorf("%w: call %s: leg %s has no whole dialog", ErrBadRecord, r.Call.ID, sideName(media.Side(i)))
		}
	}
	var snap *media.CallSnapshot
	if len(r.Media) > 0 {
		var err error
		if snap, err = media.DecodeSnapshot(r.Media); err != nil {
			return nil, nil, fmt.Errorf("%w: call %s: %v", ErrBadRecord, r.Call.ID, err)
		}
		if snap.ID != r.Call.ID {
			return nil, nil, fmt.Errorf("%w: call %s carries the media of call %s", ErrBadRecord, r.Call.ID, snap.ID)
		}
	}
	return r, snap, nil
}

// Restorer is the media engine's side of an adoption (*media.Relay, and
// the observe wrapper around it).
type Restorer interface {
	Restore(s *media.CallSnapshot) (media.Call, error)
}

// Adopt carries on a call another unit set up, from its record: both
// dialogs go into the call map (in-dialog requests get answers, not 481),
// the media is restored on the same ports, and the local CSeqs continue
// cseqJump above the recorded ones. Nothing is sent. The record is then
// written again as this unit's.
func (s *Service) Adopt(b []byte) (string, error) {
	r, snap, rt, eps, err := s.adoptable(b)
	if err != nil {
		return "", err
	}
	st := r.Call
	mc, _ := media.Passthrough{}.NewCall(st.ID, media.Leg{}, media.Leg{})
	if snap != nil {
		rs, ok := s.deps.Media.(Restorer)
		if !ok {
			return "", fmt.Errorf("b2bua: call %s: this unit's media engine cannot restore calls", st.ID)
		}
		if mc, err = rs.Restore(snap); err != nil {
			return "", fmt.Errorf("b2bua: call %s: %w", st.ID, err)
		}
	}
	c := s.carry(rt, st, eps, remember(mc))
	callsAdopted.Inc()
	c.logger().Info("call adopted from another unit", "unit", r.Unit, "written", r.Written)
	c.persist()
	return st.ID, nil
}

// adoptable decodes a record and finds the endpoints of its legs here; a
// call this unit carries already is refused with ErrCarried.
func (s *Service) adoptable(b []byte) (*CallRecord, *media.CallSnapshot, *runtime, [2]*endpoint, error) {
	var eps [2]*endpoint
	r, snap, err := DecodeRecord(b)
	if err != nil {
		return nil, nil, nil, eps, err
	}
	rt := s.rt.Load()
	for i, l := range r.Call.Legs {
		if eps[i] = rt.endpoints[l.Interface]; eps[i] == nil {
			return nil, nil, nil, eps, fmt.Errorf("b2bua: call %s: no interface %q here", r.Call.ID, l.Interface)
		}
		if s.calls.get(dialogKey(l.CallID, l.LocalTag)) != nil {
			return nil, nil, nil, eps, fmt.Errorf("call %s: %w", r.Call.ID, ErrCarried)
		}
	}
	return r, snap, rt, eps, nil
}

// carry puts the call of a record into the call map with the media mc,
// its local CSeqs cseqJump above the recorded ones.
func (s *Service) carry(rt *runtime, st CallState, eps [2]*endpoint, mc *sdpMemo) *call {
	c := s.newCallState(rt)
	c.st = CallState{ID: st.ID, Phase: PhaseConfirmed, Started: st.Started, Answered: st.Answered}
	for i, l := range st.Legs {
		l.LocalCSeq += cseqJump
		c.setLeg(media.Side(i), &leg{Leg: l, ep: eps[i], uas: i == int(media.SideA), acked: true})
	}
	c.media = mc
	c.media.OnInactive(func() { c.hangup("media inactivity timeout") })
	for _, l := range st.Legs {
		s.calls.put(dialogKey(l.CallID, l.LocalTag), c)
	}
	s.calls.added()
	callsActive.Inc()
	c.recordStart()
	c.recordAnswer()
	return c
}
