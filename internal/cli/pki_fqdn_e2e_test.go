package cli

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/admin"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/pki/pkitest"
	"github.com/palisade-sbc/palisade/internal/routing/dnstest"
	"github.com/palisade-sbc/palisade/internal/testkit"
)

// The service peer is addressed by its SIP domain, not an IP: RFC 3263
// (SRV _sips._tcp.DOMAIN → kam host → A 127.0.0.4) finds Kamailio, and
// tls.check_server_domain must check Kamailio's certificate against the
// SIP domain — not against the SRV target host, nor the address.
func TestMutualTLSCallFQDNThroughKamailio(t *testing.T) {
	sipp := testkit.NeedBinary(t, "sipp", "sip-tester")
	pkitest.SkipWithoutKamailio(t)
	dir := filepath.Join(t.TempDir(), "data")
	work := t.TempDir()
	pbxPort, uasPort := testkit.FreePort(t, "udp", "127.0.0.1"), testkit.FreePort(t, "udp", "127.0.0.3")
	// Two Kamailios, both with a certificate for sip.service.example: the
	// second is reached under another domain, and a fresh target makes the
	// unit do a fresh handshake (the first call's connection stays up).
	kTLS, kUDP := testkit.FreePort(t, "tcp", "127.0.0.4"), testkit.FreePort(t, "udp", "127.0.0.4")
	wTLS, wUDP := testkit.FreePort(t, "tcp", "127.0.0.4"), testkit.FreePort(t, "udp", "127.0.0.4")
	dns, err := dnstest.Start(
		fmt.Sprintf("_sips._tcp.sip.service.example. 60 IN SRV 10 10 %d kam1.service.example.", kTLS),
		fmt.Sprintf("_sips._tcp.sip.wrong.example. 60 IN SRV 10 10 %d kam2.service.example.", wTLS),
		"kam1.service.example. 60 IN A 127.0.0.4",
		"kam2.service.example. 60 IN A 127.0.0.4",
	)
	if err != nil {
		t.Fatal(err)
	}
	defer dns.Close()

	service := config.Peer{Name: "service", Kind: "itsp", Interface: "outside", Domain: "sip.service.example", Transport: "tls"}
	unit, cfg, ca := startMutualTLSUnit(t, dir, work, pbxPort, service, dns.Addr)

	startE2EKamailioAs(t, ca, "sip.service.example", kTLS, kUDP, uasPort)
	startE2EKamailioAs(t, ca, "sip.service.example", wTLS, wUDP, uasPort)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	unitPort := cfg.SIP.Listeners[0].Port

	// Positive control: the certificate names the domain; the call goes through.
	before := nameMismatches(t, dir)
	if err := sippCall(ctx, t, sipp, work, pbxPort, uasPort, unitPort, 1, 40*time.Second); err != nil {
		t.Fatalf("call to sip.service.example failed: %v\nunit log:\n%s", err, lastBytes(unit.log.String(), 3000))
	}
	if n := nameMismatches(t, dir); n != before {
		t.Fatalf("name_mismatch failures went from %v to %v on the working call", before, n)
	}

	// The peer's domain is not a name in Kamailio's certificate: the
	// handshake is refused, the call fails, the log names both names.
	mustCLI(t, dir, "config", "set", "peers[1].domain", `"sip.wrong.example"`)
	mustCLI(t, dir, "config", "apply")
	mustCLI(t, dir, "config", "confirm")
	logStart := len(unit.log.String())
	if err := sippCall(ctx, t, sipp, work, pbxPort, uasPort, unitPort, 1, 20*time.Second); err == nil {
		t.Fatalf("call to sip.wrong.example succeeded with a certificate for sip.service.example\nunit log:\n%s", lastBytes(unit.log.String(), 3000))
	}
	logged := unit.log.String()[logStart:]
	found := false
	for _, l := range strings.Split(logged, "\n") {
		found = found || strings.Contains(l, "TLS handshake failed") && strings.Contains(l, "cause=name_mismatch") &&
			strings.Contains(l, `for \"sip.service.example\", not for \"sip.wrong.example\"`) &&
			strings.Contains(l, fmt.Sprintf("remote=127.0.0.4:%d", wTLS))
	}
	if !found {
		t.Errorf("no name_mismatch log line naming both names and the target:\n%s", lastBytes(logged, 3000))
	}
	// The unit answered the PBX with 503 (the only target refused us). The
	// call's end is logged after the 503 went out, so sipp may be done first.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logged, `reason="failed: 503"`) && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		logged = unit.log.String()[logStart:]
	}
	if !strings.Contains(logged, `reason="failed: 503"`) {
		t.Errorf("the failed call was not ended with 503:\n%s", lastBytes(logged, 3000))
	}
	if n := nameMismatches(t, dir); n <= before {
		t.Errorf("palisade_pki_tls_handshake_failures_total{cause=\"name_mismatch\"} stayed at %v", n)
	}
}

// nameMismatches scrapes the unit's /metrics over admin.sock and returns
// palisade_pki_tls_handshake_failures_total{cause="name_mismatch"} (0 while
// the counter has no such series).
func nameMismatches(t *testing.T, dir string) float64 {
	t.Helper()
	body := scrapeMetrics(t, dir)
	const series = `palisade_pki_tls_handshake_failures_total{cause="name_mismatch"} `
	for _, l := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(l, series); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("metric line %q: %v", l, err)
			}
			return f
		}
	}
	if !strings.Contains(string(body), "palisade_pki_") {
		t.Fatalf("/metrics has no palisade_pki_ series:\n%s", lastBytes(string(body), 1000))
	}
	return 0
}

// scrapeMetrics reads the unit's /metrics over admin.sock.
func scrapeMetrics(t *testing.T, dir string) string {
	t.Helper()
	c := socketClient(filepath.Join(dir, admin.SocketFile))
	defer c.close() //nolint:errcheck
	resp, err := c.hc.Get(c.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}
