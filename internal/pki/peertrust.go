package pki

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
)

// peerTrust is one peer's widening of trust (peers[].trunk.trust): the
// system's public roots besides the CA store, and client certificates with
// serverAuth only. It applies to a certificate that names the peer (one of
// its host names: address, domain, trunk.targets; a wildcard of one label
// counts) and, when the peer has trunk.ranges, only from those ranges.
type peerTrust struct {
	peer             string
	names            []string
	ranges           []netip.Prefix
	systemRoots      bool
	serverAuthClient bool
}

// peerTrusts holds the peers that widen trust and the store they widen to.
type peerTrusts struct {
	peers []peerTrust
	wide  *trustStore // the CA store plus the system roots; nil when unneeded
}

// systemRoots loads the system's public roots (Debian: ca-certificates);
// tests replace it.
var systemRoots = x509.SystemCertPool

// buildPeerTrusts collects the peers of cfg that widen trust. base is the
// trust store of the CA store; the widened store shares its CRLs and
// explanations.
func (s *Subsystem) buildPeerTrusts(cfg *config.Config, base *trustStore) *peerTrusts {
	pt := &peerTrusts{}
	needSystem := false
	for _, p := range cfg.Peers {
		tr := p.Trunk.Trust
		if !tr.SystemRoots && !tr.ServerAuthClientCert {
			continue
		}
		e := peerTrust{peer: p.Name, systemRoots: tr.SystemRoots, serverAuthClient: tr.ServerAuthClientCert}
		for _, h := range append([]string{p.Address, p.Domain}, p.Trunk.Targets...) {
			if host, _, err := net.SplitHostPort(h); err == nil {
				h = host
			}
			if h = strings.TrimSuffix(strings.ToLower(strings.Trim(h, "[]")), "."); h != "" && !isIP(h) {
				e.names = append(e.names, h)
			}
		}
		for _, r := range p.Trunk.Ranges {
			if pf, err := netip.ParsePrefix(strings.TrimSpace(r)); err == nil {
				e.ranges = append(e.ranges, pf.Masked())
			}
		}
		needSystem = needSystem || tr.SystemRoots
		pt.peers = append(pt.peers, e)
	}
	if needSystem && !base.system {
		sys, err := systemRoots()
		if err != nil {
			s.log.Warn("system roots are not available; peers[].trunk.trust.system_roots has no effect", "err", err)
		} else {
			w := *base
			w.pool = sys
			for _, n := range base.trusted {
				w.pool.AddCert(n.cert)
			}
			w.system = true
			pt.wide = &w
		}
	}
	return pt
}

// forServer returns the trust settings of the peer the unit connects to as
// serverName; nil when no peer widens trust for that name.
func (pt *peerTrusts) forServer(serverName string) *peerTrust {
	if pt == nil || serverName == "" {
		return nil
	}
	n := strings.TrimSuffix(strings.ToLower(serverName), ".")
	for i := range pt.peers {
		for _, pn := range pt.peers[i].names {
			if pn == n {
				return &pt.peers[i]
			}
		}
	}
	return nil
}

// forClient returns the trust settings of the peer a client certificate
// names, connecting from remote (invalid = unknown, which fails peers with
// ranges); nil when none.
func (pt *peerTrusts) forClient(leaf *x509.Certificate, remote netip.Addr) *peerTrust {
	if pt == nil || leaf == nil {
		return nil
	}
	certNames := leaf.DNSNames
	if len(certNames) == 0 && leaf.Subject.CommonName != "" {
		certNames = []string{leaf.Subject.CommonName}
	}
	for i := range pt.peers {
		p := &pt.peers[i]
		if len(p.ranges) > 0 && !inRanges(p.ranges, remote) {
			continue
		}
		for _, cn := range certNames {
			for _, pn := range p.names {
				if nameCovers(cn, pn) {
					return p
				}
			}
		}
	}
	return nil
}

func inRanges(rs []netip.Prefix, a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.Unmap()
	for _, r := range rs {
		if r.Contains(a) {
			return true
		}
	}
	return false
}

