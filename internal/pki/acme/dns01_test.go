package acme

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/pki"
	"github.com/palisade-sbc/palisade/internal/pki/acme/acmetest"
	"github.com/palisade-sbc/palisade/internal/testkit"
)

// dnsHook is the web hook lego's httpreq provider posts to: it writes the
// TXT records into pebble-challtestsrv, the DNS server pebble asks, as an
// administrator's hook would write them into the zone.
type dnsHook struct {
	mu      sync.Mutex
	present []string // fqdn of every record presented
	cleaned []string
}

func newDNSHook(t *testing.T, ca *acmetest.Pebble) (*dnsHook, string) {
	h := &dnsHook{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var msg struct{ FQDN, Value string }
		if err := json.NewDecoder(r.Body).Decode(&msg); err != nil || msg.FQDN == "" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		var op string
		var body any
		switch r.URL.Path {
		case "/present":
			op, body = "/set-txt", map[string]string{"host": msg.FQDN, "value": msg.Value}
		case "/cleanup":
			op, body = "/clear-txt", map[string]string{"host": msg.FQDN}
		default:
			http.NotFound(w, r)
			return
		}
		b, _ := json.Marshal(body)
		resp, err := http.Post(ca.DNSMgmt+op, "application/json", bytes.NewReader(b))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			http.Error(w, fmt.Sprintf("challtestsrv %s: %s", op, resp.Status), http.StatusBadGateway)
			return
		}
		h.mu.Lock()
		if op == "/set-txt" {
			h.present = append(h.present, msg.FQDN)
		} else {
			h.cleaned = append(h.cleaned, msg.FQDN)
		}
		h.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return h, srv.URL
}

func (h *dnsHook) calls() (present, cleaned []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.present), slices.Clone(h.cleaned)
}

// TestIssueDNS01: with dns-01 through lego's httpreq provider (its settings
// in acme.dns_settings) the TXT records go into the DNS pebble asks, the
// unit checks them at acme.dns_resolvers, and pebble issues the FQDN's
// certificate and a wildcard one; both land in the PKI store and the
// records are removed afterwards.
func TestIssueDNS01(t *testing.T) {
	ca := acmetest.Start(t, false)
	hook, endpoint := newDNSHook(t, ca)
	u := newUnit(t, ca.RootPEM, config.ACME{DirectoryURL: ca.Dir, Challenge: "dns-01", DNSProvider: "httpreq",
		DNSSettings:  map[string]string{"HTTPREQ_ENDPOINT": endpoint, "HTTPREQ_POLLING_INTERVAL": "1", "HTTPREQ_PROPAGATION_TIMEOUT": "120"},
		DNSResolvers: []string{ca.DNS}})
	// A wildcard entry as well: only dns-01 can prove it.
	u.cfg.Certificates.Private = append(u.cfg.Certificates.Private, config.PrivateCertificate{Name: "wild"})
	u.cfg.ACME.Certificates = append(u.cfg.ACME.Certificates,
		config.ACMECertificate{Name: "wild", Domains: []string{"*.example.test", "example.test"}})
	if errs := u.cfg.Validate(); errs != nil {
		t.Fatal(errs)
	}
	u.apply(t)

	issuedFor := func(name string) []string {
		chain, err := pki.NewestChain(context.Background(), u.st, name)
		if err != nil || len(chain) == 0 || selfSigned(chain[0]) || !strings.Contains(chain[0].Issuer.CommonName, "Pebble") {
			return nil
		}
		return chain[0].DNSNames
	}
	waitFor(t, "FQDN certificate from pebble in the store", func() bool { return issuedFor("public") != nil })
	waitFor(t, "wildcard certificate from pebble in the store", func() bool { return issuedFor("wild") != nil })
	if got := issuedFor("public"); !slices.Equal(got, []string{acmetest.Domain}) {
		t.Errorf("public issued for %v, want %s", got, acmetest.Domain)
	}
	if got := issuedFor("wild"); !slices.Equal(sorted(got), []string{"*.example.test", "example.test"}) {
		t.Errorf("wild issued for %v", got)
	}
	if !u.served(t).fromCA() {
		t.Error("the listener on the FQDN entry does not serve the issued certificate")
	}
	for _, st := range u.mgr.Status() {
		if st.LastError != "" || st.Issued != 1 {
			t.Errorf("status %+v, want issued once without error", st)
		}
	}

	present, cleaned := hook.calls()
	for _, fqdn := range []string{"_acme-challenge." + acmetest.Domain + ".", "_acme-challenge.example.test."} {
		if !slices.Contains(present, fqdn) {
			t.Errorf("no TXT record presented at %s (presented: %v)", fqdn, present)
		}
	}
	waitFor(t, "TXT records cleaned up", func() bool {
		_, cleaned = hook.calls()
		return len(cleaned) >= len(present)
	})
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// TestResolverCheck: the check before the CA is told to look holds only
// once every resolver of acme.dns_resolvers answers the TXT value, and
// says why when a resolver does not answer.
func TestResolverCheck(t *testing.T) {
	ca := acmetest.Start(t, false)
	ctx := context.Background()
	const fqdn = "_acme-challenge.check.example.test."
	if ok, err := hasTXT(ctx, ca.DNS, fqdn, "v1"); ok || err != nil {
		t.Fatalf("before the record: %v, %v", ok, err)
	}
	b, _ := json.Marshal(map[string]string{"host": fqdn, "value": "v1"})
	resp, err := http.Post(ca.DNSMgmt+"/set-txt", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ok, err := hasTXT(ctx, ca.DNS, fqdn, "v1"); !ok || err != nil {
		t.Fatalf("with the record: %v, %v", ok, err)
	}
	if ok, _ := hasTXT(ctx, ca.DNS, fqdn, "v2"); ok {
		t.Fatal("another value was taken for the record")
	}
	// A resolver that does not answer: not yet, with the reason.
	dead := "127.0.0.1:" + itoa(testkit.FreePort(t, "udp", "127.0.0.1"))
	if ok, err := hasTXT(ctx, dead, fqdn, "v1"); ok || err == nil {
		t.Fatalf("from a dead resolver: %v, %v", ok, err)
	}
}
