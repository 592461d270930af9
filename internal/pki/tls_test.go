package pki

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/pki/pkitest"
	dto "github.com/prometheus/client_model/go"
)

// unitFixture is a running PKI subsystem: private entry "sbc" (issued by
// the intermediate, chain imported), the root in the CA store, the outside
// TLS listener using "sbc" and requiring client certificates.
type unitFixture struct {
	*fixture
	h   *hierarchy
	s   *Subsystem
	dev *x509.Certificate
}

func newUnit(t *testing.T) *unitFixture {
	t.Helper()
	f := newFixture(t)
	h := newHierarchy(t)
	u := &unitFixture{fixture: f, h: h}
	u.dev = u.ownCert(t, "sbc", h.inter, "sbc.example.com")
	if _, err := f.certs.ImportCA(f.ctx, f.cfg, "root", EncodeCertificatesPEM(h.root.Cert)); err != nil {
		t.Fatal(err)
	}
	f.cfg.Network.Interfaces[1].FQDN = "sbc.example.com"
	f.cfg.SIP.Listeners[2].Certificate = "sbc"
	f.cfg.SIP.Listeners[2].RequireClientCert = true
	f.cfg.TLS.ClientCertificate = "sbc"
	f.cfg.TLS.HandshakeTimeout = config.Duration(5 * time.Second)
	f.cfg.Certificates.Private = f.cfg.Certificates.Private[1:] // drop "default" (no material)
	u.s = New(f.st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(func() { u.s.Close() })
	if err := u.s.Apply(f.ctx, f.cfg); err != nil {
		t.Fatal(err)
	}
	return u
}

// ownCert makes a private entry name with a certificate from ca for cn.
func (u *unitFixture) ownCert(t *testing.T, name string, ca *pkitest.CA, cn string) *x509.Certificate {
	t.Helper()
	if _, err := u.certs.New(u.ctx, u.cfg, name, NewOptions{Subject: Subject{CN: cn}}); err != nil {
		t.Fatal(err)
	}
	dev := ca.Issue(t, u.keyOfEntry(t, name), pkitest.Leaf{CN: cn})
	if _, err := u.certs.Import(u.ctx, u.cfg, name, [][]byte{EncodeCertificatesPEM(dev, ca.Cert)}); err != nil {
		t.Fatal(err)
	}
	return dev
}

// peerCert is a key and chain for a test peer.
func peerCert(t *testing.T, ca *pkitest.CA, o pkitest.Leaf, chain ...*x509.Certificate) tls.Certificate {
	t.Helper()
	key := pkitest.NewKey(t)
	leaf := ca.Issue(t, key.Public(), o)
	c := tls.Certificate{PrivateKey: key, Leaf: leaf, Certificate: [][]byte{leaf.Raw}}
	for _, x := range chain {
		c.Certificate = append(c.Certificate, x.Raw)
	}
	return c
}

func (u *unitFixture) listen(t *testing.T) (net.Listener, string) {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := u.s.Listen(inner, u.cfg.SIP.Listeners[2])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln, inner.Addr().String()
}

func failures(c Cause) float64 {
	var m dto.Metric
	if err := handshakeFailures.WithLabelValues(string(c)).Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// dialAsPeer connects as a TLS client with cert (nil = none), finishes the
// handshake and waits for the server's verdict (TLS 1.3 sends it after the
// client's Finished). It returns the server certificate and the error.
func dialAsPeer(t *testing.T, addr string, cert *tls.Certificate, cfg *tls.Config) (*x509.Certificate, error) {
	t.Helper()
	if cfg == nil {
		cfg = &tls.Config{}
	}
	cfg.InsecureSkipVerify = true
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	leaf := c.ConnectionState().PeerCertificates[0]
	if _, err := c.Write([]byte("OPTIONS")); err != nil {
		return leaf, err
	}
	var b [16]byte
	_, err = c.Read(b[:])
	return leaf, err
}

// TestServerDiagnosis: peers with each kind of bad client certificate are
// refused by a listener requiring client certificates, with the right cause.
func TestServerDiagnosis(t *testing.T) {
	u := newUnit(t)
	h := u.h
	inter2 := h.root.Intermediate(t, "Palisade Test Issuing CA 2")
	revoked := peerCert(t, h.root, pkitest.Leaf{CN: "revoked.example.com"})
	if _, err := u.certs.ImportCRL(u.ctx, u.cfg, "root", h.root.CRL(t, revoked.Leaf).Raw); err != nil {
		t.Fatal(err)
	}
	if err := u.s.Apply(u.ctx, u.cfg); err != nil {
		t.Fatal(err)
	}
	ln, addr := u.listen(t)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { // echo, so that the client sees a working connection
				defer c.Close()
				var b [16]byte
				n, _ := c.Read(b[:])
				c.Write(b[:n])
			}()
		}
	}()
	past := time.Now().Add(-400 * 24 * time.Hour)
	cases := []struct {
		name string
		cert *tls.Certificate
		cfg  *tls.Config
		want Cause // "" = accepted
		text string
	}{
		{"valid with chain", ptr(peerCert(t, h.inter, pkitest.Leaf{CN: "pbx.example.com"}, h.inter.Cert)), nil, "", ""},
		{"valid from root", ptr(peerCert(t, h.root, pkitest.Leaf{CN: "pbx.example.com"})), nil, "", ""},
		{"no client certificate", nil, nil, CauseNoClientCert, "sent no client certificate"},
		{"expired", ptr(peerCert(t, h.inter, pkitest.Leaf{CN: "old.example.com", NotBefore: past, NotAfter: past.Add(24 * time.Hour)}, h.inter.Cert)), nil, CauseExpired, "expired"},
		{"not yet valid", ptr(peerCert(t, h.inter, pkitest.Leaf{CN: "new.example.com", NotBefore: time.Now().Add(48 * time.Hour)}, h.inter.Cert)), nil, CauseNotYetValid, "not valid yet"},
		{"wrong EKU", ptr(peerCert(t, h.inter, pkitest.Leaf{CN: "web.example.com", EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, h.inter.Cert)), nil, CauseWrongUsage, "clientAuth"},
		{"other CA", ptr(peerCert(t, h.other, pkitest.Leaf{CN: "x.other.example"})), nil, CauseUnknownCA, `"Other Org Root CA"`},
		{"other CA with its root sent", ptr(peerCert(t, h.other, pkitest.Leaf{CN: "x.other.example"}, h.other.Cert)), nil, CauseUnknownCA, "root"},
		{"missing intermediate", ptr(peerCert(t, inter2, pkitest.Leaf{CN: "pbx2.example.com"})), nil, CauseMissingIntermediate, `"Palisade Test Issuing CA 2"`},
		{"issuer in the private store", ptr(peerCert(t, h.inter, pkitest.Leaf{CN: "pbx3.example.com"})), nil, CauseWrongStore, "CA store"},
		{"revoked", &revoked, nil, CauseRevoked, "revoked"},
		{"TLS 1.1 only", ptr(peerCert(t, h.root, pkitest.Leaf{CN: "pbx.example.com"})), &tls.Config{MaxVersion: tls.VersionTLS11, MinVersion: tls.VersionTLS10}, CauseProtocol, "1.2-1.3"},
		{"weak cipher only", ptr(peerCert(t, h.root, pkitest.Leaf{CN: "pbx.example.com"})), &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_128_CBC_SHA}}, CauseCipher, "cipher"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var before float64
			if tc.want != "" {
				before = failures(tc.want)
			}
			leaf, err := dialAsPeer(t, addr, tc.cert, tc.cfg)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if !leaf.Equal(u.dev) {
					t.Errorf("server presented %s", leaf.Subject)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if got := failures(tc.want) - before; got != 1 {
				t.Errorf("failures{cause=%s} rose by %v, want 1 (client saw %v)", tc.want, got, err)
			}
			d := lastDiagnosis(u.s)
			if d.Cause != tc.want || !strings.Contains(d.Message, tc.text) {
				t.Errorf("diagnosis %v, want %s containing %q", d, tc.want, tc.text)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// lastDiagnosis is the newest diagnosis the subsystem logged.
func lastDiagnosis(s *Subsystem) Diagnosis {
	s.lastMu.Lock()
	defer s.lastMu.Unlock()
	return s.last
}

// peerServer runs a TLS server with cert; requireClient asks for (and
// checks) the unit's client certificate against roots.
func peerServer(t *testing.T, cert tls.Certificate, roots *x509.CertPool) string {
	t.Helper()
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	if roots != nil {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.ClientCAs = roots
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go acceptEach(ln, func(c net.Conn) {
		if err := c.(*tls.Conn).Handshake(); err != nil {
			return
		}
		c.Write([]byte("hello"))
		var b [1]byte
		c.Read(b[:])
	})
	return ln.Addr().String()
}

// TestClientDiagnosis: the unit connecting to servers with each kind of bad
// certificate refuses them with the right cause; name and wildcard rules.
func TestClientDiagnosis(t *testing.T) {
	u := newUnit(t)
	h := u.h
	inter2 := h.root.Intermediate(t, "Palisade Test Issuing CA 2")
	revoked := peerCert(t, h.root, pkitest.Leaf{CN: "revoked.example.com"})
	if _, err := u.certs.ImportCRL(u.ctx, u.cfg, "root", h.root.CRL(t, revoked.Leaf).Raw); err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-400 * 24 * time.Hour)
	wild := peerCert(t, h.inter, pkitest.Leaf{CN: "*.um.example.com"}, h.inter.Cert)
	cases := []struct {
		name       string
		cert       tls.Certificate
		serverName string
		wildcard   bool
		want       Cause
		text       string
	}{
		{"valid", peerCert(t, h.inter, pkitest.Leaf{CN: "trunk.example.com"}, h.inter.Cert), "trunk.example.com", false, "", ""},
		{"name mismatch", peerCert(t, h.inter, pkitest.Leaf{CN: "other.example.com"}, h.inter.Cert), "trunk.example.com", false, CauseNameMismatch, `"other.example.com", not for "trunk.example.com"`},
		{"IP target gets no name check", peerCert(t, h.inter, pkitest.Leaf{CN: "other.example.com"}, h.inter.Cert), "127.0.0.1", false, "", ""},
		{"wildcard allowed", wild, "x.um.example.com", true, "", ""},
		{"wildcard not allowed", wild, "x.um.example.com", false, CauseNameMismatch, "allow_wildcard"},
		{"wildcard is one label", wild, "a.x.um.example.com", true, CauseNameMismatch, "not for"},
		{"unknown CA", peerCert(t, h.other, pkitest.Leaf{CN: "trunk.example.com"}), "trunk.example.com", false, CauseUnknownCA, "Other Org Root CA"},
		{"missing intermediate", peerCert(t, inter2, pkitest.Leaf{CN: "trunk.example.com"}), "trunk.example.com", false, CauseMissingIntermediate, "intermediate"},
		{"expired", peerCert(t, h.inter, pkitest.Leaf{CN: "trunk.example.com", NotBefore: past, NotAfter: past.Add(time.Hour)}, h.inter.Cert), "trunk.example.com", false, CauseExpired, past.UTC().Format("2006-01-02")},
		{"wrong EKU", peerCert(t, h.inter, pkitest.Leaf{CN: "trunk.example.com", EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, h.inter.Cert), "trunk.example.com", false, CauseWrongUsage, "serverAuth"},
		{"revoked", revoked, "revoked.example.com", false, CauseRevoked, "revoked"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u.cfg.TLS.AllowWildcardServerCertificates = tc.wildcard
			if err := u.s.Apply(u.ctx, u.cfg); err != nil {
				t.Fatal(err)
			}
			roots := x509.NewCertPool()
			roots.AddCert(h.root.Cert)
			addr := peerServer(t, tc.cert, roots)
			c, err := u.s.Dial(context.Background(), "tcp", addr, tc.serverName)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				var b [5]byte
				if _, err := io.ReadFull(c, b[:]); err != nil || string(b[:]) != "hello" {
					t.Errorf("read %q %v: the server did not accept our client certificate", b, err)
				}
				c.Close()
				return
			}
			var he *HandshakeError
			if !errors.As(err, &he) {
				t.Fatalf("err %v, want a HandshakeError", err)
			}
			if he.Cause != tc.want || !strings.Contains(he.Message, tc.text) {
				t.Errorf("diagnosis %v, want %s containing %q", he.Diagnosis, tc.want, tc.text)
			}
		})
	}
}

// TestClientRefusedByPeer: the peer refuses the unit's client certificate;
// the alert is explained from the unit's side.
func TestClientRefusedByPeer(t *testing.T) {
	u := newUnit(t)
	otherRoots := x509.NewCertPool()
	otherRoots.AddCert(u.h.other.Cert)
	addr := peerServer(t, peerCert(t, u.h.inter, pkitest.Leaf{CN: "trunk.example.com"}, u.h.inter.Cert), otherRoots)
	rep, err := u.s.DiagnoseTLS(context.Background(), addr, "trunk.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK || rep.Diagnosis == nil || rep.Diagnosis.Side != "local" {
		t.Fatalf("report %+v", rep)
	}
	if len(rep.PeerChain) != 2 || rep.PeerChain[0].Subject != "CN=trunk.example.com" {
		t.Errorf("peer chain %+v", rep.PeerChain)
	}
	// without a client certificate
	u.cfg.TLS.ClientCertificate = ""
	if err := u.s.Apply(u.ctx, u.cfg); err != nil {
		t.Fatal(err)
	}
	rep, _ = u.s.DiagnoseTLS(context.Background(), addr, "trunk.example.com")
	if rep.OK || rep.Diagnosis.Cause != CauseNoClientCert {
		t.Errorf("no client certificate: %+v", rep.Diagnosis)
	}
}

// TestHotSwap: an apply changes the certificate for new handshakes while an
// established connection keeps working.
func TestHotSwap(t *testing.T) {
	u := newUnit(t)
	ln, addr := u.listen(t)
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	peer := peerCert(t, u.h.root, pkitest.Leaf{CN: "pbx.example.com"})
	c1, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{peer}})
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	s1 := <-accepted
	if !c1.ConnectionState().PeerCertificates[0].Equal(u.dev) {
		t.Fatal("first handshake: wrong certificate")
	}
	dev2 := u.ownCert(t, "sbc-2027", u.h.inter, "sbc.example.com")
	u.cfg.SIP.Listeners[2].Certificate = "sbc-2027"
	if err := u.s.Apply(u.ctx, u.cfg); err != nil {
		t.Fatal(err)
	}
	c2, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{peer}})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	<-accepted
	if !c2.ConnectionState().PeerCertificates[0].Equal(dev2) {
		t.Error("new handshake after apply does not use the new certificate")
	}
	// the old connection still carries data both ways
	if _, err := c1.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	var b [4]byte
	if _, err := io.ReadFull(s1, b[:]); err != nil || string(b[:]) != "ping" {
		t.Fatalf("old connection: %q %v", b, err)
	}
	if _, err := s1.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c1, b[:]); err != nil || string(b[:]) != "pong" {
		t.Fatalf("old connection back: %q %v", b, err)
	}
}

