package robust_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/testkit"
)

// TestTestsslAdmin runs testssl against the admin HTTPS listener: no
// finding above LOW.
func TestTestsslAdmin(t *testing.T) {
	if testing.Short() {
		t.Skip("testssl takes minutes; skipped under -short")
	}
	bin := testkit.NeedBinary(t, "testssl", "testssl.sh")
	u := startUnit(t, nil)
	out := filepath.Join(t.TempDir(), "testssl.json")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--quiet", "--color", "0", "--warnings", "batch", "--severity", "MEDIUM",
		"--connect-timeout", "10", "--openssl-timeout", "10", "--jsonfile", out, "https://"+u.admin)
	log, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("testssl did not finish in 10 minutes:\n%s", tail(string(log), 30))
	}
	b, rerr := os.ReadFile(out)
	if rerr != nil {
		t.Fatalf("testssl wrote no JSON (%v, %v):\n%s", rerr, err, tail(string(log), 30))
	}
	var findings []struct {
		ID       string `json:"id"`
		Severity string `json:"severity"`
		Finding  string `json:"finding"`
	}
	if err := json.Unmarshal(b, &findings); err != nil {
		t.Fatalf("testssl JSON: %v", err)
	}
	bad := 0
	for _, f := range findings {
		switch strings.ToUpper(f.Severity) {
		case "MEDIUM", "HIGH", "CRITICAL":
			// The unit's own self-signed admin certificate is expected
			// until the administrator imports one (docs/security.md).
			if selfSigned(f.ID) {
				t.Logf("expected with the generated certificate: %s %s: %s", f.Severity, f.ID, f.Finding)
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
	for _, p := range []string{"cert_chain_of_trust", "cert_trust", "cert_crlDistributionPoints", "cert_ocspURL", "OCSP_stapling",
		"cert_certificateTransparency", "DNS_CAArecord", "cert_revocation"} {
		if strings.HasPrefix(id, p) {
			return true
		}
	}
	return false
}
