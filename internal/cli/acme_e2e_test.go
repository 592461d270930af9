package cli

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/admin"
	"github.com/palisade-sbc/palisade/internal/pki"
	"github.com/palisade-sbc/palisade/internal/pki/acme"
	"github.com/palisade-sbc/palisade/internal/pki/acme/acmetest"
)

// TestACMECertificateForAdminAndOutside: a running unit set up the
// administrator's way (CA import, cert new, config set acme, apply) gets
// its outside and admin certificate from Debian's pebble over http-01,
// serves it on the admin listener and the outside SIP TLS listener
// without a restart, shows it in 'cert acme', and after 'cert acme revoke'
// (pebble records the revocation) serves a new one.
func TestACMECertificateForAdminAndOutside(t *testing.T) {
	ca := acmetest.Start(t, false)
	dir := filepath.Join(t.TempDir(), "data")
	work := t.TempDir()
	initial := testConfigFile(t)
	unit := startUnit(t, dir, initial)
	b, _ := os.ReadFile(initial)
	var doc struct {
		SIP struct{ Listeners []struct{ Port int } }
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	outside := fmt.Sprintf("127.0.0.2:%d", doc.SIP.Listeners[2].Port)

	mustCLI(t, dir, "ca", "import", "acme-ca", writeFile(t, work, "root.pem", ca.RootPEM))
	mustCLI(t, dir, "cert", "new", "public", "--cn", acmetest.Domain, "--self-signed")
	mustCLI(t, dir, "config", "set", "acme", fmt.Sprintf(`{"enabled": true, "directory_url": %q, "ca_certificates": ["acme-ca"],
		"challenge": "http-01", "challenge_listen": "127.0.0.1:%d", "certificates": [{"name": "public", "domains": [%q]}]}`,
		ca.Dir, ca.Chal, acmetest.Domain))
	mustCLI(t, dir, "config", "set", "admin.certificate", `"public"`)
	mustCLI(t, dir, "config", "set", "sip.listeners[2].certificate", `"public"`)
	mustCLI(t, dir, "config", "apply")
	mustCLI(t, dir, "config", "confirm")

	addrB, err := os.ReadFile(filepath.Join(dir, admin.AddrFile))
	if err != nil {
		t.Fatal(err)
	}
	adminAddr := strings.TrimSpace(string(addrB))
	var first *x509.Certificate
	waitUntil(t, unit, "pebble's certificate on the admin listener", func() bool {
		first = servedCert(t, adminAddr)
		return strings.Contains(first.Issuer.CommonName, "Pebble")
	})
	if got := servedCert(t, outside); pki.Fingerprint(got) != pki.Fingerprint(first) {
		t.Errorf("outside TLS listener serves %s, admin %s", got.Issuer, first.Issuer)
	}
	var st []acme.Status
	if err := json.Unmarshal([]byte(mustCLI(t, dir, "--json", "cert", "acme")), &st); err != nil {
		t.Fatal(err)
	}
	if len(st) != 1 || st[0].Name != "public" || !st[0].NotAfter.Equal(first.NotAfter) || st[0].LastError != "" {
		t.Errorf("cert acme: %+v", st)
	}
	if out := mustCLI(t, dir, "cert", "show", "public"); !strings.Contains(out, "Pebble") {
		t.Errorf("cert show does not show the issued certificate:\n%s", out)
	}

	mustCLI(t, dir, "cert", "acme", "revoke", "public")
	if s := ca.CertStatus(t, fmt.Sprintf("%x", first.SerialNumber)); s != "Revoked" {
		t.Errorf("pebble: certificate is %q after 'cert acme revoke'", s)
	}
	waitUntil(t, unit, "a new certificate after the revocation", func() bool {
		c := servedCert(t, adminAddr)
		return strings.Contains(c.Issuer.CommonName, "Pebble") && pki.Fingerprint(c) != pki.Fingerprint(first)
	})
	if r := palisade(t, dir, "cert", "acme", "revoke", "default"); r.code == 0 || !strings.Contains(r.stderr, "does not manage") {
		t.Errorf("revoke of an entry ACME does not manage: exit %d, %s", r.code, r.stderr)
	}
}

// servedCert is the certificate a TLS server at addr presents.
func servedCert(t *testing.T, addr string) *x509.Certificate {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, ServerName: acmetest.Domain}) // only looking at it
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0]
}

// waitUntil polls cond; only a real failure runs out its bound.
func waitUntil(t *testing.T, unit *unitProc, what string, cond func() bool) {
	t.Helper()
	for range 1200 {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not after 2 minutes\nunit log:\n%s", what, lastBytes(unit.log.String(), 4000))
}
