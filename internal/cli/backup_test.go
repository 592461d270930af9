package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palisade-sbc/palisade/internal/lifecycle"
)

// TestConfigBackupKeys: `config backup` of a unit with a private key needs
// --passphrase (8 characters or more) or --without-keys; with neither it
// exits non-zero naming both and writes no file.
func TestConfigBackupKeys(t *testing.T) {
	dir := newStoppedDataDir(t)
	mustCLI(t, dir, "cert", "new", "sbc", "--cn", "sbc.example.com")
	work := t.TempDir()
	file := filepath.Join(work, "b.json")
	for args, want := range map[string]string{"": "1 private key", "--passphrase=short": "at least 8"} {
		r := palisade(t, dir, append([]string{"config", "backup", file}, strings.Fields(args)...)...)
		if r.code == 0 || !strings.Contains(r.stderr, want) {
			t.Fatalf("backup %v: exit %d %q", args, r.code, r.stderr)
		}
		if args == "" && (!strings.Contains(r.stderr, "--without-keys") || !strings.Contains(r.stderr, "--passphrase")) {
			t.Errorf("the refusal does not name the choices: %q", r.stderr)
		}
		if _, err := os.Stat(file); !os.IsNotExist(err) {
			t.Fatalf("a refused backup wrote %s", file)
		}
	}
	if r := palisade(t, dir, "config", "backup", file, "--without-keys"); r.code != 0 || !strings.Contains(r.stderr, "leaves the private keys out") {
		t.Fatalf("backup --without-keys: exit %d, no warning: %q", r.code, r.stderr)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), lifecycle.PrivateKeyPrefix) || !strings.Contains(string(b), `"pki/private/`) {
		t.Fatalf("backup --without-keys:\n%.600s", b)
	}
	enc := filepath.Join(work, "enc.json")
	mustCLI(t, dir, "config", "backup", enc, "--passphrase", "long enough")
	if b, _ := os.ReadFile(enc); !strings.Contains(string(b), `"encrypted": true`) || strings.Contains(string(b), lifecycle.PrivateKeyPrefix) {
		t.Fatalf("backup --passphrase:\n%.600s", b)
	}
	mustCLI(t, dir, "config", "restore", enc, "--passphrase", "long enough")
}
