package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

const (
	// maxAttempts bounds how often Update runs fn again after a conflict.
	maxAttempts = 30
	// maxCompares leaves room under etcd's default --max-txn-ops (128).
	maxCompares = 120
	// maxWrites is etcd's default --max-txn-ops.
	maxWrites = 128
)

// etcdTx is software transactional memory over etcd, like
// client/v3/concurrency's STM but with List: every read happens at one
// revision (the first read's), writes are buffered, and the commit is one
// etcd transaction on the condition that nothing read has changed since:
// each key read by Get still has the ModRevision it had (0 = still
// missing), each listed range has no key changed after the read revision,
// and each listed key still exists unchanged (so that a delete is seen).
type etcdTx struct {
	e      *Etcd
	rev    int64            // read revision; 0 until the first read
	reads  map[string]int64 // key → ModRevision seen (0 = missing)
	ranges map[string]bool  // listed prefixes
	listed map[string]int64 // keys seen by List → ModRevision
	writes map[string][]byte
}

// Revision is the etcd revision the transaction reads at.
func (t *etcdTx) Revision() int64 { return t.rev }

func (t *etcdTx) Get(ctx context.Context, key string) ([]byte, error) {
	if v, ok := t.writes[key]; ok {
		if v == nil {
			return nil, fmt.Errorf("%s: %w", key, ErrNotFound)
		}
		return clone(v), nil
	}
	v, mod, rev, err := t.e.get(ctx, key, t.rev)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if t.rev == 0 {
		t.rev = rev
	}
	t.reads[key] = mod
	return v, err
}

func (t *etcdTx) List(ctx context.Context, prefix string) ([]KV, error) {
	base, mods, rev, err := t.e.list(ctx, prefix, t.rev)
	if err != nil {
		return nil, err
	}
	if t.rev == 0 {
		t.rev = rev
	}
	t.ranges[prefix] = true
	for i, kv := range base {
		t.listed[kv.Key] = mods[i]
	}
	return overlay(base, t.writes, prefix), nil
}

func (t *etcdTx) Put(_ context.Context, key string, value []byte) error {
	if key == "" {
		return errors.New("store: empty key")
	}
	t.writes[key] = clone(value)
	return nil
}

func (t *etcdTx) Delete(_ context.Context, key string) error {
	t.writes[key] = nil
	return nil
}

// commit tries to write; ok is false on a conflict.
func (t *etcdTx) commit(ctx context.Context) (ok bool, err error) {
	if len(t.writes) == 0 {
		return true, nil // read-only: the reads were one consistent snapshot
	}
	if len(t.writes) > maxWrites {
		return false, fmt.Errorf("store: a transaction of %d writes is larger than etcd allows (%d)", len(t.writes), maxWrites)
	}
	var cmps []clientv3.Cmp
	for k, mod := range t.reads {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(t.e.k(k)), "=", mod))
	}
	for p := range t.ranges {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(t.e.k(p)), "<", t.rev+1).WithPrefix())
	}
	if len(cmps)+len(t.listed) <= maxCompares {
		for k, mod := range t.listed {
			if _, dup := t.reads[k]; !dup {
				cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(t.e.k(k)), "=", mod))
			}
		}
	}
	// Beyond maxCompares a listed key deleted concurrently goes unseen;
	// the ranges listed in transactions today (saved versions, PKI
	// material) are never deleted from.
	if len(cmps) > maxCompares {
		return false, fmt.Errorf("store: a transaction reading %d keys is larger than etcd allows", len(cmps))
	}
	keys := make([]string, 0, len(t.writes))
	for k := range t.writes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	ops := make([]clientv3.Op, 0, len(keys))
	for _, k := range keys {
		if v := t.writes[k]; v == nil {
			ops = append(ops, clientv3.OpDelete(t.e.k(k)))
		} else {
			ops = append(ops, clientv3.OpPut(t.e.k(k), string(v)))
		}
	}
	cctx, cancel := t.e.opCtx(ctx)
	defer cancel()
	resp, err := t.e.cli.Txn(cctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		return false, t.e.wrap("commit", "transaction", err)
	}
	return resp.Succeeded, nil
}

// Update runs fn as an etcd transaction, running it again (up to
// maxAttempts times) when a concurrent writer changed what it read; then
// it returns an error wrapping ErrConflict.
func (e *Etcd) Update(ctx context.Context, fn func(tx Tx) error) error {
	for attempt := 0; attempt < maxAttempts; attempt++ {
		t := &etcdTx{e: e, reads: map[string]int64{}, ranges: map[string]bool{},
			listed: map[string]int64{}, writes: map[string][]byte{}}
		if err := fn(t); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		ok, err := t.commit(ctx)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-time.After(jitter(attempt)):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return ErrConflict
}
