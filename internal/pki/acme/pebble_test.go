package acme

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/pki"
	"github.com/palisade-sbc/palisade/internal/pki/pkitest"
	"github.com/palisade-sbc/palisade/internal/store"
	"github.com/palisade-sbc/palisade/internal/testkit"
)

// The test domain: pebble resolves it through pebble-challtestsrv, which
// answers 127.0.0.1 for every name.
const domain = "sbc.palisade.test"

// eabKID and eabKey are the External Account Binding pebble requires when
// started with eab (its documentation's example pair).
const (
	eabKID = "kid-1"
	eabKey = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"
)

// testCA signs the HTTPS certificates of pebble and of the test proxies.
var testCA *pkitest.CA

// pebbleCA is a running pebble (Debian's) on loopback.
type pebbleCA struct {
	dir     string // ACME directory URL
	mgmt    string // management URL
	addr    string // host:port of the ACME API
	chal    int    // port pebble connects to for http-01 and tls-alpn-01
	proc    *testkit.Proc
	rootPEM []byte // the test CA pebble's HTTPS certificate comes from
}

func serverCert(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	if testCA == nil {
		testCA = pkitest.NewRoot(t, "Palisade ACME test root", "")
	}
	key := pkitest.NewKey(t)
	c := testCA.Issue(t, key.Public(), pkitest.Leaf{CN: "localhost", DNS: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	kp, err := pki.MarshalKeyPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pki.EncodeCertificatesPEM(c), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, kp, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// startPebble runs pebble with its DNS answered by pebble-challtestsrv.
func startPebble(t *testing.T, eab bool) *pebbleCA {
	t.Helper()
	bin := testkit.NeedBinary(t, "pebble", "pebble")
	chalsrv := testkit.NeedBinary(t, "pebble-challtestsrv", "pebble")
	dir := t.TempDir()
	dnsPort := testkit.FreePort(t, "udp", "127.0.0.1")
	var dnsOut testkit.SyncBuffer
	dns := exec.Command(chalsrv, "-dns01", fmt.Sprintf("127.0.0.1:%d", dnsPort), "-http01", "", "-https01", "",
		"-tlsalpn01", "", "-management", fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t, "tcp", "127.0.0.1")),
		"-defaultIPv4", "127.0.0.1", "-defaultIPv6", "")
	dns.Stdout, dns.Stderr = &dnsOut, &dnsOut
	testkit.Start(t, dns, 5*time.Second)

	p := &pebbleCA{chal: testkit.FreePort(t, "tcp", "127.0.0.1")}
	api, mgmt := testkit.FreePort(t, "tcp", "127.0.0.1"), testkit.FreePort(t, "tcp", "127.0.0.1")
	p.addr = fmt.Sprintf("127.0.0.1:%d", api)
	p.dir, p.mgmt = "https://"+p.addr+"/dir", fmt.Sprintf("https://127.0.0.1:%d", mgmt)
	certFile, keyFile := serverCert(t, dir, "pebble")
	conf := map[string]any{"pebble": map[string]any{
		"listenAddress": p.addr, "managementListenAddress": fmt.Sprintf("127.0.0.1:%d", mgmt),
		"certificate": certFile, "privateKey": keyFile, "httpPort": p.chal, "tlsPort": p.chal,
		"ocspResponderURL": "", "externalAccountBindingRequired": eab,
		"externalAccountMACKeys": map[string]string{eabKID: eabKey},
	}}
	b, _ := json.Marshal(conf)
	confFile := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(confFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	var out testkit.SyncBuffer
	cmd := exec.Command(bin, "-config", confFile, "-dnsserver", fmt.Sprintf("127.0.0.1:%d", dnsPort))
	// No random sleeps before validation, no nonces refused at random.
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0")
	cmd.Stdout, cmd.Stderr = &out, &out
	p.proc = testkit.Start(t, cmd, 5*time.Second)
	p.rootPEM = pki.EncodeCertificatesPEM(testCA.Cert)
	p.proc.WaitReady(t, "pebble", func() bool {
		c, err := net.Dial("tcp", p.addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 50*time.Millisecond, 600, out.String)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pebble:\n%s", testkit.LastLines(out.String(), 40))
		}
	})
	return p
}

// certStatus asks pebble's management API whether the certificate with
// serial (hex) is Valid or Revoked.
func (p *pebbleCA) certStatus(t *testing.T, serial string) string {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // test only: pebble's own port
	resp, err := hc.Get(p.mgmt + "/cert-status-by-serial/" + serial)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Status string `json:"Status"`
	}
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("cert-status %s: %s", serial, b)
	}
	return st.Status
}

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
	a.Certificates = []config.ACMECertificate{{Name: "public", Domains: []string{domain}}}
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
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, ServerName: domain}) // we look at what is served
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

func pemBlocks(b []byte) int {
	n := 0
	for {
		var blk *pem.Block
		if blk, b = pem.Decode(b); blk == nil {
			return n
		}
		n++
	}
}
