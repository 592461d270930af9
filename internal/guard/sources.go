package guard

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"time"
)

// maxPerShard bounds the per-source state: a flood from many forged
// sources can fill it, but never grow it (64 shards × 4096 entries).
const maxPerShard = 4096

// srcState is one source's counters.
type srcState struct {
	winStart  time.Time // rate window
	n         int
	authStart time.Time // authentication window
	auths     int       // requests with credentials
	fails     int       // failures reported by AuthFailed
	blocked   time.Time // ignored until
}

type srcShard struct {
	mu sync.Mutex
	m  map[netip.Addr]*srcState
}

// sourceTable is the pike-like table, sharded by source address so that
// requests from different sources rarely share a lock.
type sourceTable struct {
	seed   maphash.Seed
	shards [64]srcShard
}

func (t *sourceTable) init() {
	t.seed = maphash.MakeSeed()
	for i := range t.shards {
		t.shards[i].m = make(map[netip.Addr]*srcState)
	}
}

func (t *sourceTable) shard(a netip.Addr) *srcShard {
	b := a.As16()
	return &t.shards[maphash.Bytes(t.seed, b[:])%uint64(len(t.shards))]
}

// get returns a's state, making room when the shard is full; nil when the
// shard is full of live entries (the source is then not tracked).
func (sh *srcShard) get(a netip.Addr, now time.Time) *srcState {
	st := sh.m[a]
	if st != nil {
		return st
	}
	if len(sh.m) >= maxPerShard {
		sh.pruneLocked(now)
		if len(sh.m) >= maxPerShard {
			return nil
		}
	}
	st = &srcState{winStart: now, authStart: now}
	sh.m[a] = st
	return st
}

// pruneLocked forgets sources that are neither blocked nor in a current
// window; it returns how many blocked sources remain.
func (sh *srcShard) pruneLocked(now time.Time) int {
	n := 0
	for a, st := range sh.m {
		switch {
		case now.Before(st.blocked):
			n++
		case now.Sub(st.winStart) > rateWindow && now.Sub(st.authStart) > authWindow:
			delete(sh.m, a)
		}
	}
	return n
}

// hit counts one request from a. It returns a Drop verdict and true when a
// is blocked (already, or from this request on).
func (t *sourceTable) hit(a netip.Addr, now time.Time, p *policy, creds bool) (Verdict, bool) {
	sh := t.shard(a)
	sh.mu.Lock()
	st := sh.get(a, now)
	if st == nil {
		sh.mu.Unlock()
		return Verdict{}, false
	}
	if now.Before(st.blocked) {
		sh.mu.Unlock()
		return Verdict{Action: Drop, Cause: "blocked"}, true
	}
	if now.Sub(st.winStart) >= rateWindow {
		st.winStart, st.n = now, 0
	}
	st.n++
	cause := ""
	if p.srcLimit > 0 && st.n > p.srcLimit {
		cause = "rate"
	}
	if creds {
		if now.Sub(st.authStart) >= authWindow {
			st.authStart, st.auths, st.fails = now, 0, 0
		}
		if st.auths++; st.auths > authAttempts {
			cause = "auth"
		}
	}
	if cause == "" {
		sh.mu.Unlock()
		return Verdict{}, false
	}
	st.blocked = now.Add(p.blockTime)
	st.n, st.auths, st.fails = 0, 0, 0
	sh.mu.Unlock()
	blocks.WithLabelValues(cause).Inc()
	blockedSources.Inc()
	return Verdict{Action: Drop, Cause: cause}, true
}

// authFailed counts a failed authentication; true when it starts a block.
func (t *sourceTable) authFailed(a netip.Addr, now time.Time, p *policy) bool {
	sh := t.shard(a)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	st := sh.get(a, now)
	if st == nil || now.Before(st.blocked) {
		return false
	}
	if now.Sub(st.authStart) >= authWindow {
		st.authStart, st.auths, st.fails = now, 0, 0
	}
	if st.fails++; st.fails < authFailures {
		return false
	}
	st.blocked = now.Add(p.blockTime)
	st.fails = 0
	blockedSources.Inc()
	return true
}

func (t *sourceTable) blocked(a netip.Addr, now time.Time) bool {
	sh := t.shard(a)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	st := sh.m[a]
	return st != nil && now.Before(st.blocked)
}

// prune forgets idle sources; it returns the number still blocked.
func (t *sourceTable) prune(now time.Time) int {
	n := 0
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		n += sh.pruneLocked(now)
		sh.mu.Unlock()
	}
	return n
}
