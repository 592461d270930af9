package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
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
