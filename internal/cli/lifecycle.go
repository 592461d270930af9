package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"

	"github.com/palisade-sbc/palisade/internal/admin"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/lifecycle"
	"github.com/palisade-sbc/palisade/internal/pki/acme"
	"github.com/palisade-sbc/palisade/internal/store"
	"github.com/palisade-sbc/palisade/internal/unit"
)

// Glue to the lifecycle package (store → startup configuration → manager).

// savedStartup returns the last saved configuration, store.ErrNotFound when
// the store is empty.
func savedStartup(ctx context.Context, st store.Store) (*config.Config, error) {
	cfg, _, err := lifecycle.StartupConfig(ctx, st)
	return cfg, err
}

// bootstrap saves cfg as version 1 of an empty store.
func bootstrap(ctx context.Context, st store.Store, cfg *config.Config) error {
	return lifecycle.Bootstrap(ctx, st, cfg, "palisade run (first start)")
}

// newManager returns the lifecycle manager that switches a.
func newManager(ctx context.Context, st store.Store, a lifecycle.Applier, log *slog.Logger) (*lifecycle.Mgr, error) {
	m, err := lifecycle.New(st, a, log)
	if err != nil {
		return nil, fmt.Errorf("configuration lifecycle: %w", err)
	}
	return m, nil
}

// startManager brings the unit up on cfg, the newest saved configuration.
func startManager(ctx context.Context, u *unit.Unit, cfg *config.Config) error {
	return u.Apply(ctx, cfg)
}

// stoppedApplier refuses to apply: no unit runs on the data directory.
type stoppedApplier struct{}

func (stoppedApplier) Apply(context.Context, *config.Config) error { return admin.ErrUnitStopped }

// offlineClient serves the admin API in-process on the data directory of a
// stopped unit: preliminary edits work, apply/confirm/revert are refused.
func offlineClient(ctx context.Context, dir string) (*Client, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("no unit runs and there is no data directory %s (start one with 'palisade run --data %s')", dir, dir)
	}
	lock, err := lockDataDir(dir)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(dir)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("open store in %s: %w", dir, err)
	}
	log := slog.New(slog.DiscardHandler)
	fail := func(err error) (*Client, error) {
		st.Close()
		lock.Close()
		return nil, err
	}
	if _, err := startupConfig(ctx, st, dir, "", log); err != nil {
		return fail(err)
	}
	mgr, err := newManager(ctx, st, stoppedApplier{}, log)
	if err != nil {
		return fail(err)
	}
	closeAll := func() error {
		mgr.Close()
		err := st.Close()
		lock.Close()
		return err
	}
	h := admin.NewHandler(&admin.Env{Store: st, Config: mgr, Log: log, DataDir: dir}, acme.Mount(nil))
	return &Client{hc: &http.Client{Transport: handlerTransport{h}}, base: "http://palisade", Mode: "offline",
		close: closeAll}, nil
}
