package acme

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/pki"
	"github.com/palisade-sbc/palisade/internal/pki/acme/acmetest"
	"github.com/palisade-sbc/palisade/internal/store"
)

// unit is the part of a unit ACME works with: the store, the PKI with a
// TLS listener and the admin listener on the managed entry, and the manager.
type unit struct {
	st    store.Store
	certs *pki.Subsystem
	mgr   *Manager
	cfg   *config.Config
}

func newUnit(t *testing.T, rootPEM []byte, a config.ACME) *unit {
	t.Helper()
	ctx := context.Background()
	u := &unit{st: store.NewMemory()}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	u.certs = pki.New(u.st, log)
	t.Cleanup(func() { u.certs.Close() })
	u.mgr = New(u.st, u.certs, log)
	u.mgr.FirstRetry = 200 * time.Millisecond
	t.Cleanup(func() { u.mgr.Close() })
	cfg := config.Default()
	if _, err := (&pki.Certs{Store: u.st}).ImportCA(ctx, cfg, "acme-ca", rootPEM); err != nil {
		t.Fatal(err)
	}
	cfg.Certificates.Private = append(cfg.Certificates.Private, config.PrivateCertificate{Name: "public"})
	cfg.SIP.Listeners[2].Certificate = "public"
	cfg.Admin.Certificate = "public"
	a.Enabled, a.CACertificates, a.KeyType = true, []string{"acme-ca"}, "ecdsa-p256"
	a.Certificates = []config.ACMECertificate{{Name: "public", Domains: []string{acmetest.Domain}}}
	cfg.ACME = a
	if errs := cfg.Validate(); errs != nil {
		t.Fatal(errs)
	}
	u.cfg = cfg
	u.apply(t)
	return u
}

// apply does what the unit does on apply: ACME, then the PKI.
func (u *unit) apply(t *testing.T) {
	t.Helper()
	if err := u.mgr.Apply(context.Background(), u.cfg); err != nil {
		t.Fatal(err)
	}
	if err := u.certs.Apply(context.Background(), u.cfg); err != nil {
		t.Fatal(err)
	}
}

// served is the certificate a TLS client gets from a listener that uses
// the managed entry, through the PKI's ServerConfig (the hot swap path).
func (u *unit) served(t *testing.T) *tlsLeaf {
	t.Helper()
	sc, err := u.certs.ServerConfig(u.cfg.SIP.Listeners[2])
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", sc)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, ServerName: acmetest.Domain}) // we look at what is served
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	leaf := c.ConnectionState().PeerCertificates[0]
	return &tlsLeaf{fp: pki.Fingerprint(leaf), issuer: leaf.Issuer.CommonName, subject: leaf.Subject.CommonName,
		serial: fmt.Sprintf("%x", leaf.SerialNumber), notBefore: leaf.NotBefore, notAfter: leaf.NotAfter, names: leaf.DNSNames}
}

type tlsLeaf struct {
	fp, issuer, subject, serial string
	notBefore, notAfter         time.Time
	names                       []string
}

func (l *tlsLeaf) fromCA() bool { return l.issuer != l.subject && strings.Contains(l.issuer, "Pebble") }

// waitFor polls until cond holds; only a real failure runs out the bound.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 1200; i++ {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not after 2 minutes", what)
}
