package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// The shared audit log in etcd is bounded: etcd holds its key space in
// memory and refuses writes beyond its quota (2 GiB by default), so the
// oldest entries go once there are more than AuditMaxEntries or they are
// older than AuditMaxAge.
const (
	DefaultAuditMaxEntries = 10000
	DefaultAuditMaxAge     = 365 * 24 * time.Hour
)

// Audit appends an entry; a zero Time is set to now. Entries are ordered
// by etcd's revision, the order in which the cluster took them.
func (e *Etcd) Audit(ctx context.Context, a AuditEntry) error {
	if a.Time.IsZero() {
		a.Time = time.Now()
	}
	a.Time = a.Time.UTC()
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	key := fmt.Sprintf("%saudit/%020d-%s", e.ns, time.Now().UnixNano(), hex.EncodeToString(rnd[:]))
	cctx, cancel := e.opCtx(ctx)
	defer cancel()
	if _, err := e.cli.Put(cctx, key, string(b)); err != nil {
		return e.wrap("audit", a.Action, err)
	}
	// The entry is written; a failed pruning is retried by the next one.
	_ = e.pruneAudit(cctx)
	return nil
}

// pruneAudit drops the entries older than the age bound, then the oldest
// beyond the count bound. Keys begin with the writing time in nanoseconds,
// so both are one range deletion from the start of the prefix.
func (e *Etcd) pruneAudit(ctx context.Context) error {
	p := e.ns + "audit/"
	cut := fmt.Sprintf("%s%020d", p, time.Now().Add(-e.auditAge).UnixNano())
	if _, err := e.cli.Delete(ctx, p, clientv3.WithRange(cut)); err != nil {
		return e.wrap("prune", "audit log", err)
	}
	n, err := e.cli.Get(ctx, p, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return e.wrap("prune", "audit log", err)
	}
	over := n.Count - int64(e.auditMax)
	if over <= 0 {
		return nil
	}
	old, err := e.cli.Get(ctx, p, clientv3.WithPrefix(), clientv3.WithKeysOnly(),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend), clientv3.WithLimit(over))
	if err != nil {
		return e.wrap("prune", "audit log", err)
	}
	if len(old.Kvs) == 0 {
		return nil
	}
	last := string(old.Kvs[len(old.Kvs)-1].Key)
	if _, err := e.cli.Delete(ctx, p, clientv3.WithRange(last+"\x00")); err != nil {
		return e.wrap("prune", "audit log", err)
	}
	return nil
}

// AuditLog returns the newest entries first, at most limit (all when limit <= 0).
func (e *Etcd) AuditLog(ctx context.Context, limit int) ([]AuditEntry, error) {
	cctx, cancel := e.opCtx(ctx)
	defer cancel()
	opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByModRevision, clientv3.SortDescend)}
	if limit > 0 {
		opts = append(opts, clientv3.WithLimit(int64(limit)))
	}
	resp, err := e.cli.Get(cctx, e.ns+"audit/", opts...)
	if err != nil {
		return nil, e.wrap("read", "audit log", err)
	}
	out := make([]AuditEntry, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var a AuditEntry
		if err := json.Unmarshal(kv.Value, &a); err != nil {
			a = AuditEntry{Action: "unreadable", Detail: fmt.Sprintf("%s: %v", kv.Key, err)}
		}
		out = append(out, a)
	}
	return out, nil
}
