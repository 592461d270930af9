//go:build linux

package cli

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/testkit"
)

// keepalivedNotify runs the notify script the package installs as
// keepalived runs it (TYPE NAME STATE), against the unit of dir.
func keepalivedNotify(t *testing.T, dir, state string) (string, int) {
	t.Helper()
	cmd := exec.Command("../../packaging/files/keepalived-notify", "INSTANCE", "VI_SBC", state)
	cmd.Env = append(os.Environ(), "PALISADE_BIN="+binPath, "PALISADE_DATA="+dir)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("keepalived-notify: %v", err)
	}
	t.Logf("keepalived-notify INSTANCE VI_SBC %s on %s: %s", state, filepath.Base(dir), strings.TrimSpace(string(out)))
	return string(out), cmd.ProcessState.ExitCode()
}

// startBoth starts units a (the owner) and b on the pair's store, and
// returns them with the tail of b's log.
func (p *haPair) startBoth(t *testing.T, dirA, dirB string) (a, b *unitProc, bLog func() string) {
	t.Helper()
	a = p.start(t, dirA, p.storeURL, "a")
	b = p.start(t, dirB, p.storeURL, "b")
	return a, b, func() string { return testkit.LastLines(b.log.String(), 60) }
}

// waitLogCount waits until s is in the unit's log n times.
func waitLogCount(t *testing.T, u *unitProc, s string, n int, limit time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(limit); strings.Count(u.log.String(), s) < n; {
		if time.Now().After(deadline) {
			t.Fatalf("%q not %d times in the unit's log within %v:\n%s", s, n, limit, testkit.LastLines(u.log.String(), 60))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestKeepalivedNotify: the keepalived notify script defers to the
// election (docs/ha.md, keepalived). Units a (preferred, the owner) and b
// share the floating addresses; a carries a call. keepalived starts b as
// BACKUP (b goes on standby, a keeps the addresses), then makes b MASTER
// (b is preferred by keepalived again; a, preferred by configuration, keeps
// them) and a BACKUP: a hands the addresses and the call over at once, and
// the media goes on through b. MASTER on a again: b keeps the addresses
// while the call lasts (no fail-back: keepalived cannot take them), and
// once it has ended a owns them again. A state keepalived does not send is
// refused.
func TestKeepalivedNotify(t *testing.T) {
	p := newHAPair(t, "")
	dirA, dirB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	a, b, bLog := p.startBoth(t, dirA, dirB)
	legs := p.placeCalls(t, 1, 1)
	mediaBack(t, legs, time.Now().Add(500*time.Millisecond), func() string { return testkit.LastLines(a.log.String(), 40) })
	notify := func(dir, state, want string) {
		t.Helper()
		if out, code := keepalivedNotify(t, dir, state); code != 0 || !strings.Contains(out, want) {
			t.Fatalf("%s on %s: exit %d: %s, want %q\n%s", state, filepath.Base(dir), code, out, want, testkit.LastLines(a.log.String(), 30))
		}
	}
	status := func(dir, want string) {
		t.Helper()
		if st := mustCLI(t, dir, "status", "ha"); !strings.Contains(st, want) {
			t.Fatalf("status ha on %s, want %q:\n%s", filepath.Base(dir), want, st)
		}
	}

	notify(dirB, "BACKUP", "on standby; this unit does not own the floating addresses: nothing to hand over")
	status(dirB, "standby: another unit owns the floating addresses; on standby (keepalived: VRRP backup)")
	status(dirA, "owner of the floating addresses")
	notify(dirB, "MASTER", "preferred again;")
	status(dirA, "owner of the floating addresses")

	moved := time.Now()
	notify(dirA, "BACKUP", "on standby; floating addresses handed over after")
	waitLog(t, b, "ha: floating addresses taken", 30*time.Second)
	status(dirB, "calls adopted 1")
	status(dirB, "owner of the floating addresses")
	status(dirA, "on standby (keepalived: VRRP backup)")
	mediaBack(t, legs, moved.Add(100*time.Millisecond), bLog)

	notify(dirA, "MASTER", "preferred again;")
	status(dirB, "owner of the floating addresses")
	p.byeAll(t, legs, bLog)
	waitLogCount(t, a, "ha: floating addresses taken", 2, 60*time.Second)
	status(dirA, "owner of the floating addresses")

	if out, code := keepalivedNotify(t, dirA, "SPLIT"); code == 0 {
		t.Fatalf("a state keepalived does not send was taken: %s", out)
	}
}
