package pki

import (
	"encoding/pem"
	"maps"
	"testing"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/pki/pkitest"
)

// Native fuzzers for every parser of uploaded bytes: certificates (PEM or
// DER bundles), CRLs, and the whole import (which must store nothing when it
// refuses).

func seedCerts(f *testing.F) {
	h := newHierarchy(f)
	leaf := h.inter.Issue(f, pkitest.NewKey(f).Public(), pkitest.Leaf{CN: "sbc.example.com"})
	f.Add(EncodeCertificatesPEM(leaf, h.inter.Cert, h.root.Cert))
	f.Add(leaf.Raw)
	f.Add(append(append([]byte(nil), leaf.Raw...), h.inter.Cert.Raw...))
	f.Add(leaf.Raw[:len(leaf.Raw)/3])
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"))
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: h.root.CRL(f, leaf).Raw}))
	f.Add(h.root.CRL(f).Raw)
	f.Add([]byte{0x30, 0x84, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{})
}

func FuzzParseCertificates(f *testing.F) {
	seedCerts(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		certs, err := ParseCertificates(data)
		if err == nil && len(certs) == 0 {
			t.Fatal("no error and no certificate")
		}
		if err != nil && !IsInputError(err) {
			t.Fatalf("error %v is not an input error", err)
		}
		for _, c := range certs {
			_ = Describe(c, c.NotBefore)
		}
	})
}

func FuzzParseCRL(f *testing.F) {
	seedCerts(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		crl, err := ParseCRL(data)
		if err == nil && crl == nil {
			t.Fatal("no error and no CRL")
		}
		if err != nil && !IsInputError(err) {
			t.Fatalf("error %v is not an input error", err)
		}
	})
}

func FuzzImport(f *testing.F) {
	seedCerts(f)
	fx := newFixture(f)
	if _, err := fx.certs.New(fx.ctx, fx.cfg, hq, NewOptions{Subject: Subject{CN: "sbc.example.com"}}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		before := fx.snapshot(t)
		if _, err := fx.certs.Import(fx.ctx, fx.cfg, hq, [][]byte{data}); err == nil {
			t.Fatal("a file without the request's certificate was accepted")
		}
		if !maps.Equal(before, fx.snapshot(t)) {
			t.Fatal("a refused import stored something")
		}
		cfg, err := config.Clone(fx.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fx.certs.ImportCA(fx.ctx, cfg, "x", data); err != nil && !IsInputError(err) {
			t.Fatalf("CA import error %v is not an input error", err)
		}
	})
}
