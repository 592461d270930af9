package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/testkit/etcdtest"
)

// backends runs the shared suite against every implementation, so that the
// in-memory store other packages test with behaves like the real one.
func backends(t *testing.T) map[string]func(t *testing.T) Store {
	return map[string]func(t *testing.T) Store{
		"sqlite": func(t *testing.T) Store {
			s, err := Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
		"memory": func(t *testing.T) Store { return NewMemory() },
		"etcd":   etcdBackend(t),
		// split: a cluster unit's store (memory stands in for etcd), with
		// local prefixes that the suite's keys fall under, so that List
		// merges and Update spans both sides.
		"split": func(t *testing.T) Store {
			local, err := Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			s := NewSplit(NewMemory(), local, "pki/a", "k/")
			t.Cleanup(func() { s.Close() })
			return s
		},
	}
}

// etcdBackend starts one three-member etcd cluster for the suite (when the
// first subtest asks) and gives every subtest a namespace of its own.
func etcdBackend(suite *testing.T) func(t *testing.T) Store {
	var (
		once sync.Once
		c    *etcdtest.Cluster
		n    int
	)
	return func(t *testing.T) Store {
		if _, err := exec.LookPath("etcd"); err != nil {
			t.Skip("install Debian package etcd-server")
		}
		once.Do(func() { c = etcdtest.Start(suite, 3) })
		if c == nil {
			t.Fatal("etcd cluster did not start")
		}
		n++
		s, err := OpenEtcd(context.Background(), EtcdOptions{Endpoints: c.Endpoints(),
			Namespace: fmt.Sprintf("test-%d-%d/", os.Getpid(), n)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
}

func TestStoreSuite(t *testing.T) {
	for name, mk := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Run("GetPutDelete", func(t *testing.T) { testGetPutDelete(t, mk(t)) })
			t.Run("List", func(t *testing.T) { testList(t, mk(t)) })
			t.Run("UpdateCommit", func(t *testing.T) { testUpdateCommit(t, mk(t)) })
			t.Run("UpdateRollback", func(t *testing.T) { testUpdateRollback(t, mk(t)) })
			t.Run("Audit", func(t *testing.T) { testAudit(t, mk(t)) })
			t.Run("ConcurrentUpdates", func(t *testing.T) { testConcurrentUpdates(t, mk(t)) })
			t.Run("ConcurrentInsertIfEmpty", func(t *testing.T) { testConcurrentInsertIfEmpty(t, mk(t)) })
			t.Run("Watch", func(t *testing.T) { testWatch(t, mk(t)) })
			t.Run("WatchTxValue", func(t *testing.T) { testWatchTxValue(t, mk(t)) })
			t.Run("TTL", func(t *testing.T) { testTTL(t, mk(t)) })
		})
	}
}

func testGetPutDelete(t *testing.T, s Store) {
	ctx := context.Background()
	if _, err := s.Get(ctx, "a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get missing: err = %v, want ErrNotFound", err)
	}
	val := []byte("one")
	if err := s.Put(ctx, "a", val); err != nil {
		t.Fatal(err)
	}
	val[0] = 'X' // the store must have copied the value
	got, err := s.Get(ctx, "a")
	if err != nil || string(got) != "one" {
		t.Fatalf("Get = %q, %v; want one", got, err)
	}
	got[0] = 'Y' // and must hand out copies
	if again, _ := s.Get(ctx, "a"); string(again) != "one" {
		t.Fatalf("value changed through returned slice: %q", again)
	}
	if err := s.Put(ctx, "a", []byte("two")); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(ctx, "a"); string(got) != "two" {
		t.Fatalf("overwrite: got %q", got)
	}
	if err := s.Put(ctx, "empty", nil); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, "empty"); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("empty value: %q, %v", got, err)
	}
	if err := s.Put(ctx, "", []byte("x")); err == nil {
		t.Fatal("empty key accepted")
	}
	if err := s.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if err := s.Delete(ctx, "never"); err != nil {
		t.Fatalf("delete missing: %v", err)
	}
}

