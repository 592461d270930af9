package b2bua

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/netip"

	"github.com/emiago/sipgo/sip"

	"github.com/palisade-sbc/palisade/internal/guard"
	"github.com/palisade-sbc/palisade/internal/pki"
	"github.com/palisade-sbc/palisade/internal/routing"
)

// A peer is recognised by its source address, or, over mutual TLS, by the
// names of its verified client certificate (a PBX or trunk whose address
// changes, or several addresses behind one name). The transport keeps the
// names per connection (transport.Endpoint.PeerNames).

// sourcePeer returns the configured peer req comes from: by the interface
// it arrived on and its literal or resolved source address and port
// (routing.PickSourcePeer), else by the verified certificate of its TLS
// connection; "" when none. A peer of another interface never matches.
func (s *Service) sourcePeer(ep *endpoint, req *sip.Request, rt *runtime) string {
	if ap, err := netip.ParseAddrPort(req.Source()); err == nil {
		if rt.table != nil {
			if p := rt.table.SourcePeerOn(ep.name, ap); p != "" {
				return p
			}
		}
		if p := s.peers.sourcePeer(ep.name, ap); p != "" {
			return p
		}
	}
	return ep.certPeer(req, rt)
}

// certPeer returns the peer named by the verified client certificate of
// the TLS connection req arrived on; "" for other transports, connections
// without a verified certificate and names of no peer on this interface.
func (ep *endpoint) certPeer(req *sip.Request, rt *runtime) string {
	if rt.table == nil || !isTLS(req.Transport()) {
		return ""
	}
	names := ep.PeerNames(req.Source())
	if names == nil {
		return ""
	}
	return ep.certPeers(rt.table).Lookup(names, ep.name)
}

func isTLS(tr string) bool { return tr == "TLS" || tr == "tls" }

// certPeerIndex is the certificate-name index of one routing table.
type certPeerIndex struct {
	table *routing.Table
	cp    *guard.CertPeers
}

// certPeers returns the index of t's peers, built once per applied table.
func (ep *endpoint) certPeers(t *routing.Table) *guard.CertPeers {
	if ix := ep.certIdx.Load(); ix != nil && ix.table == t {
		return ix.cp
	}
	ix := &certPeerIndex{table: t, cp: guard.NewCertPeers(t.Peers())}
	ep.certIdx.Store(ix)
	return ix.cp
}

// clientVerifierFrom is implemented by the PKI subsystem
// (pki.Subsystem.VerifyClientFrom).
type clientVerifierFrom interface {
	VerifyClientFrom(chain []*x509.Certificate, remote netip.Addr) error
}

// verifiedNames returns the names of the client certificate of a completed
// server handshake, or nil unless the chain was verified: by crypto/tls
// (VerifiedChains), or by the PKI provider when it verified the chain
// itself during the handshake (pki.ClientVerifier). A provider that knows
// the peers' trust settings checks the chain for the client's address
// (clientVerifierFrom: system roots and serverAuth-only certificates of a
// peer, its ranges). A certificate nobody verified never names a peer.
func (s *Service) verifiedNames(cs tls.ConnectionState, remote net.Addr) []string {
	if len(cs.PeerCertificates) == 0 {
		return nil
	}
	if len(cs.VerifiedChains) > 0 {
		return guard.CertNames(cs.PeerCertificates[0])
	}
	if v, ok := s.deps.TLS.(clientVerifierFrom); ok {
		if ap, err := netip.ParseAddrPort(remote.String()); err == nil {
			if v.VerifyClientFrom(cs.PeerCertificates, ap.Addr().Unmap()) == nil {
				return guard.CertNames(cs.PeerCertificates[0])
			}
			return nil
		}
	}
	if v, ok := s.deps.TLS.(pki.ClientVerifier); ok && v.VerifyClient(cs.PeerCertificates) == nil {
		return guard.CertNames(cs.PeerCertificates[0])
	}
	return nil
}
