package pki

import (
	"crypto/x509"
	"net/netip"
)

// ClientVerifier is implemented by the PKI subsystem. The SIP layer
// recognises a peer by the names in its client certificate only after this
// check, made once per connection: the listener's handshake verifies the
// chain itself (tls.RequestClientCert plus VerifyConnection), which leaves
// tls.ConnectionState.VerifiedChains empty, so the SIP layer cannot tell a
// verified certificate from an unchecked one by looking at the connection.
type ClientVerifier interface {
	// VerifyClient checks a client's chain (leaf first) as a listener with
	// require_client_cert does: dates, a path to a CA of the CA store with
	// clientAuth usage, and the CRLs. nil means the names in the leaf may be
	// trusted.
	VerifyClient(chain []*x509.Certificate) error
}

var _ ClientVerifier = (*Subsystem)(nil)

// VerifyClient implements ClientVerifier against the trust of the
// configuration applied now.
func (s *Subsystem) VerifyClient(chain []*x509.Certificate) error {
	rt := s.rt.Load()
	if rt == nil {
		return errNotApplied
	}
	if ve := rt.verifyClient(chain, netip.Addr{}, s.now()); ve != nil {
		return ve
	}
	return nil
}

// VerifyClientFrom is VerifyClient for a client connecting from remote:
// a peer's trunk.trust settings (system roots, serverAuth-only
// certificates) apply to a certificate that names the peer, and, for a
// peer with trunk.ranges, only from those ranges. VerifyClient applies
// them only to peers without ranges.
func (s *Subsystem) VerifyClientFrom(chain []*x509.Certificate, remote netip.Addr) error {
	rt := s.rt.Load()
	if rt == nil {
		return errNotApplied
	}
	if ve := rt.verifyClient(chain, remote, s.now()); ve != nil {
		return ve
	}
	return nil
}
