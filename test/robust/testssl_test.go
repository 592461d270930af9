package robust_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/pki"
	"github.com/palisade-sbc/palisade/internal/pki/pkitest"
	"github.com/palisade-sbc/palisade/internal/testkit"
)

// testsslFinding is one entry of testssl's JSON file.
type testsslFinding struct {
	ID       string `json:"id"`
	Severity string `json:"severity"`
	Finding  string `json:"finding"`
}

// TestTestsslAdmin runs testssl against the admin HTTPS listener: no
// finding above LOW. With the generated self-signed certificate, findings
// about its trust are excused; with a CA-issued certificate imported the way
// an administrator does it, only what an offline loopback test cannot give
// (OCSP, CT, a CAA record in DNS) is.
func TestTestsslAdmin(t *testing.T) {
	if testing.Short() {
		t.Skip("testssl takes minutes; skipped under -short")
	}
	bin := testkit.NeedBinary(t, "testssl", "testssl.sh")
	t.Run("generated", func(t *testing.T) {
		u := startUnit(t, nil)
		checkTestssl(t, runTestssl(t, bin, u.admin), selfSigned)
	})
	t.Run("imported", func(t *testing.T) {
		u := startUnit(t, nil)
		root, crlFetches := importAdminCertificate(t, u)
		// --phone-out lets testssl check revocation: it downloads the CRL
		// from the distribution point (loopback) and checks the serial.
		findings := runTestssl(t, bin, u.admin, "--add-ca", root, "--phone-out")
		for _, f := range findings {
			t.Logf("testssl JSON: %s %s: %s", f.Severity, f.ID, f.Finding)
		}
		if n := crlFetches.Load(); n == 0 {
			t.Error("testssl did not download the CRL: revocation was not checked")
		} else {
			t.Logf("testssl downloaded the CRL %d times", n)
		}
		checkTestssl(t, findings, offline)
	})
}

// runTestssl runs testssl against the HTTPS listener at addr and returns
// its findings.
func runTestssl(t *testing.T, bin, addr string, extra ...string) []testsslFinding {
	t.Helper()
	out := filepath.Join(t.TempDir(), "testssl.json")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	args := append([]string{"--quiet", "--color", "0", "--warnings", "batch", "--severity", "MEDIUM",
		"--connect-timeout", "10", "--openssl-timeout", "10", "--jsonfile", out}, extra...)
	cmd := exec.CommandContext(ctx, bin, append(args, "https://"+addr)...)
	log, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("testssl did not finish in 10 minutes:\n%s", tail(string(log), 30))
	}
	b, rerr := os.ReadFile(out)
	if rerr != nil {
		t.Fatalf("testssl wrote no JSON (%v, %v):\n%s", rerr, err, tail(string(log), 30))
	}
	var findings []testsslFinding
	if err := json.Unmarshal(b, &findings); err != nil {
		t.Fatalf("testssl JSON: %v", err)
	}
	return findings
}

// checkTestssl fails on every finding at MEDIUM or above that excused does
// not name; excused ones are logged with their severity.
func checkTestssl(t *testing.T, findings []testsslFinding, excused func(id string) bool) {
	t.Helper()
	bad := 0
	for _, f := range findings {
		switch strings.ToUpper(f.Severity) {
		case "MEDIUM", "HIGH", "CRITICAL":
			if excused(f.ID) {
				t.Logf("excused: %s %s: %s", f.Severity, f.ID, f.Finding)
				continue
			}
			bad++
			t.Errorf("testssl %s %s: %s", f.Severity, f.ID, f.Finding)
		}
	}
	t.Logf("testssl: %d findings at MEDIUM or above (JSON has %d entries)", bad, len(findings))
}

// selfSigned reports findings about the unit's generated self-signed
// certificate only (not from a public CA: trust chain, no CRL/OCSP/CT);
// they go away with an imported certificate. Its validity (397 days) is
// judged like everything else: testssl flags server certificates valid
// longer than 398 days. Protocols, ciphers, vulnerabilities and headers are
// still judged.
func selfSigned(id string) bool {
	return hasPrefix(id, "cert_chain_of_trust", "cert_trust", "cert_crlDistributionPoints", "cert_ocspURL", "OCSP_stapling",
		"cert_certificateTransparency", "DNS_CAArecord", "cert_revocation")
}

