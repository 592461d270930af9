package observe

import (
	"context"
	"slices"
	"sync"
)

// Status kinds served at /api/v1/status/{kind} and by `palisade status`.
const (
	StatusCalls         = "calls"
	StatusRegistrations = "registrations"
	StatusPeers         = "peers"
	StatusCertificates  = "certificates"
)

// StatusSource is one subsystem's contribution to the unit's status: the
// SIP layer serves registrations and peers, PKI certificates, and so on.
// Status returns data that encodes as JSON (a slice of plain structs, as a
// rule); it must be quick and must not block on the network.
type StatusSource struct {
	Kind   string // one of the Status* kinds, or a new one
	Status func(ctx context.Context) (any, error)
}

// StatusSources is a set of sources, at most one per kind. The zero value
// is ready to use; it is safe for concurrent use.
type StatusSources struct {
	mu   sync.RWMutex
	srcs map[string]StatusSource
}

// Register adds or replaces the source of src.Kind (a subsystem registers
// again after an apply when it built new state).
func (s *StatusSources) Register(src StatusSource) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srcs == nil {
		s.srcs = make(map[string]StatusSource)
	}
	s.srcs[src.Kind] = src
}

// Unregister removes the source of kind.
func (s *StatusSources) Unregister(kind string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.srcs, kind)
}

// Kinds lists the registered kinds, sorted.
func (s *StatusSources) Kinds() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []string
	for k := range s.srcs {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Get returns the source of kind.
func (s *StatusSources) Get(kind string) (StatusSource, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	src, ok := s.srcs[kind]
	return src, ok
}
