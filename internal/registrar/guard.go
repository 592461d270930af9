package registrar

import (
	"net/netip"
	"sync"
	"time"
)

// Lockout policy for wrong passwords. A source that fails too often for one
// user, or for many users (a password or user scanner), is answered 403
// without looking at its credentials until the lockout ends.
const (
	failWindow      = time.Minute
	failsPerUser    = 5  // failures per source and user within failWindow
	failsPerSource  = 20 // failures per source, any user, within failWindow
	lockoutDuration = 5 * time.Minute
	maxGuardEntries = 20000 // bounds memory under floods from many sources
)

type guardKey struct {
	addr netip.Addr
	user string // "" = the source as a whole
}

type guardState struct {
	start  time.Time // of the current window
	fails  int
	locked time.Time // locked until
}

// guard counts authentication failures per source and user.
type guard struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[guardKey]*guardState
}

func newGuard(now func() time.Time) *guard {
	return &guard{now: now, m: make(map[guardKey]*guardState)}
}

// locked reports whether addr is locked out for user.
func (g *guard) locked(addr netip.Addr, user string) bool {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, k := range []guardKey{{addr, user}, {addr, ""}} {
		if st := g.m[k]; st != nil && now.Before(st.locked) {
			return true
		}
	}
	return false
}

// fail records a failure; it returns true when this failure starts a
// lockout.
func (g *guard) fail(addr netip.Addr, user string) bool {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.m) >= maxGuardEntries {
		g.pruneLocked(now)
		if len(g.m) >= maxGuardEntries {
			// Still full of live entries: forget those not locked out.
			for k, st := range g.m {
				if !now.Before(st.locked) {
					delete(g.m, k)
				}
			}
		}
	}
	started := false
	for _, c := range []struct {
		k     guardKey
		limit int
	}{{guardKey{addr, user}, failsPerUser}, {guardKey{addr, ""}, failsPerSource}} {
		st := g.m[c.k]
		if st == nil {
			st = &guardState{start: now}
			g.m[c.k] = st
		}
		if now.Sub(st.start) > failWindow {
			st.start, st.fails = now, 0
		}
		st.fails++
		if st.fails >= c.limit && !now.Before(st.locked) {
			st.locked = now.Add(lockoutDuration)
			st.start, st.fails = now, 0
			started = true
		}
	}
	return started
}

// success forgets the failures of addr for user.
func (g *guard) success(addr netip.Addr, user string) {
	g.mu.Lock()
	delete(g.m, guardKey{addr, user})
	g.mu.Unlock()
}

func (g *guard) prune() {
	now := g.now()
	g.mu.Lock()
	g.pruneLocked(now)
	g.mu.Unlock()
}

func (g *guard) pruneLocked(now time.Time) {
	for k, st := range g.m {
		if now.Sub(st.start) > failWindow && !now.Before(st.locked) {
			delete(g.m, k)
		}
	}
}
