package lifecycle

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/store"
)

// Backup file format (documented in docs/configuration-lifecycle.md):
//
//	{
//	  "format": "palisade-backup",
//	  "version": 1,
//	  "created": "2026-11-25T20:00:00Z",
//	  "saved_version": 7,            // newest saved version at backup time
//	  "config": { ... },             // the preliminary configuration
//	  "pki": {                       // every store key under pki/
//	    "encrypted": false,
//	    "entries": {"pki/...": "<base64>", ...}
//	  }
//	}
//
// With a passphrase, "entries" is replaced by the AES-256-GCM encryption of
// its JSON under a key derived with argon2id:
//
//	"pki": {"encrypted": true, "kdf": {"name": "argon2id", "salt": ..., "time": 3,
//	        "memory_kib": 65536, "threads": 4}, "cipher": "AES-256-GCM",
//	        "nonce": ..., "ciphertext": ...}
const (
	backupFormat  = "palisade-backup"
	backupVersion = 1
	pkiPrefix     = "pki/"
	// MaxBackupSize bounds what Restore reads.
	MaxBackupSize = 64 << 20
)

type backupFile struct {
	Format       string          `json:"format"`
	Version      int             `json:"version"`
	Created      time.Time       `json:"created"`
	SavedVersion int             `json:"saved_version"`
	Config       json.RawMessage `json:"config"`
	PKI          backupPKI       `json:"pki"`
}

type backupPKI struct {
	Encrypted  bool              `json:"encrypted"`
	Entries    map[string][]byte `json:"entries,omitempty"`
	KDF        *kdfParams        `json:"kdf,omitempty"`
	Cipher     string            `json:"cipher,omitempty"`
	Nonce      []byte            `json:"nonce,omitempty"`
	Ciphertext []byte            `json:"ciphertext,omitempty"`
}

type kdfParams struct {
	Name      string `json:"name"`
	Salt      []byte `json:"salt"`
	Time      uint32 `json:"time"`
	MemoryKiB uint32 `json:"memory_kib"`
	Threads   uint8  `json:"threads"`
}

// argon2id parameters for new backups (RFC 9106's second recommendation).
var newKDF = kdfParams{Name: "argon2id", Time: 3, MemoryKiB: 64 * 1024, Threads: 4}

func (p kdfParams) key(passphrase string) ([]byte, error) {
	// A hostile file must not make Restore burn minutes or gigabytes:
	// at most 256 MiB (four times what new backups use) and 10 passes.
	if p.Name != "argon2id" || p.Time < 1 || p.Time > 10 || p.MemoryKiB < 8*1024 || p.MemoryKiB > 256*1024 ||
		p.Threads < 1 || len(p.Salt) < 16 || len(p.Salt) > 64 {
		return nil, errors.New("backup: unsupported key derivation parameters")
	}
	return idKey([]byte(passphrase), p.Salt, p.Time, p.MemoryKiB, p.Threads, 32), nil
}

// idKey is argon2.IDKey; FuzzRestore swaps in a cheap stand-in so that the
// encrypted path (GCM, the pki entries) is fuzzed at speed rather than at
// one 64 MiB key derivation per input. The limits above stay in force.
var idKey = argon2.IDKey

// BackupOptions say what happens to the private keys in a backup.
type BackupOptions struct {
	// Passphrase encrypts the key material (at least MinPassphrase
	// characters).
	Passphrase string
	// WithoutKeys leaves the private keys out: certificates, requests, CAs
	// and CRLs stay; a unit restored from the file needs new keys for its
	// own certificates.
	WithoutKeys bool
	// KeysInClear allows private keys without a passphrase. Only the setup
	// tool sets it, for the file it writes (mode 0600) on the machine it
	// runs on; the API, the CLI and the web admin never do.
	KeysInClear bool
}

// MinPassphrase is the shortest backup passphrase taken.
const MinPassphrase = 8

// PrivateKeyPrefix is where the PKI keeps private keys in the store (and so
// in a backup's pki entries).
const PrivateKeyPrefix = "pki/keys/"

// backupError is an ErrBackupPassphrase with its own words.
type backupError string

func (e backupError) Error() string        { return string(e) }
func (e backupError) Is(target error) bool { return target == ErrBackupPassphrase }

