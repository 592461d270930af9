package config

import (
	"fmt"
	"net/url"
	"strings"
)

// Valid values of the operations sections (docs/configuration.md).
var (
	HEPTransports  = []string{"udp", "tcp"}
	ACMEChallenges = []string{"http-01", "tls-alpn-01", "dns-01"}
	// ACMEDNSProviders are the DNS providers built in for dns-01.
	ACMEDNSProviders = []string{"cloudflare", "digitalocean", "exec", "hetzner", "httpreq", "pdns"}
	acmeKeyTypes     = []string{"ecdsa-p256", "rsa-2048", "rsa-3072", "rsa-4096"}
)

func (v *validator) hep() {
	h := v.c.HEP
	seen := map[string]int{}
	for i, c := range h.Collectors {
		p := fmt.Sprintf("hep.collectors[%d]", i)
		v.hostPort(p+".address", c.Address, true)
		v.enum(p+".transport", c.Transport, HEPTransports)
		k := c.Transport + " " + c.Address
		if j, dup := seen[k]; dup {
			v.add(p, "%s %s is already listed at hep.collectors[%d]", c.Transport, c.Address, j)
		}
		seen[k] = i
	}
	if h.Enabled && len(h.Collectors) == 0 {
		v.add("hep.collectors", "is empty; HEP export needs at least one collector")
	}
	if h.NodeID < 0 || h.NodeID > 1<<32-1 {
		v.add("hep.node_id", "%d is outside 0-4294967295", h.NodeID)
	}
	v.noNewline("hep.node_name", h.NodeName)
	if len(h.NodeName) > 255 || len(h.Password) > 255 {
		v.add("hep", "node_name and password are at most 255 bytes each")
	}
	if h.QueueSize < 1 || h.QueueSize > 1_000_000 {
		v.add("hep.queue_size", "%d is outside 1-1000000", h.QueueSize)
	}
}

func (v *validator) acme() {
	a := v.c.ACME
	if a.Enabled || a.DirectoryURL != "" {
		u, err := url.Parse(a.DirectoryURL)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			v.add("acme.directory_url", "%q is not an https URL of an ACME directory", a.DirectoryURL)
		}
	}
	if a.Email != "" && (!strings.Contains(a.Email, "@") || strings.ContainsAny(a.Email, " \r\n<>")) {
		v.add("acme.email", "%q is not an e-mail address", a.Email)
	}
	for i, n := range a.CACertificates {
		v.ref(fmt.Sprintf("acme.ca_certificates[%d]", i), n, v.caCerts, "certificates.ca")
	}
	if (a.EAB.KeyID == "") != (a.EAB.HMACKey == "") {
		v.add("acme.eab", "key_id and hmac_key go together: give both or neither")
	}
	v.enum("acme.challenge", a.Challenge, ACMEChallenges)
	switch a.Challenge {
	case "http-01", "tls-alpn-01":
		v.hostPort("acme.challenge_listen", a.ChallengeListen, true)
	case "dns-01":
		v.enum("acme.dns_provider", a.DNSProvider, ACMEDNSProviders)
	}
	for i, r := range a.DNSResolvers {
		v.hostPort(fmt.Sprintf("acme.dns_resolvers[%d]", i), r, true)
	}
	v.enum("acme.key_type", a.KeyType, acmeKeyTypes)
	seen := map[string]int{}
	for i, c := range a.Certificates {
		p := fmt.Sprintf("acme.certificates[%d]", i)
		v.ref(p+".name", c.Name, v.privCerts, "certificates.private")
		if j, dup := seen[c.Name]; dup {
			v.add(p+".name", "%q is already listed at acme.certificates[%d]", c.Name, j)
		}
		seen[c.Name] = i
		if len(c.Domains) == 0 {
			v.add(p+".domains", "is empty; give the names the certificate is for")
		}
		for j, d := range c.Domains {
			dp := fmt.Sprintf("%s.domains[%d]", p, j)
			if strings.HasPrefix(d, "*.") && a.Challenge != "dns-01" {
				v.add(dp, "%q: a wildcard name can only be proved with dns-01", d)
				continue
			}
			v.host(dp, strings.TrimPrefix(d, "*."), true)
		}
	}
	if a.Enabled && len(a.Certificates) == 0 {
		v.add("acme.certificates", "is empty; name the certificates ACME should keep issued")
	}
}
