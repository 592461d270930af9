package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/palisade-sbc/palisade/internal/admin"
	"github.com/palisade-sbc/palisade/internal/cluster"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/lifecycle"
	"github.com/palisade-sbc/palisade/internal/observe"
	"github.com/palisade-sbc/palisade/internal/sdnotify"
	"github.com/palisade-sbc/palisade/internal/store"
	"github.com/palisade-sbc/palisade/internal/syslog"
	"github.com/palisade-sbc/palisade/internal/unit"
)

func init() {
	Register(&Command{
		Name:    "run",
		Summary: "run the unit on a data directory",
		Usage: "run [--data DIR] [--store etcd://HOST:PORT[,HOST:PORT...]] [--unit NAME] [--store-ca FILE --store-cert FILE --store-key FILE]\n" +
			"             [--log-format text|json] [--log-level debug|info|warn|error] [--drain-timeout 30s]",
		Run: runUnit,
	})
}

// PasswordFile is where the first start writes the generated admin password.
const PasswordFile = "initial-admin-password"

func runUnit(c *Context, args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	logFormat := fs.String("log-format", "text", "text or json")
	logLevel := fs.String("log-level", "", "debug, info, warn or error (default: observe.log_level)")
	drainTimeout := fs.Duration("drain-timeout", 30*time.Second, "how long SIGTERM waits for calls in progress")
	// Hidden, for tests: bind the admin listener here instead of admin.listen
	// (e.g. 127.0.0.1:0; the bound address is written to DATA/admin.addr).
	adminListen := fs.String("admin-listen", os.Getenv("PALISADE_ADMIN_LISTEN"), "")
	// Hidden: the document an EMPTY data directory starts with instead of
	// the defaults (tests use free ports; provisioning may use it too).
	initial := fs.String("initial-config", "", "")
	var sf storeFlags
	sf.register(fs)
	if err := fs.Parse(args); err != nil {
		return c.Usagef("%v", err)
	}
	if !sf.clustered() {
		// cluster init/join remembered the cluster in the data directory.
		if err := readClusterFile(c.Data, &sf); err != nil {
			return err
		}
	}
	if err := sf.check(); err != nil {
		return c.Usagef("%v", err)
	}
	if fs.NArg() > 0 {
		return c.Usagef("unexpected argument %q", fs.Arg(0))
	}
	if *logFormat != "text" && *logFormat != "json" {
		return c.Usagef("--log-format must be text or json")
	}
	level := new(slog.LevelVar)
	fixedLevel := *logLevel != ""
	if fixedLevel {
		if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
			return c.Usagef("--log-level must be debug, info, warn or error")
		}
	}
	// The web admin's Log page shows the newest records too.
	// Remote syslog collectors get them too (observe.syslog).
	// Under systemd each record reaches the journal with its priority.
	recent := observe.NewLogRing(observe.LogRingSize)
	log := slog.New(syslog.Tee(recent.Handler(newLogger(sdnotify.JournalStream(c.Stderr), *logFormat, level).Handler())))
	tuneGC(log)

	ctx, stop := context.WithCancel(c.ctx)
	defer stop()
	dir := c.Data
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if socketAnswers(filepath.Join(dir, admin.SocketFile)) {
		return fmt.Errorf("a unit is already running on %s", dir)
	}
	lock, err := lockDataDir(dir)
	if err != nil {
		return err
	}
	defer lock.Close()
	st, etcd, err := sf.open(ctx, dir)
	if err != nil {
		return err
	}
	defer st.Close()
	if etcd != nil {
		log = log.With("unit", sf.unit)
		log.Info("cluster store", "store", sf.url, "namespace", etcd.Namespace())
	}
	startCfg, err := startupConfig(ctx, st, dir, *initial, log)
	if err != nil {
		return err
	}
	if etcd != nil {
		// The unit's own values (units.<name>) in place of the shared ones.
		if startCfg, err = startCfg.ForUnit(sf.unit); err != nil {
			return err
		}
	}

	u := unit.New(log)
	var opts []lifecycle.Option
	if etcd != nil {
		opts = append(opts, lifecycle.WithCluster(sf.unit))
	}
	mgr, err := newManager(ctx, st, u, log, opts...)
	if err != nil {
		return err
	}
	cert, certPEM, err := admin.LoadOrCreateCertificate(ctx, st)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, admin.CertFile), certPEM, 0o644); err != nil {
		log.Warn("could not write the admin certificate file", "err", err)
	}
	deps := Deps{DataDir: dir, Store: st, Config: mgr, Log: log, RecentLog: recent, AdminCert: cert, AdminListen: *adminListen}
	if !fixedLevel {
		deps.Level = level
	}
	var w wired
	var node *cluster.Node
	if etcd != nil {
		// Bindings and the nonce secret are shared with the other units;
		// the node publishes this unit's load and runs the cluster's
		// configuration protocol.
		deps.ClusterUnit = sf.unit
		deps.Etcd = etcd
		node = &cluster.Node{Etcd: etcd, Unit: sf.unit, Mgr: mgr, Log: log.With("subsystem", "cluster"),
			Loader: func() cluster.Load { return w.load() },
			AdminAddr: func() string {
				if a := w.admin.Addr(); a != nil {
					return a.String()
				}
				return ""
			}}
		deps.ClusterStatus = func(ctx context.Context) any { return node.Status(ctx) }
		deps.ClusterUnits = &cluster.Peers{Etcd: etcd, Name: sf.unit}
	}
	w = wireSubsystems(deps)
	u.Add(w.subs...)
	defer u.Close()
	srv := w.admin

	defer mgr.Close()
	if err := startManager(ctx, u, startCfg); err != nil {
		return fmt.Errorf("start the unit: %w", err)
	}
	if err := srv.OpenSocket(); err != nil {
		return err
	}
	if node != nil {
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		u.Add(node)
		go func() { defer close(done); node.Run(cctx) }()
		// Leave before the unit stops: the lease is revoked, so the others
		// stop counting this unit at once.
		defer func() { cancel(); <-done }()
	}
	ver, rev := unit.Version()
	log.Info("unit running", "data", dir, "version", ver, "commit", rev, "pid", os.Getpid())
	defer notifyServiceManager(ctx, dir, log)() // READY, WATCHDOG, STOPPING under systemd

	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sig)
	select {
	case s := <-sig:
		// No revert timer may fire into a unit that is going away; an
		// unconfirmed apply is discarded on the next start anyway.
		mgr.Close()
		if s == syscall.SIGTERM {
			log.Info("SIGTERM: draining (no new calls, waiting for calls in progress)", "limit", drainTimeout.String())
			dctx, cancel := context.WithTimeout(ctx, *drainTimeout)
			go func() { // a second signal stops at once
				select {
				case <-sig:
					log.Info("second signal: stopping now")
					cancel()
				case <-dctx.Done():
				}
			}()
			if err := u.Drain(dctx); err != nil {
				log.Warn("drain ended with work still in progress", "err", err)
			}
			cancel()
		} else {
			log.Info("SIGINT: stopping now")
		}
	case <-ctx.Done():
	}
	if err := u.Close(); err != nil {
		log.Warn("closing the unit", "err", err)
	}
	log.Info("unit stopped")
	return nil
}

