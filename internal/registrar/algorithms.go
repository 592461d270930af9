package registrar

import (
	"net/netip"
	"sync"
	"time"

	"github.com/palisade-sbc/palisade/internal/sip/digest"
)

// Some phones (libre before 2.x, so the baresip shipped in Debian, and
// other old stacks) give up on the whole 401 when one of its challenges
// names an algorithm they do not know, instead of using the MD5 one
// beside it. The registrar notices such a phone — from the same source
// address, the same user registers again without answering a challenge
// that offered SHA-256 — and from then on offers that source and user MD5
// only, for a day. Phones that understand RFC 8760 never trip this: they
// answer the first challenge.
const (
	unansweredFor = 10 * time.Minute // how long a dual challenge waits for its answer
	md5OnlyFor    = 24 * time.Hour
	maxAlgEntries = 10000 // bounds memory under floods of unanswered challenges
)

type algSource struct {
	ip   netip.Addr
	user string
}

// algMemo remembers which sources get MD5 only.
type algMemo struct {
	now     func() time.Time
	mu      sync.Mutex
	pending map[algSource]time.Time // dual challenge sent, not answered yet
	md5Only map[algSource]time.Time // until
}

func newAlgMemo(now func() time.Time) *algMemo {
	return &algMemo{now: now, pending: make(map[algSource]time.Time), md5Only: make(map[algSource]time.Time)}
}

// challenged records a challenge sent for a REGISTER without credentials
// and returns the algorithms to offer. fellBack is true when this request
// shows that the source cannot answer a SHA-256 challenge.
func (m *algMemo) challenged(ip netip.Addr, user string) (algs []string, fellBack bool) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	src := algSource{ip, user}
	if until, ok := m.md5Only[src]; ok && now.Before(until) {
		return []string{"MD5"}, false
	}
	if at, ok := m.pending[src]; ok && now.Sub(at) < unansweredFor {
		delete(m.pending, src)
		m.bound(now, len(m.md5Only))
		m.md5Only[src] = now.Add(md5OnlyFor)
		return []string{"MD5"}, true
	}
	m.bound(now, len(m.pending))
	m.pending[src] = now
	return digest.Algorithms, false
}

// answered forgets the pending challenge of a registration that answered.
func (m *algMemo) answered(ip netip.Addr, user string) {
	m.mu.Lock()
	delete(m.pending, algSource{ip, user})
	m.mu.Unlock()
}

// bound makes room when a map is full (m.mu held).
func (m *algMemo) bound(now time.Time, n int) {
	if n < maxAlgEntries {
		return
	}
	m.pruneLocked(now)
	if len(m.pending) >= maxAlgEntries {
		clear(m.pending)
	}
	if len(m.md5Only) >= maxAlgEntries {
		clear(m.md5Only)
	}
}

func (m *algMemo) prune() {
	m.mu.Lock()
	m.pruneLocked(m.now())
	m.mu.Unlock()
}

func (m *algMemo) pruneLocked(now time.Time) {
	for k, at := range m.pending {
		if now.Sub(at) >= unansweredFor {
			delete(m.pending, k)
		}
	}
	for k, until := range m.md5Only {
		if !now.Before(until) {
			delete(m.md5Only, k)
		}
	}
}

// challengedAlgs returns ["MD5"] when the source and user get MD5 only,
// else nil (the default algorithms).
func (m *algMemo) challengedAlgs(ip netip.Addr, user string) ([]string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if until, ok := m.md5Only[algSource{ip, user}]; ok && m.now().Before(until) {
		return []string{"MD5"}, true
	}
	return nil, false
}
