package setup

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/palisade-sbc/palisade/internal/admin"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/lifecycle"
	"github.com/palisade-sbc/palisade/internal/pki"
	"github.com/palisade-sbc/palisade/internal/store"
)

func newLineReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }

// author is recorded in the history and audit log for setup's changes.
const author = "palisade setup"

// noApply refuses to apply: setup never runs a unit.
type noApply struct{}

func (noApply) Apply(context.Context, *config.Config) error {
	return errors.New("setup does not run the unit")
}

// WriteDataDir writes cfg into the data directory dir. An empty directory
// gets cfg as saved version 1 (the unit starts on it). A directory that
// already holds a configuration gets cfg as its preliminary configuration,
// keeping the unit's admin listener, access list and certificate entries;
// it runs after an apply. A running unit is refused (use --upload).
// It returns a sentence saying what was done.
func WriteDataDir(ctx context.Context, dir string, cfg *config.Config, a Answers) (string, error) {
	if c, err := net.DialTimeout("unix", filepath.Join(dir, admin.SocketFile), time.Second); err == nil {
		c.Close()
		return "", fmt.Errorf("a unit is running on %s: stop it, or send the configuration to it with --upload https://ADDRESS:8443", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("data directory: %w", err)
	}
	st, err := store.Open(dir)
	if err != nil {
		return "", fmt.Errorf("open the store in %s: %w", dir, err)
	}
	defer st.Close()
	_, _, err = lifecycle.StartupConfig(ctx, st)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if err := ensureCert(ctx, st, cfg, a); err != nil {
			return "", err
		}
		if err := lifecycle.Bootstrap(ctx, st, cfg, author); err != nil {
			return "", fmt.Errorf("write the first configuration: %w", err)
		}
		return fmt.Sprintf("Wrote the first configuration into %s (saved version 1). Start the unit with: palisade run --data %s", dir, dir), nil
	case err != nil:
		return "", fmt.Errorf("read the configuration in %s: %w", dir, err)
	}
	mgr, err := lifecycle.New(st, noApply{}, nil)
	if err != nil {
		return "", err
	}
	defer mgr.Close()
	cur, etag, err := mgr.Preliminary(ctx)
	if err != nil {
		return "", err
	}
	next, err := keepUnitSettings(cur, cfg)
	if err != nil {
		return "", err
	}
	if err := ensureCert(ctx, st, next, a); err != nil {
		return "", err
	}
	if _, err := mgr.SetPreliminary(ctx, next, etag, author); err != nil {
		return "", fmt.Errorf("store the configuration as preliminary: %w", err)
	}
	return fmt.Sprintf("%s already held a configuration: the setup result is now its preliminary configuration. "+
		"Start the unit and apply it (web admin: Administration, or palisade config apply).", dir), nil
}

// keepUnitSettings returns next with the admin listener and access list of
// cur (so the administrator keeps reaching the unit the way he does now)
// and cur's certificate entries (they name key material in the unit's store).
func keepUnitSettings(cur, next *config.Config) (*config.Config, error) {
	out, err := config.Clone(next)
	if err != nil {
		return nil, err
	}
	hash := out.Admin.PasswordHash
	out.Admin = cur.Admin
	out.Admin.PasswordHash = hash
	certs := cur.Certificates
	for _, p := range next.Certificates.Private {
		found := false
		for _, c := range certs.Private {
			found = found || c.Name == p.Name
		}
		if !found {
			certs.Private = append(certs.Private, p)
		}
	}
	out.Certificates = certs
	return out, nil
}

// WriteBackup writes a backup file (the lifecycle's backup format, as
// Administration → Backup makes it) holding cfg as its only version.
func WriteBackup(ctx context.Context, file string, cfg *config.Config, a Answers, passphrase string) error {
	st := store.NewMemory()
	defer st.Close()
	cfg, err := config.Clone(cfg)
	if err != nil {
		return err
	}
	if err := ensureCert(ctx, st, cfg, a); err != nil {
		return err
	}
	if err := lifecycle.Bootstrap(ctx, st, cfg, author); err != nil {
		return err
	}
	mgr, err := lifecycle.New(st, noApply{}, nil)
	if err != nil {
		return err
	}
	defer mgr.Close()
	// The file is written 0600 on this machine, to be restored on the unit:
	// its keys may be in clear when no passphrase is given (docs/setup.md).
	data, err := mgr.Backup(ctx, lifecycle.BackupOptions{Passphrase: passphrase, KeysInClear: true})
	if err != nil {
		return err
	}
	if err := os.WriteFile(file, data, 0o600); err != nil {
		return fmt.Errorf("write the backup: %w", err)
	}
	return nil
}

// ensureCert gives the own certificate named by --certificate key material
// when the configuration has no entry for it yet: a self-signed certificate
// for the outside FQDN, so that the unit starts; replace it later with a
// CA-signed one (Basic Configuration → Certificates, or palisade cert new
// NAME --cn FQDN for a request). "default" is made by the unit itself.
func ensureCert(ctx context.Context, st store.Store, cfg *config.Config, a Answers) error {
	name := a.Certificate
	if name == "" || name == "default" {
		return nil
	}
	for _, p := range cfg.Certificates.Private {
		if p.Name == name {
			return nil
		}
	}
	if a.OutsideFQDN == "" {
		return fmt.Errorf("--certificate %s does not exist yet; setup makes it self-signed for the outside FQDN: give --outside-fqdn", name)
	}
	c := &pki.Certs{Store: st}
	if _, err := c.New(ctx, cfg, name, pki.NewOptions{Subject: pki.Subject{CN: a.OutsideFQDN}, SelfSigned: true}); err != nil {
		return fmt.Errorf("make the certificate %s: %w", name, err)
	}
	return nil
}
