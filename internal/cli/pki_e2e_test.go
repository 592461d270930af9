package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/pki"
	"github.com/palisade-sbc/palisade/internal/pki/pkitest"
	"github.com/palisade-sbc/palisade/internal/testkit"
)

// The cloud service's SBC is played by Kamailio (kamailio-tls-modules): it
// requires the unit's client certificate and verifies it against its CA,
// then relays the call to a sipp far end. sipp as the PBX calls through
// `palisade run`; the certificates are made with the cert and ca commands.

const e2eKamailioCfg = pkitest.KamailioGlobals + `enable_tls=yes
listen=tls:127.0.0.4:%d
listen=udp:127.0.0.4:%d
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "tls.so"
loadmodule "sl.so"
loadmodule "tm.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "siputils.so"
loadmodule "textops.so"
modparam("tls", "config", "%s")
modparam("tm", "fr_timer", 3000)
modparam("tm", "fr_inv_timer", 5000)
request_route {
	if (has_totag()) {
		if (loose_route()) { t_relay(); } else { sl_send_reply("404", "Not here"); }
		exit;
	}
	if (is_method("OPTIONS")) { sl_send_reply("200", "OK"); exit; }
	if (is_method("CANCEL")) { t_relay(); exit; }
	record_route();
	$du = "sip:127.0.0.3:%d;transport=udp";
	t_relay();
	exit;
}
`

// e2eKamailioTLS adds a client section: Kamailio's own outgoing TLS, unchecked.
const e2eKamailioTLS = pkitest.KamailioTLSServer + `
[client:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
`

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// startE2EKamailio runs Kamailio in its own process group (it forks) and
// stops the whole group at the end of the test.
func startE2EKamailio(t *testing.T, ca *pkitest.CA, tlsPort, udpPort, uasPort int) {
	t.Helper()
	startE2EKamailioAs(t, ca, "sbc.service.example", tlsPort, udpPort, uasPort)
}

// startE2EKamailioAs is startE2EKamailio with Kamailio's certificate
// issued for cn.
func startE2EKamailioAs(t *testing.T, ca *pkitest.CA, cn string, tlsPort, udpPort, uasPort int) {
	t.Helper()
	dir := t.TempDir()
	key := pkitest.NewKey(t)
	keyPEM, _ := pki.MarshalKeyPEM(key)
	tlsCfg := writeFile(t, dir, "tls.cfg", fmt.Appendf(nil, e2eKamailioTLS, writeFile(t, dir, "key.pem", keyPEM),
		writeFile(t, dir, "cert.pem", pki.EncodeCertificatesPEM(ca.Issue(t, key.Public(), pkitest.Leaf{CN: cn}))),
		writeFile(t, dir, "ca.pem", pki.EncodeCertificatesPEM(ca.Cert))))
	cfg := writeFile(t, dir, "kamailio.cfg", fmt.Appendf(nil, e2eKamailioCfg, tlsPort, udpPort, tlsCfg, uasPort))
	pkitest.StartKamailio(t, dir, cfg, fmt.Sprintf("127.0.0.4:%d", tlsPort))
}

