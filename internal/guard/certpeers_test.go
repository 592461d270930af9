package guard

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net/url"
	"strings"
	"testing"

	"github.com/palisade-sbc/palisade/internal/config"
)

func TestCertNames(t *testing.T) {
	sipURI := func(s string) *url.URL {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	tests := []struct {
		name string
		cert *x509.Certificate
		want string
	}{
		{"DNS names, CN ignored", &x509.Certificate{DNSNames: []string{"SBC.example.net.", "pbx.example.net"}, Subject: pkix.Name{CommonName: "other.example.net"}}, "sbc.example.net,pbx.example.net"},
		{"CN only without SAN", &x509.Certificate{Subject: pkix.Name{CommonName: "PBX.example.com"}}, "pbx.example.com"},
		{"sip URI SAN (RFC 5922)", &x509.Certificate{URIs: []*url.URL{sipURI("sip:example.org"), sipURI("sips:voice.example.org:5061")}, Subject: pkix.Name{CommonName: "x.example.org"}}, "example.org,voice.example.org"},
		{"sip URI with a user is no domain", &x509.Certificate{URIs: []*url.URL{sipURI("sip:alice@example.org"), sipURI("https://example.org/")}, Subject: pkix.Name{CommonName: "cn.example.org"}}, "cn.example.org"},
		{"nothing", &x509.Certificate{}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := strings.Join(CertNames(tc.cert), ","); got != tc.want {
				t.Fatalf("CertNames = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestTLSNamesNeedsVerifiedChain(t *testing.T) {
	cert := &x509.Certificate{DNSNames: []string{"sip.example.net"}}
	if got := TLSNames(&tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}); got != nil {
		t.Fatalf("names from an unverified certificate: %v", got)
	}
	got := TLSNames(&tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}, VerifiedChains: [][]*x509.Certificate{{cert}}})
	if strings.Join(got, ",") != "sip.example.net" {
		t.Fatalf("names %v", got)
	}
	// A verified name of the teams peer's domain makes an unknown address a peer.
	g := New(testConfig(nil), nil)
	if v := g.Check(Request{Source: src("198.51.100.9:5061"), Interface: "outside", Method: "INVITE", TLSNames: got}); v.Action != Allow {
		t.Fatalf("verified peer certificate: %+v", v)
	}
}

func TestCertPeersLookup(t *testing.T) {
	cp := NewCertPeers([]config.Peer{
		{Name: "pbx", Interface: "outside", Address: "PBX.example.com:5061"},
		{Name: "teams", Interface: "outside", Domain: "sip.example.net."},
		{Name: "both", Interface: "outside", Address: "edge.example.org", Domain: "example.org"},
		{Name: "any", Address: "anywhere.example.com"},
		{Name: "byip", Interface: "outside", Address: "192.0.2.10:5061"},
		{Name: "inside", Interface: "inside", Address: "in.example.com"},
	})
	tests := []struct {
		names []string
		iface string
		want  string
	}{
		{[]string{"pbx.example.com"}, "outside", "pbx"},
		{[]string{"other.example", "SIP.Example.NET"}, "outside", "teams"},
		{[]string{"example.org"}, "outside", "both"},
		{[]string{"edge.example.org."}, "outside", "both"},
		{[]string{"anywhere.example.com"}, "inside", "any"},
		{[]string{"in.example.com"}, "outside", ""},    // peer of another interface
		{[]string{"192.0.2.10"}, "outside", ""},        // IP peers are recognised by address only
		{[]string{"*.example.com"}, "outside", ""},     // no wildcards
		{[]string{"x.pbx.example.com"}, "outside", ""}, // no suffix match
		{nil, "outside", ""},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.names, ",")+"@"+tc.iface, func(t *testing.T) {
			if got := cp.Lookup(tc.names, tc.iface); got != tc.want {
				t.Fatalf("Lookup = %q, want %q", got, tc.want)
			}
		})
	}
	if (*CertPeers)(nil).Lookup([]string{"pbx.example.com"}, "outside") != "" {
		t.Fatal("nil CertPeers found a peer")
	}
}
