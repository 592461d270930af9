package registrar

import (
	"context"
	"github.com/palisade-sbc/palisade/internal/testkit"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// runScanner runs a sipvicious tool against the unit's inside listener.
func runScanner(t *testing.T, tool string, args ...string) string {
	t.Helper()
	bin := testkit.NeedBinary(t, tool, "sipvicious")
	local := strconv.Itoa(testkit.FreePort(t, "udp", "127.0.0.1"))
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"-b", "127.0.0.1", "-P", local}, args...)...)
	cmd.Dir = t.TempDir()
	out, _ := cmd.CombinedOutput()
	t.Logf("%s:\n%s", tool, out)
	return string(out)
}

// TestScannersLearnNothing: svwar cannot tell the registrar's users from
// made-up ones, and svcrack is locked out before it reaches the right
// password in its dictionary.
func TestScannersLearnNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, unit := startUnit(t, ctx, unitConfig())
	in := unit.ListenAddr("inside", "udp")
	port := strconv.Itoa(int(in.Port()))

	dict := filepath.Join(t.TempDir(), "words")
	words := []string{"alice", "bob", "carol", "100", "200", "admin", "x1", "x2", "x3", "x4", "x5", "wonderland"}
	if err := os.WriteFile(dict, []byte(strings.Join(words, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := runScanner(t, "svwar", "-p", port, "-d", dict, "127.0.0.1")
	for _, u := range []string{"alice", "bob"} {
		if strings.Contains(out, "| "+u+" ") || strings.Contains(out, "| "+u+"\t") {
			t.Errorf("svwar found user %s", u)
		}
	}

	// svcrack cannot answer the SHA-256 challenge at all; run again, the
	// registrar offers it MD5 (as to an old phone) and it is locked out
	// after a few wrong guesses, before "wonderland" comes up.
	for range 2 {
		if out := runScanner(t, "svcrack", "-p", port, "-u", "alice", "-d", dict, "127.0.0.1"); strings.Contains(out, "wonderland") {
			t.Errorf("svcrack found alice's password")
		}
	}
	if !r.guard.locked(in.Addr(), "alice") {
		t.Error("the scanning source is not locked out")
	}
	if len(r.Registrations()) != 0 {
		t.Errorf("a scanner registered: %+v", r.Registrations())
	}
}
