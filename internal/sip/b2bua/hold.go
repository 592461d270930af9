package b2bua

import (
	"context"
	"slices"
	"time"
)

// A floating address (docs/ha.md) is served by one unit at a time: the
// other units keep their listeners on it closed (they could not bind them
// anyway while the address is elsewhere) until they own it.

// Hold keeps the listeners of ifaces closed, and opens those of the
// interfaces no longer listed, now (with the configuration last applied)
// and on every apply after.
func (s *Service) Hold(ctx context.Context, ifaces []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	held := map[string]bool{}
	for _, n := range ifaces {
		held[n] = true
	}
	s.held = held
	if s.last == nil {
		return nil // the first Apply reads s.held
	}
	// Under the same lock as the read of s.last: an apply of a newer
	// configuration cannot come between and be undone.
	return s.applyLocked(ctx, s.last)
}

// Abandon forgets the calls with a leg on one of ifaces without ending
// them for their peers (no BYE) and without removing their records: the
// unit that owns the floating addresses now carries them on. It returns
// how many calls it forgot.
func (s *Service) Abandon(ifaces []string) int {
	n := 0
	for _, c := range s.calls.all() {
		c.mu.Lock()
		on := slices.Contains(ifaces, c.leg(0).Interface) || slices.Contains(ifaces, c.leg(1).Interface)
		c.mu.Unlock()
		if !on {
			continue
		}
		if k := s.deps.Keeper; k != nil {
			k.Release(c.st.ID)
		}
		c.end("moved to another unit")
		n++
	}
	return n
}

// Adopting, while on, answers new INVITEs with 503 and Retry-After: 1: a
// takeover restores the calls of the records first, on the ports they
// had, and a new call could take a port one of them still needs. An
// in-dialog request for a call not adopted yet waits until it is (never a
// 481 for a call the unit is about to carry on).
func (s *Service) Adopting(on bool) {
	s.adoptMu.Lock()
	defer s.adoptMu.Unlock()
	switch p := s.adopting.Load(); {
	case on && p == nil:
		ch := make(chan struct{})
		s.adopting.Store(&ch)
	case !on && p != nil:
		s.adopting.Store(nil)
		close(*p)
	}
}

// adoptWait bounds the wait of an in-dialog request for an adoption.
const adoptWait = 10 * time.Second

// waitAdoption waits while calls are being adopted, at most adoptWait, and
// reports whether it waited.
func (s *Service) waitAdoption() bool {
	p := s.adopting.Load()
	if p == nil {
		return false
	}
	select {
	case <-*p:
	case <-time.After(adoptWait):
	}
	return true
}

// Resume takes new calls again after Drain: a planned move of the floating
// addresses drains the unit first, and the unit goes on serving its other
// addresses once the floating ones are elsewhere.
func (s *Service) Resume() { s.draining.Store(false) }
