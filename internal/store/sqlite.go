package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// FileName is the database file inside the data directory.
const FileName = "palisade.db"

// SQLite is the Store of a single unit: one SQLite database in WAL mode with
// synchronous=FULL, so that a committed transaction survives a kill -9 or a
// power cut. It is safe for concurrent use.
type SQLite struct {
	db   *sql.DB
	path string

	// wmu orders this handle's writes with their watch events.
	wmu sync.Mutex
	hub hub

	sweepMu   sync.Mutex
	sweeping  bool // the expiry sweeper runs
	stopSweep chan struct{}
	sweepDone chan struct{}
}

var _ Store = (*SQLite)(nil)

// Open opens (creating when needed) DIR/palisade.db and brings its schema up
// to date. The directory is created with mode 0700: it holds private keys.
func Open(dir string) (*SQLite, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: create data directory: %w", err)
	}
	path := filepath.Join(dir, FileName)
	q := url.Values{}
	// busy_timeout lets a second process (the CLI acting on the data
	// directory) wait for the unit's transaction instead of failing at once.
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	// Write transactions take the write lock when they begin, so two of them
	// never deadlock upgrading from a read lock.
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(4)
	db.SetConnMaxIdleTime(time.Minute)
	s := &SQLite{db: db, path: path}
	if err := s.migrate(context.Background()); err != nil {
		db.Close()
		return nil, err
	}
	// The file holds key material: nobody but the owner may read it.
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			db.Close()
			return nil, fmt.Errorf("store: restrict %s: %w", p, err)
		}
	}
	return s, nil
}

// Path is the database file.
func (s *SQLite) Path() string { return s.path }

// migrations are applied in order, each in its own transaction, and recorded
// in schema_migrations. Never edit a released migration: append a new one.
var migrations = []string{
	1: `CREATE TABLE kv (
		key   TEXT PRIMARY KEY NOT NULL,
		value BLOB NOT NULL
	) WITHOUT ROWID;
	CREATE TABLE audit (
		id     INTEGER PRIMARY KEY AUTOINCREMENT,
		time   TEXT NOT NULL,
		author TEXT NOT NULL,
		action TEXT NOT NULL,
		detail TEXT NOT NULL
	);`,
	// expires: Unix nanoseconds after which a PutTTL key is gone; NULL for
	// keys that never expire.
	2: `ALTER TABLE kv ADD COLUMN expires INTEGER;
	CREATE INDEX kv_expires ON kv(expires) WHERE expires IS NOT NULL;`,
}

