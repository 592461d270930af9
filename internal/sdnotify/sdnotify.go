// Package sdnotify speaks systemd's service notification protocol
// (sd_notify(3)): a service of Type=notify tells the manager when it is
// ready (READY=1), that it is alive (WATCHDOG=1) and that it is stopping
// (STOPPING=1), by datagrams on the unix socket named in $NOTIFY_SOCKET.
// Outside systemd the variable is unset and every call does nothing.
package sdnotify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

// States sent to the service manager.
const (
	Ready    = "READY=1"
	Stopping = "STOPPING=1"
	Watchdog = "WATCHDOG=1"
)

// Notify sends state to the socket in $NOTIFY_SOCKET. It reports false
// (and no error) when there is no socket, i.e. not run by systemd.
func Notify(state string) (bool, error) {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return false, nil
	}
	// A leading '@' names a socket in the abstract namespace.
	if path[0] == '@' {
		path = "\x00" + path[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return false, fmt.Errorf("sd_notify: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return false, fmt.Errorf("sd_notify %s: %w", state, err)
	}
	return true, nil
}

// WatchdogInterval is the watchdog timeout the manager expects pings
// within ($WATCHDOG_USEC), or 0 when no watchdog is set for this process
// ($WATCHDOG_PID, when set, must be ours).
func WatchdogInterval() (time.Duration, error) {
	usec := os.Getenv("WATCHDOG_USEC")
	if usec == "" {
		return 0, nil
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0, nil
	}
	n, err := strconv.ParseInt(usec, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("sd_notify: WATCHDOG_USEC=%q is not a positive number", usec)
	}
	return time.Duration(n) * time.Microsecond, nil
}

// RunWatchdog pings the manager at half the watchdog interval for as long
// as healthy returns nil, until ctx ends. A failed health check skips that
// ping (the manager restarts the service when pings stay away for the
// whole interval); onUnhealthy, when not nil, hears about each failure.
// It returns at once when no watchdog is configured.
func RunWatchdog(ctx context.Context, healthy func(context.Context) error, onUnhealthy func(error)) error {
	interval, err := WatchdogInterval()
	if err != nil || interval == 0 {
		return err
	}
	tick := time.NewTicker(interval / 2)
	defer tick.Stop()
	for {
		hctx, cancel := context.WithTimeout(ctx, interval/2)
		err := healthy(hctx)
		cancel()
		switch {
		case err == nil:
			if _, err := Notify(Watchdog); err != nil && onUnhealthy != nil {
				onUnhealthy(err)
			}
		case errors.Is(ctx.Err(), context.Canceled):
			return nil
		case onUnhealthy != nil:
			onUnhealthy(err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
