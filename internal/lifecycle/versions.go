package lifecycle

import (
	"context"
	"fmt"
	"strconv"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/store"
)

// History returns every saved version, oldest first.
func (m *Mgr) History(ctx context.Context) ([]Version, error) {
	kvs, err := m.st.List(ctx, keySavedPrefix)
	if err != nil {
		return nil, err
	}
	out := make([]Version, 0, len(kvs))
	for _, kv := range kvs {
		rec, err := decodeSaved(kv)
		if err != nil {
			return nil, err
		}
		out = append(out, rec.Version)
	}
	return out, nil
}

// Version returns saved version n; the error wraps store.ErrNotFound when
// there is no such version.
func (m *Mgr) Version(ctx context.Context, n int) (*config.Config, error) {
	rec, err := readSaved(ctx, m.st, n)
	if err != nil {
		return nil, err
	}
	return decodeDoc(fmt.Sprintf("version %d", n), rec.Config)
}

// LoadVersion copies saved version n into the preliminary configuration
// (apply and confirm it to run it again; it then becomes a new version).
func (m *Mgr) LoadVersion(ctx context.Context, n int, author string) error {
	cfg, err := m.Version(ctx, n)
	if err != nil {
		return err
	}
	if _, err := m.SetPreliminary(ctx, cfg, "", author); err != nil {
		return fmt.Errorf("load version %d: %w", n, err)
	}
	m.audit(ctx, author, "config.load", fmt.Sprintf("saved version %d loaded into preliminary", n))
	return nil
}

// Resolve returns the configuration a reference names, as used by
// `palisade config diff A B`: "preliminary", "running", "saved" (the newest
// saved version) or a version number ("3"). Unknown versions wrap
// store.ErrNotFound.
func (m *Mgr) Resolve(ctx context.Context, ref string) (*config.Config, error) {
	switch ref {
	case "preliminary":
		c, _, err := m.Preliminary(ctx)
		return c, err
	case "running":
		return m.Running(ctx)
	case "saved", "startup":
		return m.Saved(ctx)
	}
	n, err := strconv.Atoi(ref)
	if err != nil || n < 1 {
		return nil, fmt.Errorf("%q is not preliminary, running, saved or a version number: %w", ref, store.ErrNotFound)
	}
	return m.Version(ctx, n)
}

// Diff returns the changes from configuration a to b (references as for
// Resolve) and their unified-diff rendering.
func (m *Mgr) Diff(ctx context.Context, a, b string) ([]config.Change, string, error) {
	ca, err := m.Resolve(ctx, a)
	if err != nil {
		return nil, "", err
	}
	cb, err := m.Resolve(ctx, b)
	if err != nil {
		return nil, "", err
	}
	cs, err := config.Diff(ca, cb)
	if err != nil {
		return nil, "", err
	}
	u, err := config.UnifiedDiff(a, b, ca, cb)
	return cs, u, err
}

// AuditLog returns the newest audit entries first (at most limit; all when
// limit <= 0).
func (m *Mgr) AuditLog(ctx context.Context, limit int) ([]store.AuditEntry, error) {
	return m.st.AuditLog(ctx, limit)
}
