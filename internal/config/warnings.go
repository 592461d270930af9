package config

import (
	"fmt"
	"net/netip"
)

// Warnings lists settings that are valid but weaken the unit, each with its
// path, for admin surfaces to show beside the configuration (and for the
// unit to log on apply). Like Validate it is fast and has no side effects.
func (c *Config) Warnings() Errors {
	var w Errors
	add := func(path, format string, args ...any) {
		w = append(w, FieldError{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	if i := tlsVersionIndex(c.TLS.MinVersion); i >= 0 && i < tlsVersionIndex("1.2") {
		add("tls.min_version", "TLS %s is enabled; versions below 1.2 are weak and only for peers that cannot do better", c.TLS.MinVersion)
	}
	if !c.TLS.CheckServerDomain {
		add("tls.check_server_domain", "is off: any certificate from a trusted CA is accepted for any peer")
	}
	if c.TLS.UseSystemRoots {
		add("tls.use_system_roots", "is on: every CA the operating system trusts may vouch for SIP peers")
	}
	if c.HEP.Enabled && !c.Observe.TraceCalls {
		add("hep.enabled", "has no effect while observe.trace_calls is off: HEP sends the traced messages")
	}
	if !c.SIP.TopologyHiding {
		add("sip.topology_hiding", "is off: inside addresses and Call-IDs are visible outside")
	}
	for i, n := range c.Admin.AllowedNetworks {
		if p, err := netip.ParsePrefix(n); err == nil && p.Bits() == 0 {
			add(fmt.Sprintf("admin.allowed_networks[%d]", i), "%s lets every address reach the admin listener", n)
		}
	}
	for i, l := range c.SIP.Listeners {
		if l.RequireClientCert && l.Transport != "tls" {
			add(fmt.Sprintf("sip.listeners[%d].require_client_cert", i), "has no effect on a %s listener", l.Transport)
		}
	}
	// tls.ca_certificates [] means every CA of the CA store.
	noTrust := len(c.TLS.CACertificates) == 0 && len(c.Certificates.CA) == 0 && !c.TLS.UseSystemRoots
	for i, l := range c.SIP.Listeners {
		if l.RequireClientCert && l.Transport == "tls" && noTrust && !anyPeerTrustsSystem(c.Peers) {
			add(fmt.Sprintf("sip.listeners[%d].require_client_cert", i), "no CA is trusted (the CA store, certificates.ca, is empty), so no client certificate can be accepted")
		}
	}
	for i, p := range c.Peers {
		if p.Transport == "tls" && noTrust && !p.Trunk.Trust.SystemRoots {
			add(fmt.Sprintf("peers[%d].transport", i), "tls, but no CA is trusted (the CA store, certificates.ca, is empty): the peer's certificate cannot be verified")
		}
	}
	for i, p := range c.Peers {
		if p.Auth.Password != "" && (p.Transport == "udp" || p.Transport == "tcp") && p.Kind == "itsp" {
			add(fmt.Sprintf("peers[%d].transport", i), "%s sends this trunk's digest exchanges unencrypted over the internet", p.Transport)
		}
	}
	for i, p := range c.Peers {
		trunkWarnings(fmt.Sprintf("peers[%d]", i), p, add)
		c.peerMediaWarnings(fmt.Sprintf("peers[%d].media", i), p, add)
	}
	if len(w) == 0 {
		return nil
	}
	return w
}
