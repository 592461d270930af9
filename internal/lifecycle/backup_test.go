package lifecycle

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/store"
)

var secretKey = []byte("-----BEGIN PRIVATE KEY-----\nTOP-SECRET-KEY-MATERIAL\n-----END PRIVATE KEY-----\n")

func backupSource(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	f := newFixture(t, store.NewMemory())
	f.st.Put(ctx, "pki/private/default/key", secretKey)
	f.st.Put(ctx, "pki/private/default/cert", []byte("CERT"))
	f.st.Put(ctx, "admin/tokens/x", []byte("not in a backup"))
	f.edit(t, setName("backed-up"))
	return f
}

func TestBackupRestorePlain(t *testing.T) {
	ctx := context.Background()
	src := backupSource(t)
	data, err := src.m.Backup(ctx, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte("admin/tokens")) {
		t.Fatal("backup holds keys outside pki/")
	}
	var f backupFile
	if err := json.Unmarshal(data, &f); err != nil || f.Format != "palisade-backup" || f.SavedVersion != 1 || f.PKI.Encrypted {
		t.Fatalf("envelope: %+v %v", f, err)
	}

	dst := newFixture(t, store.NewMemory())
	// Material already present is never overwritten.
	dst.st.Put(ctx, "pki/private/default/cert", []byte("NEWER CERT"))
	if err := dst.m.Restore(ctx, data, "", "bob"); err != nil {
		t.Fatal(err)
	}
	p, _, _ := dst.m.Preliminary(ctx)
	if p.Unit.Name != "backed-up" {
		t.Fatalf("restored preliminary: %q", p.Unit.Name)
	}
	if run, _ := dst.m.Running(ctx); run.Unit.Name != "palisade" {
		t.Fatal("restore changed the running configuration")
	}
	if v, _ := dst.st.Get(ctx, "pki/private/default/key"); !bytes.Equal(v, secretKey) {
		t.Fatalf("key not restored: %q", v)
	}
	if v, _ := dst.st.Get(ctx, "pki/private/default/cert"); string(v) != "NEWER CERT" {
		t.Fatalf("existing material overwritten: %q", v)
	}
	log, _ := dst.st.AuditLog(ctx, 1)
	if log[0].Action != "config.restore" || !strings.Contains(log[0].Detail, "1 pki entries added, 1 already present") {
		t.Fatalf("audit: %+v", log[0])
	}
}

func TestBackupRestoreEncrypted(t *testing.T) {
	ctx := context.Background()
	src := backupSource(t)
	data, err := src.m.Backup(ctx, BackupOptions{Passphrase: "correct horse"})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte("TOP-SECRET")) || bytes.Contains(data, []byte("LS0tLS1CRUdJTi")) {
		t.Fatal("key material readable in an encrypted backup")
	}
	dst := newFixture(t, store.NewMemory())
	for _, pass := range []string{"", "wrong"} {
		if err := dst.m.Restore(ctx, data, pass, "bob"); !errors.Is(err, ErrBadPassphrase) {
			t.Fatalf("passphrase %q: err = %v, want ErrBadPassphrase", pass, err)
		}
	}
	if p, _, _ := dst.m.Preliminary(ctx); p.Unit.Name != "palisade" {
		t.Fatal("a refused restore changed the preliminary configuration")
	}
	if _, err := dst.st.Get(ctx, "pki/private/default/key"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("a refused restore wrote key material")
	}
	if err := dst.m.Restore(ctx, data, "correct horse", "bob"); err != nil {
		t.Fatal(err)
	}
	if v, _ := dst.st.Get(ctx, "pki/private/default/key"); !bytes.Equal(v, secretKey) {
		t.Fatalf("key not restored: %q", v)
	}
}

func TestRestoreRejectsBadFiles(t *testing.T) {
	ctx := context.Background()
	src := backupSource(t)
	good, _ := src.m.Backup(ctx, BackupOptions{})
	mutate := func(change func(m map[string]any)) []byte {
		var c map[string]any
		json.Unmarshal(good, &c)
		change(c)
		b, _ := json.Marshal(c)
		return b
	}
	invalid := config.Default()
	invalid.SIP.Listeners[0].Port = 0
	invalid.Observe.LogLevel = "x"
	invDoc, _ := config.Encode(invalid)

	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"garbage", []byte("\x00\x01garbage"), "not a Palisade backup file"},
		{"other json", []byte(`{"hello": 1}`), "not a Palisade backup file"},
		{"future version", mutate(func(m map[string]any) { m["version"] = 9 }), "version 9 is not supported"},
		{"invalid config", mutate(func(m map[string]any) { m["config"] = json.RawMessage(invDoc) }), "sip.listeners[0].port"},
		{"foreign key", mutate(func(m map[string]any) {
			m["pki"] = map[string]any{"entries": map[string]any{"admin/password": "eA=="}}
		}), "outside pki/"},
		{"huge kdf", mutate(func(m map[string]any) {
			m["pki"] = map[string]any{"encrypted": true, "cipher": "AES-256-GCM",
				"kdf": map[string]any{"name": "argon2id", "salt": "MDEyMzQ1Njc4OWFiY2RlZg==", "time": 1, "memory_kib": 1 << 30, "threads": 1}}
		}), "unsupported key derivation"},
		{"512 MiB kdf", mutate(func(m map[string]any) {
			m["pki"] = map[string]any{"encrypted": true, "cipher": "AES-256-GCM",
				"kdf": map[string]any{"name": "argon2id", "salt": "MDEyMzQ1Njc4OWFiY2RlZg==", "time": 1, "memory_kib": 512 * 1024, "threads": 1}}
		}), "unsupported key derivation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := newFixture(t, store.NewMemory())
			err := dst.m.Restore(ctx, tt.data, "pw", "bob")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if p, _, _ := dst.m.Preliminary(ctx); p.Unit.Name != "palisade" {
				t.Fatal("preliminary changed")
			}
			if kvs, _ := dst.st.List(ctx, ""); len(kvs) != 3 { // preliminary, saved/1, state
				t.Fatalf("store changed: %d keys", len(kvs))
			}
		})
	}
}

