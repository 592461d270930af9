package cli

import (
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/admin"
)

// Under systemd (Type=notify) the unit says READY=1 once its listeners
// answer, feeds the watchdog while healthy and says STOPPING=1 on SIGTERM.
func TestServiceManagerNotifications(t *testing.T) {
	sockPath := filepath.Join(t.TempDir(), "notify")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	t.Setenv("NOTIFY_SOCKET", sockPath)
	t.Setenv("WATCHDOG_USEC", "2000000") // pings every second
	t.Setenv("WATCHDOG_PID", "")

	dir := t.TempDir()
	u := startUnit(t, dir, testConfigFile(t))
	next := func(want string) {
		t.Helper()
		buf := make([]byte, 256)
		for {
			ln.SetReadDeadline(time.Now().Add(60 * time.Second))
			n, err := ln.Read(buf)
			if err != nil {
				t.Fatalf("waiting for %s: %v\n%s", want, err, u.log.String())
			}
			if got := string(buf[:n]); got == want {
				return
			} else if want == "STOPPING=1" && got == "WATCHDOG=1" {
				continue // a ping may still be under way
			} else {
				t.Fatalf("got %q, want %q", got, want)
			}
		}
	}
	next("READY=1")
	if !socketAnswers(filepath.Join(dir, admin.SocketFile)) {
		t.Fatal("READY sent before the admin socket answers")
	}
	next("WATCHDOG=1")
	next("WATCHDOG=1")
	u.stop(t)
	next("STOPPING=1")
}