func testList(t *testing.T, s Store) {
	ctx := context.Background()
	for _, k := range []string{"pki/b", "pki/a", "pkj", "pki", "pki/a/x", "config/x", "pki\xff"} {
		if err := s.Put(ctx, k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{"pki/", []string{"pki/a", "pki/a/x", "pki/b"}},
		{"pki", []string{"pki", "pki/a", "pki/a/x", "pki/b", "pki\xff"}},
		{"nothing/", nil},
		{"", []string{"config/x", "pki", "pki/a", "pki/a/x", "pki/b", "pki\xff", "pkj"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.prefix), func(t *testing.T) {
			kvs, err := s.List(ctx, tt.prefix)
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			for _, kv := range kvs {
				keys = append(keys, kv.Key)
				if string(kv.Value) != kv.Key {
					t.Errorf("value of %q = %q", kv.Key, kv.Value)
				}
			}
			if fmt.Sprint(keys) != fmt.Sprint(tt.want) {
				t.Errorf("List(%q) = %q, want %q", tt.prefix, keys, tt.want)
			}
		})
	}
}

func testUpdateCommit(t *testing.T, s Store) {
	ctx := context.Background()
	s.Put(ctx, "gone", []byte("x"))
	err := s.Update(ctx, func(tx Tx) error {
		// Several puts in one transaction (the SQLite store prepares the
		// statement once), an overwrite, a nil value, an empty key refused.
		for _, v := range []string{"0", "1"} {
			if err := tx.Put(ctx, "k/1", []byte(v)); err != nil {
				return err
			}
		}
		if err := tx.Put(ctx, "k/2", nil); err != nil {
			return err
		}
		if err := tx.Put(ctx, "", []byte("x")); err == nil {
			return errors.New("empty key accepted in a transaction")
		}
		if err := tx.Delete(ctx, "gone"); err != nil {
			return err
		}
		// The transaction sees its own writes.
		if v, err := tx.Get(ctx, "k/1"); err != nil || string(v) != "1" {
			return fmt.Errorf("read own write: %q %v", v, err)
		}
		if _, err := tx.Get(ctx, "gone"); !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("read own delete: %v", err)
		}
		kvs, err := tx.List(ctx, "k/")
		if err != nil || len(kvs) != 2 {
			return fmt.Errorf("list own writes: %v %v", kvs, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get(ctx, "k/1"); err != nil || string(v) != "1" {
		t.Fatalf("after commit: %q %v", v, err)
	}
	if v, err := s.Get(ctx, "k/2"); err != nil || len(v) != 0 {
		t.Fatalf("nil value after commit: %q %v", v, err)
	}
	if _, err := s.Get(ctx, "gone"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete not committed: %v", err)
	}
}

func testUpdateRollback(t *testing.T, s Store) {
	ctx := context.Background()
	s.Put(ctx, "keep", []byte("old"))
	boom := errors.New("boom")
	err := s.Update(ctx, func(tx Tx) error {
		tx.Put(ctx, "keep", []byte("new"))
		tx.Put(ctx, "added", []byte("x"))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update error = %v, want boom", err)
	}
	if v, _ := s.Get(ctx, "keep"); string(v) != "old" {
		t.Fatalf("rolled-back write visible: %q", v)
	}
	if _, err := s.Get(ctx, "added"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("rolled-back insert visible: %v", err)
	}
}

func testAudit(t *testing.T, s Store) {
	ctx := context.Background()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	for i := range 5 {
		if err := s.Audit(ctx, AuditEntry{Time: t0.Add(time.Duration(i) * time.Second), Author: "alice",
			Action: "config.set", Detail: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Audit(ctx, AuditEntry{Author: "bob", Action: "config.apply"}); err != nil {
		t.Fatal(err)
	}
	log, err := s.AuditLog(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 3 || log[0].Author != "bob" || log[1].Detail != "4" || log[2].Detail != "3" {
		t.Fatalf("AuditLog(3) = %+v", log)
	}
	if log[0].Time.IsZero() {
		t.Error("zero time not filled in")
	}
	if !log[1].Time.Equal(t0.Add(4 * time.Second)) {
		t.Errorf("time = %v, want %v", log[1].Time, t0.Add(4*time.Second))
	}
	all, _ := s.AuditLog(ctx, 0)
	if len(all) != 6 {
		t.Fatalf("AuditLog(0) has %d entries, want 6", len(all))
	}
}

// testConcurrentUpdates increments one counter from many goroutines inside
// transactions; a lost update shows as a wrong final count.
func testConcurrentUpdates(t *testing.T, s Store) {
	ctx := context.Background()
	const workers, rounds = 4, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				err := s.Update(ctx, func(tx Tx) error {
					n := 0
					if v, err := tx.Get(ctx, "counter"); err == nil {
						fmt.Sscan(string(v), &n)
					} else if !errors.Is(err, ErrNotFound) {
						return err
					}
					return tx.Put(ctx, "counter", []byte(fmt.Sprint(n+1)))
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	v, _ := s.Get(ctx, "counter")
	if string(v) != fmt.Sprint(workers*rounds) {
		t.Fatalf("counter = %s, want %d", v, workers*rounds)
	}
}

func TestSQLitePersistsAndMigratesOnce(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.Put(ctx, "config/preliminary", []byte(`{"schema":1}`))
	s.Audit(ctx, AuditEntry{Author: "a", Action: "x"})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := s.Get(ctx, "config/preliminary"); err != nil || string(v) != `{"schema":1}` {
		t.Fatalf("after reopen: %q %v", v, err)
	}
	if log, _ := s.AuditLog(ctx, 0); len(log) != 1 {
		t.Fatalf("audit after reopen: %d entries", len(log))
	}
	v, err := s.SchemaVersion(ctx)
	if err != nil || v != len(migrations)-1 {
		t.Fatalf("schema version = %d, %v; want %d", v, err, len(migrations)-1)
	}
	var n int
	s.db.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n)
	if n != len(migrations)-1 {
		t.Fatalf("schema_migrations has %d rows", n)
	}
	var mode string
	s.db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode)
	if mode != "wal" {
		t.Errorf("journal_mode = %q, want wal", mode)
	}
	var sync int
	s.db.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&sync)
	if sync != 2 {
		t.Errorf("synchronous = %d, want 2 (FULL)", sync)
	}
	if err := s.IntegrityCheck(ctx); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("database mode = %v, want 0600", fi.Mode().Perm())
	}
}

func TestSQLiteTwoHandlesSeeEachOther(t *testing.T) {
	// The CLI may open the data directory while another handle has it open.
	ctx := context.Background()
	dir := t.TempDir()
	a, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := a.Update(ctx, func(tx Tx) error { return tx.Put(ctx, "k", []byte("v")) }); err != nil {
		t.Fatal(err)
	}
	if v, err := b.Get(ctx, "k"); err != nil || string(v) != "v" {
		t.Fatalf("second handle: %q %v", v, err)
	}
}

func TestOpenFailsOnUnusableDir(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o600)
	if _, err := Open(f); err == nil {
		t.Fatal("Open on a regular file succeeded")
	}
}

// testConcurrentInsertIfEmpty: transactions that each add a key only when
// a prefix is empty (like the first saved version) may not all succeed; a
// range read must conflict with a concurrent insert into it.
func testConcurrentInsertIfEmpty(t *testing.T, s Store) {
	ctx := context.Background()
	const workers = 6
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.Update(ctx, func(tx Tx) error {
				kvs, err := tx.List(ctx, "boot/")
				if err != nil || len(kvs) > 0 {
					return err
				}
				return tx.Put(ctx, fmt.Sprintf("boot/%d", i), []byte("x"))
			})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if kvs, _ := s.List(ctx, "boot/"); len(kvs) != 1 {
		t.Fatalf("%d keys under boot/, want 1: %v", len(kvs), kvs)
	}
}

// nextEvent waits for an event with a bound only a real failure reaches.
func nextEvent(t *testing.T, ch <-chan Event) Event {
	t.Helper()
	select {
	case e, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed")
		}
		return e
	case <-time.After(60 * time.Second):
		t.Fatal("no watch event within 60 s")
	}
	return Event{}
}

func testWatch(t *testing.T, s Store) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.Put(ctx, "w/before", []byte("old")) // before the watch: not reported
	ch, err := s.Watch(ctx, "w/")
	if err != nil {
		t.Fatal(err)
	}
	s.Put(ctx, "w/a", []byte("1"))
	s.Put(ctx, "x/other", []byte("no"))
	s.Delete(ctx, "w/missing") // nothing existed: no event
	err = s.Update(ctx, func(tx Tx) error {
		if err := tx.Delete(ctx, "w/a"); err != nil {
			return err
		}
		return tx.Put(ctx, "w/b", []byte("2"))
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Update(ctx, func(tx Tx) error { // rolled back: no event
		tx.Put(ctx, "w/rolled", []byte("x"))
		return errors.New("no")
	})
	s.Delete(ctx, "w/before")
	want := []string{"put w/a 1", "delete w/a ", "put w/b 2", "delete w/before "}
	for _, w := range want {
		e := nextEvent(t, ch)
		if got := fmt.Sprintf("%s %s %s", e.Type, e.Key, e.Value); got != w {
			t.Fatalf("event %q, want %q", got, w)
		}
	}
	cancel()
	for range ch { // closed once ctx ends
	}
}

// A transaction that reuses its buffer after a Put still stores, and
// tells a watcher, the value as it was put; keys nobody watches are stored
// all the same.
func testWatchTxValue(t *testing.T, s Store) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := s.Watch(ctx, "w/")
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(ctx, func(tx Tx) error {
		buf := []byte("v1")
		for _, k := range []string{"w/c", "cdr/unwatched"} {
			if err := tx.Put(ctx, k, buf); err != nil {
				return err
			}
		}
		copy(buf, "XX")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if e := nextEvent(t, ch); e.Key != "w/c" || string(e.Value) != "v1" {
		t.Fatalf("event %s %s %q, want put w/c v1", e.Type, e.Key, e.Value)
	}
	for _, k := range []string{"w/c", "cdr/unwatched"} {
		if v, err := s.Get(ctx, k); err != nil || string(v) != "v1" {
			t.Fatalf("%s = %q (%v), want v1", k, v, err)
		}
	}
}

func testTTL(t *testing.T, s Store) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.PutTTL(ctx, "ttl/x", []byte("v"), 0); err == nil {
		t.Fatal("zero time to live accepted")
	}
	ch, err := s.Watch(ctx, "ttl/")
	if err != nil {
		t.Fatal(err)
	}
	// kept: written with a TTL, then for good.
	if err := s.PutTTL(ctx, "ttl/kept", []byte("a"), time.Second); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "ttl/kept", []byte("b")); err != nil {
		t.Fatal(err)
	}
	if err := s.PutTTL(ctx, "ttl/gone", []byte("c"), time.Second); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get(ctx, "ttl/gone"); err != nil || string(v) != "c" {
		t.Fatalf("before expiry: %q %v", v, err)
	}
	// Refreshing a key moves its expiry (and, on etcd, frees the old lease).
	if err := s.PutTTL(ctx, "ttl/gone", []byte("d"), time.Second); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"put ttl/kept a", "put ttl/kept b", "put ttl/gone c", "put ttl/gone d", "delete ttl/gone "} {
		e := nextEvent(t, ch)
		if got := fmt.Sprintf("%s %s %s", e.Type, e.Key, e.Value); got != w {
			t.Fatalf("event %q, want %q", got, w)
		}
	}
	if _, err := s.Get(ctx, "ttl/gone"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after expiry: %v", err)
	}
	kvs, err := s.List(ctx, "ttl/")
	if err != nil || len(kvs) != 1 || kvs[0].Key != "ttl/kept" || string(kvs[0].Value) != "b" {
		t.Fatalf("List after expiry = %v, %v", kvs, err)
	}
}

// TestSQLiteMigratesOldDatabase: a database of the first schema (before
// keys could expire) opens with its keys intact and takes expiring keys.
func TestSQLiteMigratesOldDatabase(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)`,
		migrations[1],
		`INSERT INTO schema_migrations(version, applied_at) VALUES(1, '2026-01-01T00:00:00Z')`,
		`INSERT INTO kv(key, value) VALUES('config/preliminary', '{"schema":1}')`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := s.Get(ctx, "config/preliminary"); err != nil || string(v) != `{"schema":1}` {
		t.Fatalf("old key after migration: %q %v", v, err)
	}
	if err := s.PutTTL(ctx, "registrar/a@b", []byte("x"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if v, err := s.SchemaVersion(ctx); err != nil || v != len(migrations)-1 {
		t.Fatalf("schema version %d %v", v, err)
	}
}