// offline reports findings an offline loopback test cannot avoid even with
// a CA-issued certificate: no OCSP responder, no CT log, no DNS for a CAA
// record. Chain of trust, names, validity and the CRL are judged.
func offline(id string) bool {
	return hasPrefix(id, "cert_ocspURL", "OCSP_stapling", "cert_certificateTransparency", "DNS_CAArecord")
}

func hasPrefix(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// importAdminCertificate gives u's admin listener a certificate issued by a
// test CA (root, intermediate) the way an administrator does it: cert new
// with the listener's address as SAN, the CSR signed by the CA, cert import
// of the certificate and the intermediate, admin.certificate set, apply and
// confirm. The certificate names a CRL distribution point served on
// loopback. It checks that the listener presents it and returns the root's
// PEM file for the client to trust and the count of CRL downloads.
func importAdminCertificate(t *testing.T, u *unit) (string, *atomic.Int64) {
	t.Helper()
	root := pkitest.NewRoot(t, "Palisade Test Root CA", "Palisade Test")
	issuing := root.Intermediate(t, "Palisade Test Issuing CA")
	crl := issuing.CRL(t)
	fetches := new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Header().Set("Content-Type", "application/pkix-crl")
		w.Write(crl.Raw)
	}))
	t.Cleanup(srv.Close)

	host := strings.Split(u.admin, ":")[0]
	cli(t, u, "cert", "new", "admin", "--cn", "admin.palisade.test", "--o", "Palisade Test", "--san", host)
	csr := cli(t, u, "cert", "csr", "admin")
	leaf := issueServer(t, issuing, []byte(csr), srv.URL+"/issuing.crl")
	work := t.TempDir()
	device := filepath.Join(work, "admin.pem")
	if err := os.WriteFile(device, pki.EncodeCertificatesPEM(leaf, issuing.Cert), 0o600); err != nil {
		t.Fatal(err)
	}
	cli(t, u, "cert", "import", "admin", device)
	cli(t, u, "config", "set", "admin.certificate", `"admin"`)
	cli(t, u, "config", "apply")
	cli(t, u, "config", "confirm")
	// New handshakes use it after the apply: the chain must verify against
	// the root alone (the intermediate comes from the unit) for the address.
	pool := x509.NewCertPool()
	pool.AddCert(root.Cert)
	conn, err := tls.Dial("tcp", u.admin, &tls.Config{RootCAs: pool, ServerName: host})
	if err != nil {
		t.Fatalf("admin listener with the imported certificate: %v", err)
	}
	got := conn.ConnectionState().PeerCertificates
	conn.Close()
	if !got[0].Equal(leaf) || len(got) != 2 {
		t.Fatalf("admin listener presents %q (%d certificates), want the imported one and its intermediate", got[0].Subject, len(got))
	}
	rootFile := filepath.Join(work, "root.pem")
	if err := os.WriteFile(rootFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return rootFile, fetches
}

// issueServer signs a CSR as a server certificate the way a public CA
// would: the request's names, serverAuth only, 365 days, a CRL distribution
// point (pkitest's Issue sets none).
func issueServer(t *testing.T, ca *pkitest.CA, csrPEM []byte, crlURL string) *x509.Certificate {
	t.Helper()
	csr, err := pki.CSRInfo(csrPEM)
	if err != nil {
		t.Fatalf("palisade cert csr: %v", err)
	}
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn, Subject: pkix.Name{CommonName: csr.Subject.CommonName, Organization: csr.Subject.Organization},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		DNSNames: csr.DNSNames, IPAddresses: csr.IPAddresses,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, CRLDistributionPoints: []string{crlURL},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, csr.PublicKey, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

// cli runs a palisade command against u's data directory (its local admin
// socket) and returns its standard output.
func cli(t *testing.T, u *unit, args ...string) string {
	t.Helper()
	cmd := exec.Command(binPath, append([]string{"--data", u.dir}, args...)...)
	var errb strings.Builder
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("palisade %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return string(out)
}
