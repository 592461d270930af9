package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"

	"github.com/palisade-sbc/palisade/internal/admin"
	"github.com/palisade-sbc/palisade/internal/sdnotify"
)

// notifyServiceManager tells systemd (Type=notify, docs/operations.md) that
// the unit is up, once every listener is open, and keeps its watchdog fed
// for as long as the admin socket answers HTTP: a unit whose admin server
// no longer answers is restarted by the manager after WatchdogSec. The
// returned function sends STOPPING=1 and ends the pings. Outside systemd
// all of it does nothing.
func notifyServiceManager(ctx context.Context, dir string, log *slog.Logger) (stop func()) {
	sent, err := sdnotify.Notify(sdnotify.Ready)
	if err != nil {
		log.Warn("could not tell the service manager that the unit is ready", "err", err)
	}
	if !sent {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	sock := filepath.Join(dir, admin.SocketFile)
	go func() {
		defer close(done)
		// Logged when the state changes, not on every check.
		failing := false
		healthy := func(ctx context.Context) error {
			err := adminAnswers(ctx, sock)
			if err == nil && failing {
				failing = false
				log.Info("watchdog: the unit answers again; keep-alives resumed")
			}
			return err
		}
		err := sdnotify.RunWatchdog(ctx, healthy, func(err error) {
			if !failing {
				failing = true
				log.Warn("watchdog: the unit is not healthy; no keep-alive sent to the service manager", "err", err)
			}
		})
		if err != nil {
			log.Warn("watchdog not started", "err", err)
		}
	}()
	return func() {
		cancel()
		<-done
		if _, err := sdnotify.Notify(sdnotify.Stopping); err != nil {
			log.Debug("STOPPING not sent to the service manager", "err", err)
		}
	}
}

// adminAnswers asks the admin socket who we are: any HTTP
// answer below 500 means its server is serving.
func adminAnswers(ctx context.Context, sock string) error {
	cl := socketClient(sock)
	defer cl.close() //nolint:errcheck // closes idle connections only
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cl.base+"/api/v1/whoami", nil)
	if err != nil {
		return err
	}
	resp, err := cl.hc.Do(req)
	if err != nil {
		return fmt.Errorf("admin socket: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		return fmt.Errorf("admin socket answered %s", resp.Status)
	}
	return nil
}