func TestMutualTLSCallThroughKamailio(t *testing.T) {
	sipp := testkit.NeedBinary(t, "sipp", "sip-tester")
	pkitest.SkipWithoutKamailio(t)
	dir := filepath.Join(t.TempDir(), "data")
	work := t.TempDir()
	pbxPort, uasPort := testkit.FreePort(t, "udp", "127.0.0.1"), testkit.FreePort(t, "udp", "127.0.0.3")
	kTLS, kUDP := testkit.FreePort(t, "tcp", "127.0.0.4"), testkit.FreePort(t, "udp", "127.0.0.4")
	service := config.Peer{Name: "service", Kind: "itsp", Interface: "outside", Address: fmt.Sprintf("127.0.0.4:%d", kTLS), Transport: "tls"}
	unit, cfg, ca := startMutualTLSUnit(t, dir, work, pbxPort, service, "127.0.0.1:9")

	startE2EKamailio(t, ca, kTLS, kUDP, uasPort)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// call places n calls and reports whether sipp saw them succeed. A
	// failing call is stopped after limit: when a TLS 1.3 peer refuses the
	// unit's certificate after the handshake, the INVITE only fails when its
	// transaction times out.
	call := func(n int, limit time.Duration) error {
		return sippCall(ctx, t, sipp, work, pbxPort, uasPort, cfg.SIP.Listeners[0].Port, n, limit)
	}
	if err := call(1, 40*time.Second); err != nil {
		t.Fatalf("call over mutual TLS failed: %v\nunit log:\n%s", err, lastBytes(unit.log.String(), 3000))
	}
	kam := fmt.Sprintf("127.0.0.4:%d", kTLS)
	var rep pki.TLSReport
	if err := json.Unmarshal([]byte(mustCLI(t, dir, "diagnose", "tls", kam, "--sni", "sbc.service.example", "--json")), &rep); err != nil || !rep.OK {
		t.Fatalf("diagnose of the working peer: %+v %v", rep, err)
	}

	// diagnose reports the wrong FQDN, naming both names.
	r := palisade(t, dir, "diagnose", "tls", kam, "--sni", "sip.wrong.example")
	if r.code == 0 || !strings.Contains(r.stdout, "name_mismatch") || !strings.Contains(r.stdout, "sbc.service.example") || !strings.Contains(r.stdout, "sip.wrong.example") {
		t.Errorf("wrong FQDN: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// The TLS connection of the first call stays up across applies (that is
	// the point of the hot swap), so each case below gets a fresh Kamailio
	// on new ports, which the unit must reach with a new handshake.
	fresh := func() {
		t.Helper()
		kTLS, kUDP = testkit.FreePort(t, "tcp", "127.0.0.4"), testkit.FreePort(t, "udp", "127.0.0.4")
		kam = fmt.Sprintf("127.0.0.4:%d", kTLS)
		startE2EKamailio(t, ca, kTLS, kUDP, uasPort)
		mustCLI(t, dir, "config", "set", "peers[1].address", fmt.Sprintf("%q", kam))
	}

	// Our certificate wrong (the self-signed default): the call fails and
	// diagnose says the peer does not trust it.
	fresh()
	mustCLI(t, dir, "config", "set", "tls.client_certificate", `"default"`)
	mustCLI(t, dir, "config", "apply")
	mustCLI(t, dir, "config", "confirm")
	if err := call(1, 8*time.Second); err == nil {
		t.Error("call succeeded with a client certificate Kamailio does not trust")
	}
	r = palisade(t, dir, "diagnose", "tls", kam, "--sni", "sbc.service.example")
	if r.code == 0 || !strings.Contains(r.stdout, "Cause: unknown_ca") || !strings.Contains(r.stdout, "peer does not trust") {
		t.Errorf("wrong client certificate: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// The CA store without the service's CA: the unit refuses Kamailio.
	fresh()
	mustCLI(t, dir, "config", "set", "tls.client_certificate", `"SBC at HQ"`)
	mustCLI(t, dir, "ca", "delete", "Service Root")
	mustCLI(t, dir, "config", "apply")
	mustCLI(t, dir, "config", "confirm")
	if err := call(1, 8*time.Second); err == nil {
		t.Error("call succeeded although the CA store lacks the service's CA")
	}
	r = palisade(t, dir, "diagnose", "tls", kam, "--sni", "sbc.service.example")
	if r.code == 0 || !strings.Contains(r.stdout, "Cause: unknown_ca") || !strings.Contains(r.stdout, `"Service Root CA"`) {
		t.Errorf("CA store without the CA: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// startMutualTLSUnit runs a unit with a PBX peer on 127.0.0.1:pbxPort and
// the service peer, asking dnsServer; its client certificate "SBC at HQ"
// (key and CSR made by the cert commands) is signed by the returned
// service CA, which is also in its CA store.
func startMutualTLSUnit(t *testing.T, dir, work string, pbxPort int, service config.Peer, dnsServer string) (*unitProc, *config.Config, *pkitest.CA) {
	t.Helper()
	b, _ := os.ReadFile(testConfigFile(t))
	cfg, err := config.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Peers = []config.Peer{
		{Name: "pbx", Kind: "pbx", Interface: "inside", Address: fmt.Sprintf("127.0.0.1:%d", pbxPort), Transport: "udp"},
		service,
	}
	cfg.Network.DNSServers = []string{dnsServer}
	cfg.Media.Policies = []config.MediaPolicy{}
	cfg.Media.DefaultPolicy.RTPProfile = "avp"
	if b, err = config.Encode(cfg); err != nil {
		t.Fatal(err)
	}
	unit := startUnit(t, dir, writeFile(t, work, "initial.json", b))
	return unit, cfg, useServiceCA(t, dir, work)
}

// useServiceCA gives the running unit of dir the client certificate "SBC
// at HQ" (key and CSR made by the cert commands) signed by a new service
// CA, puts that CA in its CA store, applies and confirms; it returns the CA.
func useServiceCA(t *testing.T, dir, work string) *pkitest.CA {
	t.Helper()
	ca := pkitest.NewRoot(t, "Service Root CA", "Service Root CA")
	mustCLI(t, dir, "cert", "new", "SBC at HQ", "--cn", "sbc.example.com", "--o", "Example")
	csr := mustCLI(t, dir, "cert", "csr", "SBC at HQ")
	mustCLI(t, dir, "cert", "import", "SBC at HQ", writeFile(t, work, "device.pem", pki.EncodeCertificatesPEM(ca.IssueCSR(t, []byte(csr)))))
	mustCLI(t, dir, "ca", "import", "Service Root", writeFile(t, work, "root.der", ca.Cert.Raw))
	mustCLI(t, dir, "config", "set", "tls.client_certificate", `"SBC at HQ"`)
	mustCLI(t, dir, "config", "apply")
	mustCLI(t, dir, "config", "confirm")
	return ca
}

// sippCall places n calls from a sipp UAC on 127.0.0.1:pbxPort through the
// unit's inside listener to a sipp UAS on 127.0.0.3:uasPort and reports
// whether sipp saw them succeed, stopping after limit.
func sippCall(ctx context.Context, t *testing.T, sipp, work string, pbxPort, uasPort, unitPort, n int, limit time.Duration) error {
	cctx, ccancel := context.WithTimeout(ctx, limit)
	defer ccancel()
	uas := exec.CommandContext(cctx, sipp, "-sn", "uas", "-i", "127.0.0.3", "-p", fmt.Sprint(uasPort), "-m", fmt.Sprint(n), "-nostdin")
	uas.Dir = work
	defer testkit.Start(t, uas, 0).Stop(0)
	uac := exec.CommandContext(cctx, sipp, "-sn", "uac", "-i", "127.0.0.1", "-p", fmt.Sprint(pbxPort), "-s", "4687",
		"-m", fmt.Sprint(n), "-d", "200", "-nostdin", fmt.Sprintf("127.0.0.1:%d", unitPort))
	uac.Dir = work
	out, err := uac.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v\n%s", err, lastBytes(string(out), 600))
	}
	return nil
}

// lastBytes is the end of s, for failure messages.
func lastBytes(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
