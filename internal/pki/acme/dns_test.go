package acme

import (
	"os"
	"strings"
	"testing"
)

// TestDNSProviderSettings: a provider is made from acme.dns_settings, a
// missing setting is named in the error, and the settings do not stay in
// the unit's environment.
func TestDNSProviderSettings(t *testing.T) {
	if _, err := dnsProvider("exec", map[string]string{"EXEC_PATH": "/bin/true"}); err != nil {
		t.Fatal(err)
	}
	if _, ok := os.LookupEnv("EXEC_PATH"); ok {
		t.Error("EXEC_PATH stayed in the environment")
	}
	if _, err := dnsProvider("cloudflare", nil); err == nil || !strings.Contains(err.Error(), "CLOUDFLARE_DNS_API_TOKEN") {
		t.Errorf("cloudflare without a token: %v", err)
	}
	if _, err := dnsProvider("pdns", map[string]string{"PDNS_API_URL": "https://ns.example.com:8081", "PDNS_API_KEY": "k"}); err != nil {
		t.Errorf("pdns: %v", err)
	}
	if _, err := dnsProvider("route66", nil); err == nil {
		t.Error("an unknown provider was made")
	}
}
