package store

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
)

// LocalPrefixes are the keys a unit of a cluster keeps in its own SQLite:
// call records (written at call rate and read locally) and the admin
// listener's generated certificate (its names are the unit's own).
var LocalPrefixes = []string{"cdr/", "admin/tls"}

// Split is the Store of a unit in a cluster: keys under its local prefixes
// go to Local (the unit's SQLite), everything else to Shared (etcd), and so
// do the audit log, watches and transactions of the shared keys.
type Split struct {
	Shared Store
	Local  Store
	local  []string
}

var _ Store = (*Split)(nil)

// NewSplit returns a Split keeping keys under localPrefixes in local.
func NewSplit(shared, local Store, localPrefixes ...string) *Split {
	return &Split{Shared: shared, Local: local, local: localPrefixes}
}

// isLocal reports whether key lives in Local.
func (s *Split) isLocal(key string) bool {
	for _, p := range s.local {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

func (s *Split) pick(key string) Store {
	if s.isLocal(key) {
		return s.Local
	}
	return s.Shared
}

// Get reads key from the side that holds it.
func (s *Split) Get(ctx context.Context, key string) ([]byte, error) {
	return s.pick(key).Get(ctx, key)
}

// List merges both sides when the prefix spans them.
func (s *Split) List(ctx context.Context, prefix string) ([]KV, error) {
	return listSplit(ctx, s, prefix, s.Shared, s.Local)
}

// listSplit lists prefix from shared and local (Readers, so that
// transactions can use it too) and keeps each side's own keys.
func listSplit(ctx context.Context, s *Split, prefix string, shared, local Reader) ([]KV, error) {
	if s.isLocal(prefix) {
		return local.List(ctx, prefix)
	}
	a, err := shared.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	spans := false
	for _, p := range s.local {
		if strings.HasPrefix(p, prefix) {
			spans = true
		}
	}
	if !spans {
		return a, nil
	}
	b, err := local.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	var out []KV
	for _, kv := range a {
		if !s.isLocal(kv.Key) {
			out = append(out, kv)
		}
	}
	for _, kv := range b {
		if s.isLocal(kv.Key) {
			out = append(out, kv)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Put writes key on its side.
func (s *Split) Put(ctx context.Context, key string, value []byte) error {
	return s.pick(key).Put(ctx, key, value)
}

// PutTTL writes key on its side.
func (s *Split) PutTTL(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return s.pick(key).PutTTL(ctx, key, value, ttl)
}

// Delete deletes key on its side.
func (s *Split) Delete(ctx context.Context, key string) error {
	return s.pick(key).Delete(ctx, key)
}

// Watch watches the side of the prefix; a prefix spanning both sides
// watches only the shared keys.
func (s *Split) Watch(ctx context.Context, prefix string) (<-chan Event, error) {
	return s.pick(prefix).Watch(ctx, prefix)
}

// Update runs fn as a transaction on the shared side. Reads of local keys
// go to Local directly, and local writes are committed in one Local
// transaction after the shared one: atomic on each side, not across
// (no caller mixes them).
func (s *Split) Update(ctx context.Context, fn func(tx Tx) error) error {
	var st *splitTx
	err := s.Shared.Update(ctx, func(tx Tx) error {
		st = &splitTx{s: s, shared: tx, writes: map[string][]byte{}}
		return fn(st)
	})
	if err != nil || len(st.writes) == 0 {
		return err
	}
	return s.Local.Update(ctx, func(tx Tx) error {
		for _, k := range st.order {
			v := st.writes[k]
			var err error
			if v == nil {
				err = tx.Delete(ctx, k)
			} else {
				err = tx.Put(ctx, k, v)
			}
			if err != nil {
				return fmt.Errorf("store: local part of a transaction: %w", err)
			}
		}
		return nil
	})
}

// splitTx routes a transaction's operations; local writes are buffered.
type splitTx struct {
	s      *Split
	shared Tx
	writes map[string][]byte // local key → value, nil = delete
	order  []string
}

// localView is the local store as the transaction sees it.
type localView struct{ t *splitTx }

func (l localView) Get(ctx context.Context, key string) ([]byte, error) {
	if v, ok := l.t.writes[key]; ok {
		if v == nil {
			return nil, fmt.Errorf("%s: %w", key, ErrNotFound)
		}
		return clone(v), nil
	}
	return l.t.s.Local.Get(ctx, key)
}

func (l localView) List(ctx context.Context, prefix string) ([]KV, error) {
	base, err := l.t.s.Local.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	return overlay(base, l.t.writes, prefix), nil
}

func (t *splitTx) Get(ctx context.Context, key string) ([]byte, error) {
	if t.s.isLocal(key) {
		return localView{t}.Get(ctx, key)
	}
	return t.shared.Get(ctx, key)
}

func (t *splitTx) List(ctx context.Context, prefix string) ([]KV, error) {
	return listSplit(ctx, t.s, prefix, t.shared, localView{t})
}

func (t *splitTx) write(key string, v []byte) {
	if _, ok := t.writes[key]; !ok {
		t.order = append(t.order, key)
	}
	t.writes[key] = v
}

func (t *splitTx) Put(ctx context.Context, key string, value []byte) error {
	if !t.s.isLocal(key) {
		return t.shared.Put(ctx, key, value)
	}
	if key == "" {
		return fmt.Errorf("store: empty key")
	}
	t.write(key, clone(value))
	return nil
}

func (t *splitTx) Delete(ctx context.Context, key string) error {
	if !t.s.isLocal(key) {
		return t.shared.Delete(ctx, key)
	}
	t.write(key, nil)
	return nil
}

// Audit appends to the shared audit log.
func (s *Split) Audit(ctx context.Context, e AuditEntry) error { return s.Shared.Audit(ctx, e) }

// AuditLog reads the shared audit log.
func (s *Split) AuditLog(ctx context.Context, limit int) ([]AuditEntry, error) {
	return s.Shared.AuditLog(ctx, limit)
}

// Close closes both sides.
func (s *Split) Close() error {
	err := s.Shared.Close()
	if lerr := s.Local.Close(); err == nil {
		err = lerr
	}
	return err
}