// TestApplyRefusesPending: a listener cannot use a certificate whose
// request is pending; the previous state keeps running.
func TestApplyRefusesPending(t *testing.T) {
	u := newUnit(t)
	if _, err := u.certs.New(u.ctx, u.cfg, hq, NewOptions{Subject: Subject{CN: "sbc.example.com"}}); err != nil {
		t.Fatal(err)
	}
	next := *u.cfg
	next.SIP.Listeners = append([]config.Listener(nil), u.cfg.SIP.Listeners...)
	next.SIP.Listeners[2].Certificate = hq
	err := u.s.Apply(u.ctx, &next)
	if err == nil || !strings.Contains(err.Error(), "pending") {
		t.Fatalf("err %v", err)
	}
	c, err := u.s.Certificate("sbc")
	if err != nil || !c.Leaf.Equal(u.dev) {
		t.Error("previous state lost")
	}
}

func TestOldVersionsNeedExplicitEnable(t *testing.T) {
	u := newUnit(t)
	u.cfg.SIP.Listeners[2].RequireClientCert = false
	u.cfg.TLS.MinVersion = "1.0"
	if err := u.s.Apply(u.ctx, u.cfg); err != nil {
		t.Fatal(err)
	}
	_, addr := u.listen(t)
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
	if err != nil {
		t.Fatalf("TLS 1.1 refused although enabled: %v", err)
	}
	if v := c.ConnectionState().Version; v != tls.VersionTLS11 {
		t.Errorf("version %x", v)
	}
	c.Close()
}