// FuzzRestore feeds arbitrary files to Restore: a refused file must leave
// the store as it was, and nothing may panic.
func FuzzRestore(f *testing.F) {
	ctx := context.Background()
	orig := idKey
	idKey = func(pass, salt []byte, time, mem uint32, threads uint8, n uint32) []byte {
		h := sha256.Sum256(append(append([]byte(pass), 0), salt...))
		return h[:n]
	}
	f.Cleanup(func() { idKey = orig })
	src := store.NewMemory()
	m, err := New(src, newFakeApplier(), nil)
	if err != nil {
		f.Fatal(err)
	}
	m.Bootstrap(ctx, config.Default(), "fuzz")
	src.Put(ctx, "pki/a", []byte("x"))
	good, _ := m.Backup(ctx, BackupOptions{})
	f.Add(good, "")
	// Made with the stand-in key derivation, so it opens with "password".
	enc, _ := m.Backup(ctx, BackupOptions{Passphrase: "password"})
	f.Add(enc, "password")
	f.Add(enc, "wrong")
	f.Add([]byte(`{"format":"palisade-backup","version":1,"config":{},"pki":{"encrypted":true,"nonce":"AA==","ciphertext":"AA=="}}`), "pw")
	f.Add([]byte(`{"format":"palisade-backup","version":1,"config":[],"pki":{"entries":{"pki/../x":"AA=="}}}`), "")
	f.Fuzz(func(t *testing.T, data []byte, pass string) {
		st := store.NewMemory()
		dst, err := New(st, newFakeApplier(), nil)
		if err != nil {
			t.Fatal(err)
		}
		dst.Bootstrap(ctx, config.Default(), "fuzz")
		before, _ := st.List(ctx, "")
		if err := dst.Restore(ctx, data, pass, "fuzz"); err != nil {
			after, _ := st.List(ctx, "")
			if len(after) != len(before) {
				t.Fatalf("refused restore changed the store: %d → %d keys", len(before), len(after))
			}
		}
	})
}

// Private keys never leave in clear unless asked: without a passphrase or
// the choice to leave them out the backup is refused, a short passphrase
// too; left out, the rest of the material is still in the file.
func TestBackupPrivateKeysNeedPassphrase(t *testing.T) {
	ctx := context.Background()
	src := backupSource(t)
	src.st.Put(ctx, PrivateKeyPrefix+"k1", []byte("-----BEGIN PRIVATE KEY-----"))
	for _, opts := range []BackupOptions{{}, {Passphrase: "short"}, {Passphrase: "short", WithoutKeys: true}} {
		if _, err := src.m.Backup(ctx, opts); !errors.Is(err, ErrBackupPassphrase) {
			t.Errorf("%+v: err = %v, want ErrBackupPassphrase", opts, err)
		}
	}
	if _, err := src.m.Backup(ctx, BackupOptions{}); err == nil || !strings.Contains(err.Error(), "1 private key") {
		t.Errorf("the refusal does not say why: %v", err)
	}
	data, err := src.m.Backup(ctx, BackupOptions{WithoutKeys: true})
	if err != nil {
		t.Fatal(err)
	}
	var f backupFile
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.PKI.Entries[PrivateKeyPrefix+"k1"]; ok || len(f.PKI.Entries) != 2 || bytes.Contains(data, []byte("PRIVATE KEY")) {
		t.Fatalf("backup without keys holds %v", f.PKI.Entries)
	}
	dst := newFixture(t, store.NewMemory())
	if err := dst.m.Restore(ctx, data, "", "bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.st.Get(ctx, "pki/private/default/cert"); err != nil {
		t.Fatal("the certificates of a backup without keys were not restored")
	}
	log, _ := src.st.AuditLog(ctx, 1)
	if !strings.Contains(log[0].Detail, "private keys left out: 1") {
		t.Fatalf("audit: %+v", log[0])
	}
	for _, opts := range []BackupOptions{{Passphrase: "correct horse"}, {KeysInClear: true}} {
		data, err := src.m.Backup(ctx, opts)
		if err != nil {
			t.Fatalf("%+v: %v", opts, err)
		}
		if inClear := bytes.Contains(data, []byte(PrivateKeyPrefix+"k1")); inClear != opts.KeysInClear {
			t.Fatalf("%+v: key entry readable = %t", opts, inClear)
		}
	}
}