func newLogger(w io.Writer, format string, level *slog.LevelVar) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// startupConfig returns the configuration to start on: the last saved one.
// An empty store is first given the default configuration with a new admin
// password, written once to DATA/initial-admin-password.
func startupConfig(ctx context.Context, st store.Store, dir, initial string, log *slog.Logger) (*config.Config, error) {
	cfg, err := savedStartup(ctx, st)
	if err == nil {
		return cfg, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("read the saved configuration: %w", err)
	}
	cfg, pw, err := firstConfig(initial)
	if err != nil {
		return nil, err
	}
	// The password file comes before the store write: a crash in between
	// leaves an empty store, and the next start writes a new password.
	pwPath := filepath.Join(dir, PasswordFile)
	if err := os.WriteFile(pwPath, []byte(pw+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write %s: %w", pwPath, err)
	}
	if err := os.Chmod(pwPath, 0o600); err != nil {
		return nil, err
	}
	if err := bootstrap(ctx, st, cfg); errors.Is(err, lifecycle.ErrAlreadyBootstrapped) {
		// Another unit of the cluster stored the first configuration
		// meanwhile: that one is the cluster's.
		os.Remove(pwPath)
		return savedStartup(ctx, st)
	} else if err != nil {
		return nil, fmt.Errorf("store the first configuration: %w", err)
	}
	log.Info("first start: default configuration saved as version 1; admin password written", "file", pwPath)
	return savedStartup(ctx, st)
}

// firstConfig is the default configuration (or the document in the file
// initial) with a new random admin password.
func firstConfig(initial string) (*config.Config, string, error) {
	cfg := config.Default()
	if initial != "" {
		b, err := os.ReadFile(initial)
		if err != nil {
			return nil, "", fmt.Errorf("initial configuration: %w", err)
		}
		if cfg, err = config.Decode(b); err != nil {
			return nil, "", fmt.Errorf("initial configuration %s: %w", initial, err)
		}
	}
	pw := admin.RandomPassword()
	hash, err := admin.HashPassword(pw)
	if err != nil {
		return nil, "", err
	}
	cfg.Admin.PasswordHash = hash
	return cfg, pw, nil
}
