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
