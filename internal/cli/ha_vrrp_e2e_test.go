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
// share the floating addresses; a carries a call. BACKUP on b, which does
// not own them, does nothing; BACKUP on a moves the addresses and the call
// to b (the media goes on through b); MASTER on a puts it back into the
// election, but b keeps the addresses while the call lasts (no fail-back:
// keepalived cannot take them); once the call has ended a owns them again.
// A state keepalived does not send is refused.
func TestKeepalivedNotify(t *testing.T) {
	p := newHAPair(t, "")
	dirA, dirB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	a, b, bLog := p.startBoth(t, dirA, dirB)
	legs := p.placeCalls(t, 1, 1)
	mediaBack(t, legs, time.Now().Add(500*time.Millisecond), func() string { return testkit.LastLines(a.log.String(), 40) })

	if out, code := keepalivedNotify(t, dirB, "BACKUP"); code != 0 || !strings.Contains(out, "does not own the floating addresses: nothing to do") {
		t.Fatalf("BACKUP on b: exit %d: %s", code, out)
	}
	if st := mustCLI(t, dirA, "status", "ha"); !strings.Contains(st, "owner of the floating addresses") {
		t.Fatalf("a after BACKUP on b:\n%s", st)
	}

	moved := time.Now()
	if out, code := keepalivedNotify(t, dirA, "BACKUP"); code != 0 || !strings.Contains(out, "0 calls ended, 1 handed over") {
		t.Fatalf("BACKUP on a: exit %d: %s\n%s", code, out, testkit.LastLines(a.log.String(), 40))
	}
	waitLog(t, b, "ha: floating addresses taken", 30*time.Second)
	if st := mustCLI(t, dirB, "status", "ha"); !strings.Contains(st, "owner of the floating addresses") || !strings.Contains(st, "calls adopted 1") {
		t.Fatalf("b after BACKUP on a:\n%s", st)
	}
	mediaBack(t, legs, moved.Add(100*time.Millisecond), bLog)

	if out, code := keepalivedNotify(t, dirA, "MASTER"); code != 0 || !strings.Contains(out, "back in the election") {
		t.Fatalf("MASTER on a: exit %d: %s", code, out)
	}
	waitLog(t, a, "vip: the hold after a release ended early; back in the election", 30*time.Second)
	if st := mustCLI(t, dirB, "status", "ha"); !strings.Contains(st, "owner of the floating addresses") {
		t.Fatalf("b gave the addresses up while they carry a call:\n%s", st)
	}
	p.byeAll(t, legs, bLog)
	waitLogCount(t, a, "ha: floating addresses taken", 2, 60*time.Second)
	if st := mustCLI(t, dirA, "status", "ha"); !strings.Contains(st, "owner of the floating addresses") {
		t.Fatalf("a after the call ended:\n%s", st)
	}

	if out, code := keepalivedNotify(t, dirA, "SPLIT"); code == 0 {
		t.Fatalf("a state keepalived does not send was taken: %s", out)
	}
}