// Backup returns one file holding the preliminary configuration and every
// store key under pki/ (keys, certificates, requests, CAs, CRLs). With a
// passphrase the pki part is encrypted (argon2id + AES-256-GCM). Private
// keys in clear are refused unless opts leaves them out (or KeysInClear).
func (m *Mgr) Backup(ctx context.Context, opts BackupOptions) ([]byte, error) {
	passphrase := opts.Passphrase
	if passphrase != "" && len(passphrase) < MinPassphrase {
		return nil, backupError(fmt.Sprintf("backup: the passphrase has %d characters; give at least %d", len(passphrase), MinPassphrase))
	}
	m.mu.Lock()
	prelim, err := m.st.Get(ctx, keyPreliminary)
	var rec savedRecord
	if err == nil {
		rec, err = latestSaved(ctx, m.st)
	}
	var kvs []store.KV
	if err == nil {
		kvs, err = m.st.List(ctx, pkiPrefix)
	}
	m.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	entries := make(map[string][]byte, len(kvs))
	keys, left := 0, 0
	for _, kv := range kvs {
		if strings.HasPrefix(kv.Key, PrivateKeyPrefix) {
			if opts.WithoutKeys {
				left++
				continue
			}
			keys++
		}
		entries[kv.Key] = kv.Value
	}
	if keys > 0 && passphrase == "" && !opts.KeysInClear {
		return nil, backupError(fmt.Sprintf("backup: the unit has %d private key(s); give a passphrase of at least %d characters "+
			"to encrypt them, or choose to leave the private keys out", keys, MinPassphrase))
	}
	f := backupFile{Format: backupFormat, Version: backupVersion, Created: time.Now().UTC(),
		SavedVersion: rec.Number, Config: prelim}
	if passphrase == "" {
		f.PKI = backupPKI{Entries: entries}
	} else {
		plain, err := json.Marshal(entries)
		if err != nil {
			return nil, err
		}
		kdf := newKDF
		kdf.Salt = make([]byte, 16)
		nonce := make([]byte, 12)
		rand.Read(kdf.Salt)
		rand.Read(nonce)
		key, err := kdf.key(passphrase)
		if err != nil {
			return nil, err
		}
		aead, err := gcm(key)
		if err != nil {
			return nil, err
		}
		f.PKI = backupPKI{Encrypted: true, KDF: &kdf, Cipher: "AES-256-GCM", Nonce: nonce,
			Ciphertext: aead.Seal(nil, nonce, plain, []byte(backupFormat))}
	}
	out, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, err
	}
	m.audit(ctx, "unit", "config.backup", fmt.Sprintf("backup with %d pki entries (encrypted: %t, private keys left out: %d)",
		len(entries), passphrase != "", left))
	return append(out, '\n'), nil
}

func gcm(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Restore loads a backup: its configuration becomes the preliminary one
// (after validation: config.Errors on problems, nothing changed), and its
// pki entries are written where the store has no such key yet (existing
// key material is never overwritten). A wrong or missing passphrase for an
// encrypted backup is ErrBadPassphrase.
func (m *Mgr) Restore(ctx context.Context, data []byte, passphrase, author string) error {
	ctx = context.WithoutCancel(ctx)
	if len(data) > MaxBackupSize {
		return fmt.Errorf("restore: the file is %d bytes; a backup is at most %d", len(data), MaxBackupSize)
	}
	var f backupFile
	if err := json.Unmarshal(data, &f); err != nil {
		return fmt.Errorf("restore: not a Palisade backup file: %w", err)
	}
	if f.Format != backupFormat {
		return errors.New("restore: not a Palisade backup file (no \"format\": \"palisade-backup\")")
	}
	if f.Version != backupVersion {
		return fmt.Errorf("restore: backup format version %d is not supported (this Palisade reads %d)", f.Version, backupVersion)
	}
	cfg, err := config.Decode(f.Config)
	if err != nil {
		return err
	}
	if errs := cfg.Validate(); errs != nil {
		return errs
	}
	entries := f.PKI.Entries
	if f.PKI.Encrypted {
		if passphrase == "" {
			return fmt.Errorf("the backup is encrypted; give its passphrase: %w", ErrBadPassphrase)
		}
		if f.PKI.KDF == nil || f.PKI.Cipher != "AES-256-GCM" {
			return errors.New("restore: unsupported encryption in the backup")
		}
		key, err := f.PKI.KDF.key(passphrase)
		if err != nil {
			return err
		}
		aead, err := gcm(key)
		if err != nil {
			return err
		}
		if len(f.PKI.Nonce) != aead.NonceSize() {
			return errors.New("restore: damaged backup (bad nonce)")
		}
		plain, err := aead.Open(nil, f.PKI.Nonce, f.PKI.Ciphertext, []byte(backupFormat))
		if err != nil {
			// GCM cannot tell a wrong passphrase from a damaged file.
			return ErrBadPassphrase
		}
		if err := json.Unmarshal(plain, &entries); err != nil {
			return fmt.Errorf("restore: damaged pki part: %w", err)
		}
	}
	keys := make([]string, 0, len(entries))
	for k := range entries {
		if !strings.HasPrefix(k, pkiPrefix) || strings.Contains(k, "..") {
			return fmt.Errorf("restore: the backup holds key %q outside %s", k, pkiPrefix)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	doc, err := config.Encode(cfg)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	written, kept := 0, 0
	err = m.st.Update(ctx, func(tx store.Tx) error {
		for _, k := range keys {
			_, err := tx.Get(ctx, k)
			if err == nil {
				kept++
				continue
			}
			if !errors.Is(err, store.ErrNotFound) {
				return err
			}
			if err := tx.Put(ctx, k, entries[k]); err != nil {
				return err
			}
			written++
		}
		return tx.Put(ctx, keyPreliminary, doc)
	})
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	m.audit(ctx, author, "config.restore", fmt.Sprintf("backup of %s (saved version %d) loaded into preliminary; %d pki entries added, %d already present",
		f.Created.Format(time.RFC3339), f.SavedVersion, written, kept))
	return nil
}