func (s *SQLite) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("store: create schema_migrations: %w", err)
	}
	for v := 1; v < len(migrations); v++ {
		err := s.tx(ctx, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, v).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations(version, applied_at) VALUES(?, ?)`,
				v, time.Now().UTC().Format(time.RFC3339Nano))
			return err
		})
		if err != nil {
			return fmt.Errorf("store: migration %d: %w", v, err)
		}
	}
	return nil
}

// SchemaVersion is the highest migration applied to the database.
func (s *SQLite) SchemaVersion(ctx context.Context) (int, error) {
	var v sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&v)
	return int(v.Int64), err
}

// IntegrityCheck runs PRAGMA integrity_check and returns an error unless the
// database reports "ok".
func (s *SQLite) IntegrityCheck(ctx context.Context) error {
	rows, err := s.db.QueryContext(ctx, `PRAGMA integrity_check`)
	if err != nil {
		return fmt.Errorf("store: integrity check: %w", err)
	}
	defer rows.Close()
	var msgs []string
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			return err
		}
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(msgs) != 1 || msgs[0] != "ok" {
		return fmt.Errorf("store: integrity check failed: %v", msgs)
	}
	return nil
}

func (s *SQLite) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// querier is what both *sql.DB and *sql.Tx offer.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func get(ctx context.Context, q querier, key string) ([]byte, error) {
	var v []byte
	err := q.QueryRowContext(ctx, `SELECT value FROM kv WHERE key = ? AND (expires IS NULL OR expires > ?)`,
		key, time.Now().UnixNano()).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: get %s: %w", key, err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

func list(ctx context.Context, q querier, prefix string) ([]KV, error) {
	var rows *sql.Rows
	var err error
	// A range scan on the primary key; keys compare as bytes (BINARY collation).
	now := time.Now().UnixNano()
	if end, ok := prefixEnd(prefix); ok {
		rows, err = q.QueryContext(ctx, `SELECT key, value FROM kv WHERE key >= ? AND key < ?
			AND (expires IS NULL OR expires > ?) ORDER BY key`, prefix, end, now)
	} else {
		rows, err = q.QueryContext(ctx, `SELECT key, value FROM kv WHERE key >= ?
			AND (expires IS NULL OR expires > ?) ORDER BY key`, prefix, now)
	}
	if err != nil {
		return nil, fmt.Errorf("store: list %s: %w", prefix, err)
	}
	defer rows.Close()
	var out []KV
	for rows.Next() {
		var kv KV
		if err := rows.Scan(&kv.Key, &kv.Value); err != nil {
			return nil, fmt.Errorf("store: list %s: %w", prefix, err)
		}
		if kv.Value == nil {
			kv.Value = []byte{}
		}
		out = append(out, kv)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list %s: %w", prefix, err)
	}
	return out, nil
}

// prefixEnd is the smallest string greater than every string with the
// prefix; ok is false when there is none (empty prefix or all 0xff).
func prefixEnd(prefix string) (string, bool) {
	b := []byte(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}

const putSQL = `INSERT INTO kv(key, value, expires) VALUES(?, ?, ?)
		ON CONFLICT(key) DO UPDATE SET value = excluded.value, expires = excluded.expires`

// put writes key; expires 0 means never.
func put(ctx context.Context, q querier, key string, value []byte, expires int64) error {
	if key == "" {
		return errors.New("store: empty key")
	}
	if value == nil {
		value = []byte{}
	}
	_, err := q.ExecContext(ctx, putSQL, key, value, sql.NullInt64{Int64: expires, Valid: expires != 0})
	if err != nil {
		return fmt.Errorf("store: put %s: %w", key, err)
	}
	return nil
}

// del deletes key and reports whether it existed.
func del(ctx context.Context, q querier, key string) (bool, error) {
	res, err := q.ExecContext(ctx, `DELETE FROM kv WHERE key = ?`, key)
	if err != nil {
		return false, fmt.Errorf("store: delete %s: %w", key, err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// Get returns the value of key, or an error wrapping ErrNotFound.
func (s *SQLite) Get(ctx context.Context, key string) ([]byte, error) { return get(ctx, s.db, key) }

// List returns the keys with the prefix in ascending key order.
func (s *SQLite) List(ctx context.Context, prefix string) ([]KV, error) {
	return list(ctx, s.db, prefix)
}

// Put sets key to value (durably, when it returns).
func (s *SQLite) Put(ctx context.Context, key string, value []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := put(ctx, s.db, key, value, 0); err != nil {
		return err
	}
	s.hub.notify(Event{Type: EventPut, Key: key, Value: value})
	return nil
}

// PutTTL sets key to value until ttl has passed. Expired keys are not read;
// a sweeper of this handle deletes them about every second and tells the
// watchers.
func (s *SQLite) PutTTL(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("store: time to live %s is not positive", ttl)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := put(ctx, s.db, key, value, time.Now().Add(ttl).UnixNano()); err != nil {
		return err
	}
	s.hub.notify(Event{Type: EventPut, Key: key, Value: value})
	s.startSweeper()
	return nil
}

func (s *SQLite) startSweeper() {
	s.sweepMu.Lock()
	defer s.sweepMu.Unlock()
	if s.sweeping {
		return
	}
	s.sweeping = true
	s.stopSweep, s.sweepDone = make(chan struct{}), make(chan struct{})
	go func(stop, done chan struct{}) {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				s.sweep(context.Background())
			}
		}
	}(s.stopSweep, s.sweepDone)
}

// sweep deletes the expired keys.
func (s *SQLite) sweep(ctx context.Context) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	rows, err := s.db.QueryContext(ctx, `DELETE FROM kv WHERE expires IS NOT NULL AND expires <= ? RETURNING key`,
		time.Now().UnixNano())
	if err != nil {
		return // tried again in a second
	}
	var evs []Event
	for rows.Next() {
		var k string
		if rows.Scan(&k) == nil {
			evs = append(evs, Event{Type: EventDelete, Key: k})
		}
	}
	rows.Close()
	s.hub.notify(evs...)
}

// Watch reports the changes under prefix made through this handle after it
// returns (a second handle, such as the CLI's on a stopped unit, is not
// seen).
func (s *SQLite) Watch(ctx context.Context, prefix string) (<-chan Event, error) {
	return s.hub.watch(ctx, prefix), nil
}

// Delete removes key; deleting a missing key is not an error.
func (s *SQLite) Delete(ctx context.Context, key string) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	existed, err := del(ctx, s.db, key)
	if existed {
		s.hub.notify(Event{Type: EventDelete, Key: key})
	}
	return err
}

// sqliteTx remembers its writes for the watchers.
type sqliteTx struct {
	tx  *sql.Tx
	hub *hub
	put *sql.Stmt // prepared at the first Put; the transaction's end closes it
	evs []Event
}

func (t *sqliteTx) Get(ctx context.Context, key string) ([]byte, error) { return get(ctx, t.tx, key) }
func (t *sqliteTx) List(ctx context.Context, prefix string) ([]KV, error) {
	return list(ctx, t.tx, prefix)
}

// Put prepares the statement once per transaction: a batch of call records
// is hundreds of puts, and preparing each was a third of their cost.
func (t *sqliteTx) Put(ctx context.Context, key string, value []byte) error {
	if key == "" {
		return put(ctx, t.tx, key, value, 0) // its error
	}
	if t.put == nil {
		st, err := t.tx.PrepareContext(ctx, putSQL)
		if err != nil {
			return fmt.Errorf("store: put %s: %w", key, err)
		}
		t.put = st
	}
	if value == nil {
		value = []byte{}
	}
	if _, err := t.put.ExecContext(ctx, key, value, sql.NullInt64{}); err != nil {
		return fmt.Errorf("store: put %s: %w", key, err)
	}
	// The event keeps its own copy of the value only when a watcher wants
	// the key now (notify copies for each watcher anyway); call records are
	// written in batches of hundreds that nobody watches. A watcher that
	// starts during the transaction gets the value as it is at the commit.
	ev := Event{Type: EventPut, Key: key, Value: value}
	if t.hub.wants(key) {
		ev.Value = clone(value)
	}
	t.evs = append(t.evs, ev)
	return nil
}
func (t *sqliteTx) Delete(ctx context.Context, key string) error {
	existed, err := del(ctx, t.tx, key)
	if existed {
		t.evs = append(t.evs, Event{Type: EventDelete, Key: key})
	}
	return err
}

// Update runs fn in one immediate (write-locked) transaction. fn must use tx,
// not the store itself: the store's own writes would wait for this
// transaction to end.
func (s *SQLite) Update(ctx context.Context, fn func(tx Tx) error) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	var t *sqliteTx
	err := s.tx(ctx, func(tx *sql.Tx) error {
		t = &sqliteTx{tx: tx, hub: &s.hub}
		return fn(t)
	})
	if err == nil {
		s.hub.notify(t.evs...)
	}
	return err
}

// Audit appends an entry; a zero Time is set to now.
func (s *SQLite) Audit(ctx context.Context, e AuditEntry) error {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO audit(time, author, action, detail) VALUES(?, ?, ?, ?)`,
		e.Time.UTC().Format(time.RFC3339Nano), e.Author, e.Action, e.Detail)
	if err != nil {
		return fmt.Errorf("store: audit: %w", err)
	}
	return nil
}

// AuditLog returns the newest entries first, at most limit (all when limit <= 0).
func (s *SQLite) AuditLog(ctx context.Context, limit int) ([]AuditEntry, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	rows, err := s.db.QueryContext(ctx, `SELECT time, author, action, detail FROM audit ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("store: audit log: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var ts string
		if err := rows.Scan(&ts, &e.Author, &e.Action, &e.Detail); err != nil {
			return nil, fmt.Errorf("store: audit log: %w", err)
		}
		e.Time, _ = time.Parse(time.RFC3339Nano, ts)
		out = append(out, e)
	}
	return out, rows.Err()
}

// Close closes the database; a checkpoint folds the WAL into the main file.
func (s *SQLite) Close() error {
	s.sweepMu.Lock()
	if s.sweeping {
		close(s.stopSweep)
		<-s.sweepDone
		s.sweeping = false
	}
	s.sweepMu.Unlock()
	_, _ = s.db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	return s.db.Close()
}
