package pki

import (
	"context"
	"crypto"
	"testing"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/pki/pkitest"
	"github.com/palisade-sbc/palisade/internal/store"
)

// The test CA hierarchy is made in the tests: root → intermediate → device,
// plus variants (expired, not yet valid, wrong EKU, wildcard, other CA,
// revoked).

// hierarchy is root → inter → (certificates made per test).
type hierarchy struct {
	root, inter, other *pkitest.CA
}

func newHierarchy(t testing.TB) *hierarchy {
	root := pkitest.NewRoot(t, "Palisade Test Root CA", "Palisade Test")
	return &hierarchy{root: root, inter: root.Intermediate(t, "Palisade Test Issuing CA 1"),
		other: pkitest.NewRoot(t, "Other Org Root CA", "Other Org")}
}

// fixture is a store, a preliminary document and the certificate commands.
type fixture struct {
	ctx   context.Context
	st    *store.Memory
	cfg   *config.Config
	certs *Certs
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	st := store.NewMemory()
	return &fixture{ctx: context.Background(), st: st, cfg: config.Default(), certs: &Certs{Store: st}}
}

// keyOfEntry returns the public key of a private entry (to have a CA sign it).
func (f *fixture) keyOfEntry(t testing.TB, name string) crypto.PublicKey {
	t.Helper()
	m, err := f.certs.privateMaterial(f.ctx, f.cfg, name)
	if err != nil {
		t.Fatal(err)
	}
	k, err := loadKey(f.ctx, f.st, m.rec.KeyID)
	if err != nil {
		t.Fatal(err)
	}
	return k.Public()
}

// snapshot is every key under pki/ (to prove nothing was stored).
func (f *fixture) snapshot(t testing.TB) map[string]string {
	t.Helper()
	kvs, err := f.st.List(f.ctx, "pki/")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, kv := range kvs {
		m[kv.Key] = string(kv.Value)
	}
	return m
}
