package takeover

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"
)

// memWriter is a Writer in memory that logs every operation.
type memWriter struct {
	mu   sync.Mutex
	kv   map[string]string
	ops  []string
	fail bool
}

func (m *memWriter) PutTTL(_ context.Context, key string, v []byte, _ time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return errors.New("etcd unreachable")
	}
	m.kv[key] = string(v)
	m.ops = append(m.ops, "put "+key+" "+string(v))
	return nil
}

func (m *memWriter) Delete(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return errors.New("etcd unreachable")
	}
	delete(m.kv, key)
	m.ops = append(m.ops, "delete "+key)
	return nil
}

func (m *memWriter) take() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	ops := m.ops
	m.ops = nil
	return ops
}

func rec(s string) func() ([]byte, error) { return func() ([]byte, error) { return []byte(s), nil } }

func TestKeeper(t *testing.T) {
	ctx := context.Background()
	w := &memWriter{kv: map[string]string{}}
	k := NewKeeper(w, slog.New(slog.NewTextHandler(io.Discard, nil)))
	steps := []struct {
		name string
		do   func()
		want []string
	}{
		{"inactive: nothing kept", func() { k.Changed("c0", rec("v0")); k.Ended("c0") }, nil},
		{"changes coalesce into one write", func() {
			k.SetActive(true)
			k.Changed("c1", rec("v1"))
			k.Changed("c1", rec("v2"))
		}, []string{"put ha/calls/c1 v2"}},
		{"a wrap writes the record again", func() { k.Touch("c1"); k.Touch("c1") }, []string{"put ha/calls/c1 v2"}},
		{"touch of an unknown call: nothing", func() { k.Touch("nope") }, nil},
		{"end deletes; a late change does not bring it back", func() {
			k.Ended("c1")
			k.Changed("c1", rec("late"))
		}, []string{"delete ha/calls/c1"}},
		{"end of a call never kept: nothing", func() { k.Ended("c9") }, nil},
		{"released: neither written nor deleted", func() {
			k.Changed("c2", rec("x"))
			k.Release("c2")
			k.Ended("c2")
		}, nil},
	}
	for _, s := range steps {
		s.do()
		k.flush(ctx)
		if got := w.take(); !slices.Equal(got, s.want) {
			t.Fatalf("%s: %q, want %q", s.name, got, s.want)
		}
	}
	// A failed write is tried again; a newer change replaces it.
	w.fail = true
	k.Changed("c3", rec("old"))
	k.flush(ctx)
	w.fail = false
	k.flush(ctx)
	if got := w.take(); !slices.Equal(got, []string{"put ha/calls/c3 old"}) {
		t.Fatalf("retry after a failed write: %q", got)
	}
	if len(w.kv) != 1 {
		t.Fatalf("left in the store: %v", w.kv)
	}
}
