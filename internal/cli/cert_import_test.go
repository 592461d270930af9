package cli

import (
	"context"
	"maps"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/lifecycle"
	"github.com/palisade-sbc/palisade/internal/pki"
	"github.com/palisade-sbc/palisade/internal/pki/pkitest"
	"github.com/palisade-sbc/palisade/internal/store"
)

// storeSnapshot is every key of the data directory's store with its value.
func storeSnapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	kvs, err := st.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, kv := range kvs {
		m[kv.Key] = string(kv.Value)
	}
	return m
}

// TestCertImportForeignKey: `cert import` of a certificate made for another
// key into an entry that already holds its signed certificate exits non-zero
// with both keys' fingerprints and changes neither the store nor the
// configuration.
func TestCertImportForeignKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := lifecycle.Bootstrap(context.Background(), st, config.Default(), "test"); err != nil {
		t.Fatal(err)
	}
	st.Close()
	work := t.TempDir()
	const name = "SBC at HQ"
	mustCLI(t, dir, "cert", "new", name, "--cn", "sbc.example.com")
	csr := mustCLI(t, dir, "cert", "csr", name)
	ca := pkitest.NewRoot(t, "CLI Test Root", "CLI Test")
	leaf := ca.IssueCSR(t, []byte(csr))
	if out := mustCLI(t, dir, "cert", "import", name, writeFile(t, work, "device.pem", pki.EncodeCertificatesPEM(leaf))); !strings.Contains(out, "certificate imported") {
		t.Fatalf("import of the right certificate: %s", out)
	}

	foreign := ca.Issue(t, pkitest.NewKey(t).Public(), pkitest.Leaf{CN: "sbc.example.com"})
	foreignKey, _ := pki.KeyID(foreign.PublicKey)
	entryKey, _ := pki.KeyID(leaf.PublicKey)
	storeBefore := storeSnapshot(t, dir)
	cfgBefore := mustCLI(t, dir, "config", "export")
	r := palisade(t, dir, "cert", "import", name, writeFile(t, work, "other.pem", pki.EncodeCertificatesPEM(foreign)))
	if r.code == 0 || strings.Contains(r.stdout, "imported") {
		t.Fatalf("a certificate for another key: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, foreignKey) || !strings.Contains(r.stderr, entryKey) {
		t.Errorf("the error does not name both keys (%s, %s): %s", foreignKey, entryKey, r.stderr)
	}
	if cfgAfter := mustCLI(t, dir, "config", "export"); cfgAfter != cfgBefore {
		t.Error("the refused import changed the preliminary configuration")
	}
	if !maps.Equal(storeBefore, storeSnapshot(t, dir)) {
		t.Error("the refused import changed the store")
	}
}
