package b2bua

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
)

// testPKI is a pki.Provider with one self-signed certificate; as a client
// it trusts anything (the tests check transport behaviour, not trust).
type testPKI struct {
	cert  tls.Certificate
	named map[string]tls.Certificate // by listener certificate name
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	return &testPKI{cert: makeCert(t, "sbc.test")}
}

func makeCert(t *testing.T, cn string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"sbc.test"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.2"), net.ParseIP("127.0.0.3")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func (p *testPKI) ServerConfig(l config.Listener) (*tls.Config, error) {
	c := p.cert
	if n, ok := p.named[l.Certificate]; ok {
		c = n
	}
	return &tls.Config{Certificates: []tls.Certificate{c}, MinVersion: tls.VersionTLS12}, nil
}

func (p *testPKI) ClientConfig(name string) (*tls.Config, error) {
	return &tls.Config{InsecureSkipVerify: true, ServerName: name, MinVersion: tls.VersionTLS12}, nil //nolint:gosec // test peer
}