// TestFirstStartAndExpiry: Apply on the default configuration with an empty
// store creates the default certificate; a certificate near its end shows
// in Expiries with a warning and in the days-left gauge.
func TestFirstStartAndExpiry(t *testing.T) {
	f := newFixture(t)
	s := New(f.st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer s.Close()
	if err := s.Apply(f.ctx, f.cfg); err != nil {
		t.Fatalf("first start: %v", err)
	}
	if c, err := s.Certificate(DefaultName); err != nil || !slices.ContainsFunc(c.Leaf.IPAddresses, func(ip net.IP) bool { return ip.Equal(net.ParseIP("127.0.0.2")) }) {
		t.Fatalf("default certificate %v", err)
	}
	h := newHierarchy(t)
	if _, err := f.certs.New(f.ctx, f.cfg, "soon", NewOptions{Subject: Subject{CN: "sbc.example.com"}}); err != nil {
		t.Fatal(err)
	}
	dev := h.root.Issue(t, f.keyOfEntry(t, "soon"), pkitest.Leaf{CN: "sbc.example.com", NotAfter: time.Now().Add(10*24*time.Hour + time.Hour)})
	if _, err := f.certs.Import(f.ctx, f.cfg, "soon", [][]byte{dev.Raw}); err != nil {
		t.Fatal(err)
	}
	f.cfg.TLS.ClientCertificate = "soon"
	if err := s.Apply(f.ctx, f.cfg); err != nil {
		t.Fatal(err)
	}
	var soon *Expiry
	for _, e := range s.Expiries() {
		if e.Name == "soon" {
			soon = &e
		}
	}
	if soon == nil || soon.DaysLeft != 10 || !strings.Contains(soon.Warning, "expires in 10 day") {
		t.Fatalf("expiry %+v", soon)
	}
	var m dto.Metric
	if err := daysLeftGauge.WithLabelValues("soon").Write(&m); err != nil || m.GetGauge().GetValue() != 10 {
		t.Errorf("gauge %v %v", m.GetGauge().GetValue(), err)
	}
}
