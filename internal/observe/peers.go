package observe

import (
	"slices"
	"strings"
	"sync"
	"time"
)

// PeerStatus is one line of the peers status: the OPTIONS keepalive state
// the SIP layer keeps for a peer, with the time that state last changed.
type PeerStatus struct {
	Name      string    `json:"name"`
	Up        bool      `json:"up"`
	State     string    `json:"state"`          // up | down | unchecked (no OPTIONS answered or failed yet) | unmonitored (no keepalive)
	Since     time.Time `json:"since,omitzero"` // when the state last changed (as the unit saw it)
	Failures  int       `json:"failures"`       // OPTIONS failures in a row
	LastCheck time.Time `json:"last_check,omitzero"`
	LastError string    `json:"last_error,omitempty"`
	Keepalive bool      `json:"keepalive"`
	// Targets are the peer's resolved targets in failover order, each with
	// its own keepalive state (keepalive.Monitor.States); empty when the
	// SIP layer reports one state per peer.
	Targets []PeerTarget `json:"targets,omitempty"`
}

// PeerTarget is the state of one target of a peer: one resolved address of
// one of its names.
type PeerTarget struct {
	Host       string    `json:"host"`    // the name it was resolved from
	Address    string    `json:"address"` // ip:port
	Transport  string    `json:"transport"`
	Up         bool      `json:"up"`
	LastStatus int       `json:"last_status,omitempty"` // answer to the last OPTIONS; 0 = none
	LastError  string    `json:"last_error,omitempty"`
	OutUntil   time.Time `json:"out_until,omitzero"` // kept out by Retry-After until then
	// HeldUntil: a peer without keepalive whose target a call found dead
	// tries it after its other targets until then.
	HeldUntil time.Time `json:"held_until,omitzero"`
}

// peerSampleInterval is how often the service reads the peer states to
// notice changes between status requests.
const peerSampleInterval = time.Second

// PeerChanges remembers each peer's previous state so that the status can
// say since when a peer is up or down: the SIP layer keeps only the
// current state. A change is dated by the sample that first saw it
// (the service samples every second once a source is set — the unit sets
// it when it is put together — and every status read samples too), so the
// time is exact to about a second. The zero
// value is ready; it is safe for concurrent use.
type PeerChanges struct {
	mu   sync.Mutex
	seen map[string]peerSeen
	src  func() []PeerStatus
	last []PeerStatus // the latest Observe's result, for the alarms
}

type peerSeen struct {
	state string
	since time.Time
}

// Follow sets where the peer states come from; the service samples it
// every second while it runs.
func (p *PeerChanges) Follow(src func() []PeerStatus) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.src = src
}

// Following reports whether a source is set.
func (p *PeerChanges) Following() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.src != nil
}

// sample reads the source, if any, and notes changes.
func (p *PeerChanges) sample(now time.Time) {
	p.mu.Lock()
	src := p.src
	p.mu.Unlock()
	if src != nil {
		p.Observe(src(), now)
	}
}

// Observe notes the states in, fills State and Since, and returns them
// sorted by name. A peer seen for the first time gets the time of that
// first sight; peers no longer listed are forgotten.
func (p *PeerChanges) Observe(in []PeerStatus, now time.Time) []PeerStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seen == nil {
		p.seen = make(map[string]peerSeen)
	}
	out := make([]PeerStatus, 0, len(in))
	names := make(map[string]bool, len(in))
	for _, st := range in {
		names[st.Name] = true
		st.State = peerState(st)
		s, ok := p.seen[st.Name]
		if !ok || s.state != st.State {
			s = peerSeen{state: st.State, since: now}
			p.seen[st.Name] = s
		}
		st.Since = s.since
		out = append(out, st)
	}
	for n := range p.seen {
		if !names[n] {
			delete(p.seen, n)
		}
	}
	slices.SortFunc(out, func(a, b PeerStatus) int { return strings.Compare(a.Name, b.Name) })
	p.last = out
	return out
}

// Peer states (PeerStatus.State).
const (
	PeerUp          = "up"
	PeerDown        = "down"
	PeerUnchecked   = "unchecked"   // keepalive on, no check finished yet
	PeerUnmonitored = "unmonitored" // no OPTIONS keepalive: assumed reachable
)

// peerState words the SIP layer's state: a peer is not "up" before a
// check ran (the SIP layer routes to it meanwhile, but nobody saw it answer).
func peerState(st PeerStatus) string {
	switch {
	case !st.Keepalive && st.Up:
		return PeerUnmonitored
	case st.LastCheck.IsZero() && st.Up:
		return PeerUnchecked
	case st.Up:
		return PeerUp
	}
	return PeerDown
}

// Last returns the states the latest sample saw (sorted by name).
func (p *PeerChanges) Last() []PeerStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.last)
}
