package sdnotify

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// listen makes a notification socket like systemd's and points
// $NOTIFY_SOCKET at it.
func listen(t *testing.T, abstract bool) *net.UnixConn {
	t.Helper()
	name := filepath.Join(t.TempDir(), "notify")
	env := name
	if abstract {
		name = "\x00palisade-test-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		env = "@" + name[1:]
	}
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", env)
	return c
}

func read(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(30 * time.Second)) // only a real failure waits this long
	b := make([]byte, 256)
	n, err := c.Read(b)
	if err != nil {
		t.Fatal("no notification:", err)
	}
	return string(b[:n])
}

func TestNotify(t *testing.T) {
	for _, abstract := range []bool{false, true} {
		c := listen(t, abstract)
		sent, err := Notify(Ready)
		if err != nil || !sent {
			t.Fatalf("abstract=%v: sent=%v err=%v", abstract, sent, err)
		}
		if got := read(t, c); got != "READY=1" {
			t.Fatalf("abstract=%v: got %q", abstract, got)
		}
	}
}

func TestNotifyOutsideSystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	t.Setenv("WATCHDOG_USEC", "")
	if sent, err := Notify(Ready); sent || err != nil {
		t.Fatalf("sent=%v err=%v; want nothing done", sent, err)
	}
	called := false
	err := RunWatchdog(context.Background(), func(context.Context) error { called = true; return nil }, nil)
	if err != nil || called {
		t.Fatalf("watchdog without WATCHDOG_USEC: err=%v, health checked=%v", err, called)
	}
}

func TestWatchdogInterval(t *testing.T) {
	for _, tc := range []struct {
		usec, pid string
		want      time.Duration
		err       bool
	}{
		{"", "", 0, false},
		{"30000000", "", 30 * time.Second, false},
		{"30000000", "1", 0, false}, // another process's watchdog
		{"x", "", 0, true},
		{"-5", "", 0, true},
	} {
		t.Setenv("WATCHDOG_USEC", tc.usec)
		t.Setenv("WATCHDOG_PID", tc.pid)
		got, err := WatchdogInterval()
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("USEC=%q PID=%q: %v, %v; want %v, error %v", tc.usec, tc.pid, got, err, tc.want, tc.err)
		}
	}
}

// An unhealthy unit sends no pings: the first ping comes only after the
// health check has passed.
func TestWatchdogPingsOnlyWhenHealthy(t *testing.T) {
	c := listen(t, false)
	t.Setenv("WATCHDOG_USEC", "20000") // 20 ms: pings every 10 ms
	t.Setenv("WATCHDOG_PID", "")
	var checks, failures atomic.Int32
	healthy := func(context.Context) error {
		if checks.Add(1) <= 3 {
			return errors.New("not yet")
		}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- RunWatchdog(ctx, healthy, func(error) { failures.Add(1) }) }()
	for i := 0; i < 3; i++ {
		if got := read(t, c); got != "WATCHDOG=1" {
			t.Fatalf("got %q", got)
		}
		if n := checks.Load(); n < 4+int32(i) {
			t.Fatalf("ping %d after only %d health checks (3 failed ones first)", i, n)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if failures.Load() != 3 {
		t.Fatalf("%d failures reported, want 3", failures.Load())
	}
}
