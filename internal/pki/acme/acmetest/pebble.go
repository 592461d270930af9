// Package acmetest runs Debian's pebble (an ACME test CA) on loopback for
// the tests of the ACME client and of the unit: its DNS answered by
// pebble-challtestsrv (127.0.0.1 for every name), its HTTPS certificate
// from a test root the caller trusts.
package acmetest

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/pki"
	"github.com/palisade-sbc/palisade/internal/pki/pkitest"
	"github.com/palisade-sbc/palisade/internal/testkit"
)

// The test domain: pebble resolves it through pebble-challtestsrv, which
// answers 127.0.0.1 for every name.
const Domain = "sbc.palisade.test"

// eabKID and eabKey are the External Account Binding pebble requires when
// started with eab (its documentation's example pair).
const (
	EABKeyID = "kid-1"
	EABKey   = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"
)

var (
	caOnce sync.Once
	testCA *pkitest.CA
)

// CA is the test root that signs the HTTPS certificates of pebble and of
// test proxies (the same for the whole test binary).
func CA(t testing.TB) *pkitest.CA {
	caOnce.Do(func() { testCA = pkitest.NewRoot(t, "Palisade ACME test root", "") })
	return testCA
}

// Pebble is a running pebble (Debian's) on loopback.
type Pebble struct {
	Dir     string // ACME directory URL
	Mgmt    string // management URL
	Addr    string // host:port of the ACME API
	Chal    int    // port pebble connects to for http-01 and tls-alpn-01
	Proc    *testkit.Proc
	RootPEM []byte // the test CA pebble's HTTPS certificate comes from
	// DNS is host:port of pebble-challtestsrv's DNS server, which pebble
	// asks for dns-01 TXT records; DNSMgmt is its management URL, where
	// POST /set-txt and /clear-txt put and remove them.
	DNS, DNSMgmt string
}

// ServerCert writes a certificate from CA for localhost and 127.0.0.1 and
// its key to dir.
func ServerCert(t testing.TB, dir, name string) (certFile, keyFile string) {
	t.Helper()
	key := pkitest.NewKey(t)
	c := CA(t).Issue(t, key.Public(), pkitest.Leaf{CN: "localhost", DNS: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
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

// Start runs pebble (requiring External Account Binding when eab) with its
// DNS answered by pebble-challtestsrv; both stop when the test ends. It
// skips the test when Debian's pebble is not installed.
func Start(t testing.TB, eab bool) *Pebble {
	t.Helper()
	bin := testkit.NeedBinary(t, "pebble", "pebble")
	chalsrv := testkit.NeedBinary(t, "pebble-challtestsrv", "pebble")
	dir := t.TempDir()
	dnsPort := testkit.FreePort(t, "udp", "127.0.0.1")
	dnsMgmt := fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t, "tcp", "127.0.0.1"))
	var dnsOut testkit.SyncBuffer
	dns := exec.Command(chalsrv, "-dns01", fmt.Sprintf("127.0.0.1:%d", dnsPort), "-http01", "", "-https01", "",
		"-tlsalpn01", "", "-management", dnsMgmt, "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "")
	dns.Stdout, dns.Stderr = &dnsOut, &dnsOut
	dnsProc := testkit.Start(t, dns, 5*time.Second)

	p := &Pebble{Chal: testkit.FreePort(t, "tcp", "127.0.0.1"),
		DNS: fmt.Sprintf("127.0.0.1:%d", dnsPort), DNSMgmt: "http://" + dnsMgmt}
	dnsProc.WaitReady(t, "pebble-challtestsrv", func() bool {
		c, err := net.Dial("tcp", dnsMgmt)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 50*time.Millisecond, 600, dnsOut.String)
	api, mgmt := testkit.FreePort(t, "tcp", "127.0.0.1"), testkit.FreePort(t, "tcp", "127.0.0.1")
	p.Addr = fmt.Sprintf("127.0.0.1:%d", api)
	p.Dir, p.Mgmt = "https://"+p.Addr+"/dir", fmt.Sprintf("https://127.0.0.1:%d", mgmt)
	certFile, keyFile := ServerCert(t, dir, "pebble")
	conf := map[string]any{"pebble": map[string]any{
		"listenAddress": p.Addr, "managementListenAddress": fmt.Sprintf("127.0.0.1:%d", mgmt),
		"certificate": certFile, "privateKey": keyFile, "httpPort": p.Chal, "tlsPort": p.Chal,
		"ocspResponderURL": "", "externalAccountBindingRequired": eab,
		"externalAccountMACKeys": map[string]string{EABKeyID: EABKey},
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
	p.Proc = testkit.Start(t, cmd, 5*time.Second)
	p.RootPEM = pki.EncodeCertificatesPEM(CA(t).Cert)
	p.Proc.WaitReady(t, "pebble", func() bool {
		c, err := net.Dial("tcp", p.Addr)
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

// CertStatus asks pebble's management API whether the certificate with
// serial (hex) is Valid or Revoked.
func (p *Pebble) CertStatus(t testing.TB, serial string) string {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // test only: pebble's own port
	resp, err := hc.Get(p.Mgmt + "/cert-status-by-serial/" + serial)
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
