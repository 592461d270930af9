package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// Memory is an in-memory Store with the same semantics as SQLite (values are
// copied in and out, List is ordered, Update is all-or-nothing and
// serialised with other writes). Meant for tests of other packages.
type Memory struct {
	wmu   sync.Mutex   // serialises writers: Put, Delete, Update
	mu    sync.RWMutex // guards data and audit
	data  map[string][]byte
	audit []AuditEntry
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory { return &Memory{data: map[string][]byte{}} }

func clone(b []byte) []byte {
	out := make([]byte, len(b))
	copy(out, b)
	return out
}

// Get returns the value of key, or an error wrapping ErrNotFound.
func (m *Memory) Get(_ context.Context, key string) ([]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	v, ok := m.data[key]
	if !ok {
		return nil, fmt.Errorf("%s: %w", key, ErrNotFound)
	}
	return clone(v), nil
}

// List returns the keys with the prefix in ascending key order.
func (m *Memory) List(_ context.Context, prefix string) ([]KV, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []KV
	for k, v := range m.data {
		if strings.HasPrefix(k, prefix) {
			out = append(out, KV{Key: k, Value: clone(v)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Put sets key to value.
func (m *Memory) Put(_ context.Context, key string, value []byte) error {
	if key == "" {
		return errors.New("store: empty key")
	}
	m.wmu.Lock()
	defer m.wmu.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.data[key] = clone(value)
	return nil
}

// Delete removes key; deleting a missing key is not an error.
func (m *Memory) Delete(_ context.Context, key string) error {
	m.wmu.Lock()
	defer m.wmu.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.data, key)
	return nil
}

// memTx sees the committed data plus its own pending writes.
type memTx struct {
	m      *Memory
	writes map[string][]byte // nil value = deleted
}

func (t *memTx) Get(ctx context.Context, key string) ([]byte, error) {
	if v, ok := t.writes[key]; ok {
		if v == nil {
			return nil, fmt.Errorf("%s: %w", key, ErrNotFound)
		}
		return clone(v), nil
	}
	return t.m.Get(ctx, key)
}

func (t *memTx) List(ctx context.Context, prefix string) ([]KV, error) {
	base, _ := t.m.List(ctx, prefix)
	merged := map[string][]byte{}
	for _, kv := range base {
		merged[kv.Key] = kv.Value
	}
	for k, v := range t.writes {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		if v == nil {
			delete(merged, k)
		} else {
			merged[k] = clone(v)
		}
	}
	out := make([]KV, 0, len(merged))
	for k, v := range merged {
		out = append(out, KV{Key: k, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

func (t *memTx) Put(_ context.Context, key string, value []byte) error {
	if key == "" {
		return errors.New("store: empty key")
	}
	t.writes[key] = clone(value)
	return nil
}

func (t *memTx) Delete(_ context.Context, key string) error {
	t.writes[key] = nil
	return nil
}

// Update runs fn in one transaction. As with SQLite, fn must use tx, not the
// store: the store's own writes wait until the transaction ends.
func (m *Memory) Update(ctx context.Context, fn func(tx Tx) error) error {
	m.wmu.Lock()
	defer m.wmu.Unlock()
	tx := &memTx{m: m, writes: map[string][]byte{}}
	if err := fn(tx); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, v := range tx.writes {
		if v == nil {
			delete(m.data, k)
		} else {
			m.data[k] = v
		}
	}
	return nil
}

// Audit appends an entry; a zero Time is set to now.
func (m *Memory) Audit(_ context.Context, e AuditEntry) error {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Time = e.Time.UTC()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.audit = append(m.audit, e)
	return nil
}

// AuditLog returns the newest entries first, at most limit (all when limit <= 0).
func (m *Memory) AuditLog(_ context.Context, limit int) ([]AuditEntry, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []AuditEntry
	for i := len(m.audit) - 1; i >= 0; i-- {
		if limit > 0 && len(out) >= limit {
			break
		}
		out = append(out, m.audit[i])
	}
	return out, nil
}

// Close does nothing; the data is gone with the value.
func (m *Memory) Close() error { return nil }
