// Package store is Palisade's persistence: one embedded SQLite database in
// the data directory, or, for a cluster of units, etcd for what the units
// share (Split: etcd plus each unit's own SQLite for call records and the
// admin listener's certificate). Callers see a narrow key-value interface
// with transactions, watches, keys that expire and an append-only audit log.
//
// Key layout (every feature package owns its prefix):
//
//	config/preliminary         the preliminary document (JSON)
//	config/saved/<n>           saved version n (JSON + metadata), n zero-padded
//	config/state               lifecycle state (which version runs, pending apply)
//	pki/...                    keys, certificates, requests, CAs, CRLs (layout: pki package);
//	                           material is never overwritten in place, so preliminary
//	                           and running configurations can name different material
//	admin/tokens/<id>          API tokens (admin package)
//	registrar/<aor>            registrar bindings
//	cdr/<rfc3339nano>-<id>     call detail records (observe package)
//	cluster/units/<name>       a cluster unit's membership and load (leased; cluster package)
//	cluster/applies/<id>/<u>   unit u's report on cluster apply id (lifecycle package)
//	cluster/digest-nonce-key   the registrar's nonce secret shared by a cluster's units
package store

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned when a key does not exist.
var ErrNotFound = errors.New("not found")

// KV is one key and its value.
type KV struct {
	Key   string
	Value []byte
}

// Reader reads keys.
type Reader interface {
	Get(ctx context.Context, key string) ([]byte, error)
	// List returns the keys with the prefix in ascending key order.
	List(ctx context.Context, prefix string) ([]KV, error)
}

// Writer changes keys.
type Writer interface {
	Put(ctx context.Context, key string, value []byte) error
	Delete(ctx context.Context, key string) error
}

// Tx is a transaction: all of its writes land together or none do.
type Tx interface {
	Reader
	Writer
}

// AuditEntry records one change: who, when, what.
type AuditEntry struct {
	Time   time.Time `json:"time"`
	Author string    `json:"author"`
	Action string    `json:"action"` // e.g. "config.apply", "cert.new"
	Detail string    `json:"detail"`
}

// EventType says what happened to a watched key.
type EventType int

// Kinds of Event.
const (
	// EventPut: the key was written (Value is its new value).
	EventPut EventType = iota + 1
	// EventDelete: the key was deleted or its time to live ran out.
	EventDelete
	// EventReset: changes may have been missed (the watch had to start
	// again, e.g. after etcd compacted its history); read the prefix again.
	EventReset
)

func (t EventType) String() string {
	switch t {
	case EventPut:
		return "put"
	case EventDelete:
		return "delete"
	case EventReset:
		return "reset"
	}
	return "unknown"
}

// Event is one change seen by Watch.
type Event struct {
	Type  EventType
	Key   string
	Value []byte
}

// Revisioned is implemented by the transactions of a store whose reads
// carry a revision that only grows with every change (etcd), so that a
// reader can tell an answer older than one it already had.
type Revisioned interface {
	// Revision is the store revision the transaction read at (0 before
	// its first read).
	Revision() int64
}

// ErrConflict is returned by Update when the transaction kept colliding
// with concurrent writers (etcd) and gave up.
var ErrConflict = errors.New("store: the transaction kept conflicting with concurrent changes")

// Store is everything the rest of Palisade may ask of persistence.
type Store interface {
	Reader
	Writer
	// Update runs fn in one transaction; an error from fn rolls it back.
	// fn may run more than once (etcd retries it on a conflict), so it
	// must only read and write through tx and reset what it captures.
	Update(ctx context.Context, fn func(tx Tx) error) error
	// PutTTL sets key to value for ttl: afterwards the key is gone (as if
	// deleted, with an EventDelete to watchers) unless written again. A
	// plain Put of the key makes it permanent.
	PutTTL(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Watch reports the changes to keys with the prefix made after it
	// returns, in order, until ctx ends; then the channel is closed. The
	// events of one store are seen by all its watchers; SQLite and Memory
	// see only the changes made through the same handle.
	Watch(ctx context.Context, prefix string) (<-chan Event, error)
	// Audit appends an entry to the audit log.
	Audit(ctx context.Context, e AuditEntry) error
	// AuditLog returns the newest entries first, at most limit.
	AuditLog(ctx context.Context, limit int) ([]AuditEntry, error)
	Close() error
}
