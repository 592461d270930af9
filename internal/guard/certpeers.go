package guard

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/netip"
	"strings"

	"github.com/palisade-sbc/palisade/internal/config"
)

// CertNames returns the names a peer's certificate vouches for, as RFC 5922
// (SIP domain certificates, section 7.1) reads them: the DNS names and the
// host of sip:/sips: URIs without a user part in subjectAltName, and the
// common name only when subjectAltName holds none of those. Names are lower
// case without a trailing dot. The caller must have verified the chain:
// this reads the certificate, it does not check it.
func CertNames(c *x509.Certificate) []string {
	if c == nil {
		return nil
	}
	var names []string
	add := func(n string) {
		if n = strings.TrimSuffix(strings.ToLower(n), "."); n != "" {
			names = append(names, n)
		}
	}
	for _, n := range c.DNSNames {
		add(n)
	}
	for _, u := range c.URIs {
		if (u.Scheme == "sip" || u.Scheme == "sips") && u.Opaque != "" && !strings.Contains(u.Opaque, "@") {
			host := u.Opaque
			if i := strings.IndexAny(host, ";?"); i >= 0 {
				host = host[:i]
			}
			if h, _, err := net.SplitHostPort(host); err == nil {
				host = h
			}
			add(host)
		}
	}
	if len(names) == 0 {
		add(c.Subject.CommonName)
	}
	return names
}

// TLSNames returns the names of a TLS peer whose chain crypto/tls verified
// (VerifiedChains); nil otherwise. Code that verifies chains itself (the
// PKI subsystem does) uses CertNames after its own check.
func TLSNames(cs *tls.ConnectionState) []string {
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.PeerCertificates) == 0 {
		return nil
	}
	return CertNames(cs.PeerCertificates[0])
}

// CertPeers finds the configured peer a verified certificate belongs to. A
// peer is named by the host of its address when that is a name (not an IP
// literal) and by its SIP domain; matching is exact and case-insensitive.
// Wildcard certificates name no peer: RFC 5922 section 7.2 forbids them for
// SIP domain identities, and one would let any holder of *.example.net act
// as pbx.example.net.
type CertPeers struct {
	byName map[string][]certPeer
}

type certPeer struct{ name, iface string }

// NewCertPeers indexes peers by the names their certificates must carry.
func NewCertPeers(peers []config.Peer) *CertPeers {
	cp := &CertPeers{byName: map[string][]certPeer{}}
	for _, p := range peers {
		for _, n := range peerCertNames(p) {
			cp.byName[n] = append(cp.byName[n], certPeer{p.Name, p.Interface})
		}
	}
	return cp
}

// peerCertNames are the names p is known by (lower case, no trailing dot).
func peerCertNames(p config.Peer) []string {
	var out []string
	host := p.Address
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if _, err := netip.ParseAddr(host); err != nil && host != "" {
		out = append(out, strings.TrimSuffix(strings.ToLower(host), "."))
	}
	if d := strings.TrimSuffix(strings.ToLower(p.Domain), "."); d != "" && (len(out) == 0 || out[0] != d) {
		out = append(out, d)
	}
	return out
}

// Lookup returns the first peer (in configuration order of names) that one
// of names belongs to and that is allowed on iface (its interface, or any
// when it has none); "" when none.
func (cp *CertPeers) Lookup(names []string, iface string) string {
	if cp == nil {
		return ""
	}
	for _, n := range names {
		for _, p := range cp.byName[strings.TrimSuffix(strings.ToLower(n), ".")] {
			if p.iface == "" || p.iface == iface {
				return p.name
			}
		}
	}
	return ""
}