// nameCovers reports whether certificate name cn is host, or a wildcard
// standing for its whole left-most label (RFC 6125 §6.4.3).
func nameCovers(cn, host string) bool {
	cn = strings.TrimSuffix(strings.ToLower(cn), ".")
	if cn == host {
		return true
	}
	if !strings.HasPrefix(cn, "*.") || strings.Count(cn, ".") < 2 {
		return false
	}
	i := strings.IndexByte(host, '.')
	return i > 0 && host[i:] == cn[1:]
}

// store returns the trust store to verify this peer with, and the usages
// its certificate may have in role.
func (pt *peerTrusts) store(p *peerTrust, base *trustStore, role peerRole) (*trustStore, []x509.ExtKeyUsage) {
	usages := []x509.ExtKeyUsage{role.usage()}
	if p == nil {
		return base, usages
	}
	t := base
	if p.systemRoots && pt.wide != nil {
		t = pt.wide
	}
	if role == peerIsClient && p.serverAuthClient {
		usages = append(usages, x509.ExtKeyUsageServerAuth)
	}
	return t, usages
}

// verifyClient checks a client's chain as a listener with
// require_client_cert does, widened for the peer the certificate names
// (from remote) when that peer's settings allow. When the check fails and
// no setting of a peer applies, the diagnosis says which setting would
// accept the certificate.
func (rt *runtime) verifyClient(certs []*x509.Certificate, remote netip.Addr, now time.Time) *VerifyError {
	var leaf *x509.Certificate
	if len(certs) > 0 {
		leaf = certs[0]
	}
	p := rt.peers.forClient(leaf, remote)
	t, usages := rt.peers.store(p, rt.trust, peerIsClient)
	_, ve := t.verifyUsages(certs, peerIsClient, "", false, now, usages)
	if ve == nil || p != nil {
		return ve
	}
	return rt.hint(ve, leaf, peerIsClient, now)
}

// hint adds to a refusal the per-peer setting that would have accepted the
// certificate: serverAuth-only client certificates, or a public root.
func (rt *runtime) hint(ve *VerifyError, leaf *x509.Certificate, role peerRole, at time.Time) *VerifyError {
	if leaf == nil {
		return ve
	}
	d := ve.Diagnosis
	switch {
	case d.Cause == CauseWrongUsage && role == peerIsClient && hasUsage(leaf, x509.ExtKeyUsageServerAuth) && !hasUsage(leaf, x509.ExtKeyUsageClientAuth):
		d.Message += fmt.Sprintf("; the certificate has serverAuth only, as public CAs issue them from 2026: to accept it from this peer, set peers[].trunk.trust.server_auth_client_cert on the peer named %s",
			quoteList(names(leaf)))
	case (d.Cause == CauseUnknownCA || d.Cause == CauseMissingIntermediate) && !rt.trust.system && chainsToSystem(leaf, at):
		d.Message += fmt.Sprintf("; its root is one of the system's public roots (ca-certificates): to trust them for this peer, set peers[].trunk.trust.system_roots on the peer named %s (or tls.use_system_roots for every peer)",
			quoteList(names(leaf)))
	default:
		return ve
	}
	return &VerifyError{d}
}

// chainsToSystem reports whether leaf verifies against the system roots
// for any usage.
func chainsToSystem(leaf *x509.Certificate, at time.Time) bool {
	sys, err := systemRoots()
	if err != nil || sys == nil {
		return false
	}
	_, err = leaf.Verify(x509.VerifyOptions{Roots: sys, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err == nil
}

// PeerTrustNote says how a peer's settings widen trust for serverName (the
// unit connecting to it), for 'palisade diagnose tls'; "" when none do.
func (rt *runtime) peerTrustNote(serverName string) string {
	p := rt.peers.forServer(serverName)
	if p == nil {
		return ""
	}
	var parts []string
	if p.systemRoots {
		if rt.peers.wide != nil || rt.trust.system {
			parts = append(parts, "the system's public roots are trusted in addition to the CA store")
		} else {
			parts = append(parts, "the system's public roots are set to be trusted, but this system has none (install ca-certificates)")
		}
	}
	if p.serverAuthClient {
		parts = append(parts, "its client certificate may have serverAuth only when it connects to this unit")
	}
	return fmt.Sprintf("peer %q: %s", p.peer, strings.Join(parts, "; "))
}
