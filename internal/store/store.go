// Package store is Palisade's persistence: one embedded SQLite database in
// the data directory. Callers see a narrow key-value interface with
// transactions and an append-only audit log, so that a clustered store (etcd)
// can replace it later without touching the callers.
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

// Store is everything the rest of Palisade may ask of persistence.
type Store interface {
	Reader
	Writer
	// Update runs fn in one transaction; an error from fn rolls it back.
	Update(ctx context.Context, fn func(tx Tx) error) error
	// Audit appends an entry to the audit log.
	Audit(ctx context.Context, e AuditEntry) error
	// AuditLog returns the newest entries first, at most limit.
	AuditLog(ctx context.Context, limit int) ([]AuditEntry, error)
	Close() error
}
