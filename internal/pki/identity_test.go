package pki

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/pki/pkitest"
)

// VerifyClient accepts what the listener with require_client_cert accepts
// and nothing else: the SIP layer trusts certificate names only after it.
func TestVerifyClient(t *testing.T) {
	u := newUnit(t)
	h := u.h
	leaf := func(ca *pkitest.CA, o pkitest.Leaf) *x509.Certificate {
		return ca.Issue(t, pkitest.NewKey(t).Public(), o)
	}
	good := leaf(h.inter, pkitest.Leaf{CN: "pbx.example.com"})
	tests := []struct {
		name  string
		chain []*x509.Certificate
		ok    bool
	}{
		{"chain to the CA store", []*x509.Certificate{good, h.inter.Cert}, true},
		{"intermediate missing", []*x509.Certificate{good}, false},
		{"other CA", []*x509.Certificate{leaf(h.other, pkitest.Leaf{CN: "pbx.example.com"})}, false},
		{"server-only usage", []*x509.Certificate{leaf(h.inter, pkitest.Leaf{CN: "pbx.example.com", EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}), h.inter.Cert}, false},
		{"expired", []*x509.Certificate{leaf(h.inter, pkitest.Leaf{CN: "pbx.example.com", NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)}), h.inter.Cert}, false},
		{"self-signed stranger", []*x509.Certificate{pkitest.NewRoot(t, "pbx.example.com", "").Cert}, false},
		{"no certificate", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := u.s.VerifyClient(tc.chain); (err == nil) != tc.ok {
				t.Fatalf("VerifyClient = %v, want ok %v", err, tc.ok)
			}
		})
	}
	if err := New(u.st, nil).VerifyClient([]*x509.Certificate{good, h.inter.Cert}); err == nil {
		t.Fatal("a subsystem with no configuration applied verified a chain")
	}
}
