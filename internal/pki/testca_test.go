package pki

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/store"
)

// The test CA hierarchy is made in the tests: root → intermediate → device,
// plus variants (expired, not yet valid, wrong EKU, wildcard, other CA,
// revoked).

var serialN int64 = 1000

type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func ecKey(t testing.TB) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func nextSerial() *big.Int {
	serialN++
	return big.NewInt(serialN)
}

func newRoot(t testing.TB, cn, org string) *testCA {
	t.Helper()
	key := ecKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: nextSerial(), Subject: pkix.Name{CommonName: cn, Organization: []string{org}},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(10 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &testCA{cert: c, key: key}
}

func (ca *testCA) intermediate(t testing.TB, cn string) *testCA {
	t.Helper()
	key := ecKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: nextSerial(), Subject: pkix.Name{CommonName: cn, Organization: ca.cert.Subject.Organization},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(5 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &testCA{cert: c, key: key}
}

type leafOpts struct {
	cn        string
	dns       []string
	ips       []net.IP
	eku       []x509.ExtKeyUsage
	notBefore time.Time
	notAfter  time.Time
}

func (ca *testCA) issue(t testing.TB, pub crypto.PublicKey, o leafOpts) *x509.Certificate {
	t.Helper()
	if o.notBefore.IsZero() {
		o.notBefore = time.Now().Add(-24 * time.Hour)
	}
	if o.notAfter.IsZero() {
		o.notAfter = time.Now().Add(365 * 24 * time.Hour)
	}
	if o.eku == nil {
		o.eku = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	if o.dns == nil && o.ips == nil {
		o.dns = []string{o.cn}
	}
	tmpl := &x509.Certificate{
		SerialNumber: nextSerial(), Subject: pkix.Name{CommonName: o.cn}, NotBefore: o.notBefore, NotAfter: o.notAfter,
		DNSNames: o.dns, IPAddresses: o.ips, ExtKeyUsage: o.eku, KeyUsage: x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

func (ca *testCA) crl(t testing.TB, revoked ...*x509.Certificate) *x509.RevocationList {
	t.Helper()
	tmpl := &x509.RevocationList{Number: nextSerial(), ThisUpdate: time.Now().Add(-time.Hour), NextUpdate: time.Now().Add(7 * 24 * time.Hour)}
	for _, r := range revoked {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: r.SerialNumber, RevocationTime: time.Now().Add(-time.Hour)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca.cert, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	crl, _ := x509.ParseRevocationList(der)
	return crl
}

// hierarchy is root → inter → (certificates made per test).
type hierarchy struct {
	root, inter, other *testCA
}

func newHierarchy(t testing.TB) *hierarchy {
	root := newRoot(t, "Palisade Test Root CA", "Palisade Test")
	return &hierarchy{root: root, inter: root.intermediate(t, "Palisade Test Issuing CA 1"),
		other: newRoot(t, "Other Org Root CA", "Other Org")}
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
