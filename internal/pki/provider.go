// Package pki manages the unit's own keys and certificates, the CA store with
// its CRLs, and builds the TLS configurations the SIP and admin listeners use.
package pki

import (
	"crypto/tls"

	"github.com/palisade-sbc/palisade/internal/config"
)

// Provider gives TLS configurations that follow the running configuration.
// The returned configs look up certificates and trust on every handshake
// (GetConfigForClient / GetClientCertificate / VerifyConnection), so an apply
// changes new handshakes without touching listeners or established
// connections.
type Provider interface {
	// ServerConfig is the config for a TLS listener.
	ServerConfig(l config.Listener) (*tls.Config, error)
	// ClientConfig is the config for an outgoing connection to a target whose
	// SIP domain or FQDN is serverName (never an IP for the domain check).
	ClientConfig(serverName string) (*tls.Config, error)
}

// HandshakeReporter is implemented by the PKI subsystem. Code that runs TLS
// handshakes itself (e.g. the SIP transport's handshake listener and its TLS
// dialer) passes every failed handshake to it, so that the failure is
// explained with its §7.1.6 cause (docs/tls.md), logged at a bounded rate and
// counted in palisade_pki_tls_handshake_failures_total. role is "server"
// (a peer connected to a listener on iface) or "client"; remote is the
// peer's address. The composition root (cli/wire.go) hands the subsystem
// to its users as this interface (b2bua.Deps.Handshakes).
type HandshakeReporter interface {
	HandshakeFailed(role, iface, remote string, err error) Diagnosis
}

var _ HandshakeReporter = (*Subsystem)(nil)
