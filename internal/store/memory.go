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
	wmu     sync.Mutex   // serialises writers: Put, Delete, Update
	mu      sync.RWMutex // guards data, expires and audit
	data    map[string][]byte
	expires map[string]time.Time // keys written with PutTTL
	audit   []AuditEntry
	hub     hub
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{data: map[string][]byte{}, expires: map[string]time.Time{}}
}

// liveLocked reports whether key exists and has not expired (m.mu held).
func (m *Memory) liveLocked(key string, now time.Time) ([]byte, bool) {
	v, ok := m.data[key]
	if !ok {
		return nil, false
	}
	if exp, ok := m.expires[key]; ok && !now.Before(exp) {
		return nil, false
	}
	return v, true
}

// Get returns the value of key, or an error wrapping ErrNotFound.
func (m *Memory) Get(_ context.Context, key string) ([]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	v, ok := m.liveLocked(key, time.Now())
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
	now := time.Now()
	for k := range m.data {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		if v, ok := m.liveLocked(k, now); ok {
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
	m.data[key] = clone(value)
	delete(m.expires, key)
	m.mu.Unlock()
	m.hub.notify(Event{Type: EventPut, Key: key, Value: value})
	return nil
}

// PutTTL sets key to value until ttl has passed.
func (m *Memory) PutTTL(_ context.Context, key string, value []byte, ttl time.Duration) error {
	if key == "" {
		return errors.New("store: empty key")
	}
	if ttl <= 0 {
		return fmt.Errorf("store: time to live %s is not positive", ttl)
	}
	m.wmu.Lock()
	defer m.wmu.Unlock()
	exp := time.Now().Add(ttl)
	m.mu.Lock()
	m.data[key] = clone(value)
	m.expires[key] = exp
	m.mu.Unlock()
	m.hub.notify(Event{Type: EventPut, Key: key, Value: value})
	time.AfterFunc(ttl, func() { m.expire(key, exp) })
	return nil
}

// expire deletes key if it still carries the expiry exp.
func (m *Memory) expire(key string, exp time.Time) {
	m.wmu.Lock()
	defer m.wmu.Unlock()
	m.mu.Lock()
	if cur, ok := m.expires[key]; !ok || !cur.Equal(exp) {
		m.mu.Unlock()
		return
	}
	delete(m.data, key)
	delete(m.expires, key)
	m.mu.Unlock()
	m.hub.notify(Event{Type: EventDelete, Key: key})
}

// Watch reports the changes under prefix made through m after it returns.
func (m *Memory) Watch(ctx context.Context, prefix string) (<-chan Event, error) {
	return m.hub.watch(ctx, prefix), nil
}

// Delete removes key; deleting a missing key is not an error.
func (m *Memory) Delete(_ context.Context, key string) error {
	m.wmu.Lock()
	defer m.wmu.Unlock()
	m.mu.Lock()
	_, existed := m.liveLocked(key, time.Now())
	delete(m.data, key)
	delete(m.expires, key)
	m.mu.Unlock()
	if existed {
		m.hub.notify(Event{Type: EventDelete, Key: key})
	}
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
	return overlay(base, t.writes, prefix), nil
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
	keys := make([]string, 0, len(tx.writes))
	for k := range tx.writes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var evs []Event
	m.mu.Lock()
	now := time.Now()
	for _, k := range keys {
		v := tx.writes[k]
		if v == nil {
			if _, ok := m.liveLocked(k, now); ok {
				evs = append(evs, Event{Type: EventDelete, Key: k})
			}
			delete(m.data, k)
		} else {
			m.data[k] = v
			evs = append(evs, Event{Type: EventPut, Key: k, Value: v})
		}
		delete(m.expires, k)
	}
	m.mu.Unlock()
	m.hub.notify(evs...)
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
