package pki

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// namedCert is a certificate with the entry it came from.
type namedCert struct {
	name string
	cert *x509.Certificate
}

// trustStore is what the unit trusts for peers, with the CRLs of those CAs.
type trustStore struct {
	pool      *x509.CertPool
	trusted   []namedCert                       // CA entries used as anchors
	untrusted []namedCert                       // CA entries not listed in tls.ca_certificates
	crls      map[string][]*x509.RevocationList // by issuer certificate fingerprint
	own       []namedCert                       // the unit's own certificates and intermediates
	system    bool
}

// peerRole is what the peer's certificate must be good for.
type peerRole int

const (
	peerIsClient peerRole = iota // we are the server; the peer's certificate needs clientAuth
	peerIsServer                 // we are the client; the peer's certificate needs serverAuth
)

func (r peerRole) usage() x509.ExtKeyUsage {
	if r == peerIsClient {
		return x509.ExtKeyUsageClientAuth
	}
	return x509.ExtKeyUsageServerAuth
}

func (r peerRole) word() string {
	if r == peerIsClient {
		return "client"
	}
	return "server"
}

const dateFmt = "2006-01-02 15:04 MST"

func validity(c *x509.Certificate) string {
	return fmt.Sprintf("valid from %s to %s", c.NotBefore.UTC().Format(dateFmt), c.NotAfter.UTC().Format(dateFmt))
}

// verify checks the chain a peer sent: dates, the name (when name is not
// empty), a path to a trusted CA with the right extended key usage, and the
// CRLs. The returned error says which §7.1.6 cause it is.
func (t *trustStore) verify(certs []*x509.Certificate, role peerRole, name string, wildcard bool, now time.Time) ([]*x509.Certificate, *VerifyError) {
	return t.verifyUsages(certs, role, name, wildcard, now, []x509.ExtKeyUsage{role.usage()})
}

// verifyUsages is verify with the extended key usages the leaf may have
// (any one of them suffices); a peer's settings may widen role's usage.
func (t *trustStore) verifyUsages(certs []*x509.Certificate, role peerRole, name string, wildcard bool, now time.Time, usages []x509.ExtKeyUsage) ([]*x509.Certificate, *VerifyError) {
	if len(certs) == 0 {
		if role == peerIsClient {
			return nil, verr(CauseNoClientCert, "the peer sent no client certificate, but this listener requires one (require_client_cert): "+
				"give the peer a certificate from a CA in this unit's CA store, or turn require_client_cert off")
		}
		return nil, verr(CauseOther, "the server sent no certificate")
	}
	leaf := certs[0]
	for i, c := range certs {
		what := fmt.Sprintf("the peer's certificate %q", label(c))
		if i > 0 {
			what = fmt.Sprintf("the intermediate certificate %q sent by the peer", label(c))
		}
		if now.Before(c.NotBefore) {
			return nil, verr(CauseNotYetValid, fmt.Sprintf("%s is not valid yet: it is %s (check the clocks of both sides)", what, validity(c)))
		}
		if now.After(c.NotAfter) {
			return nil, verr(CauseExpired, fmt.Sprintf("%s expired: it was %s; the peer must renew it", what, validity(c)))
		}
	}
	if name != "" && !matchName(leaf, name, wildcard) {
		msg := fmt.Sprintf("the server's certificate is for %s, not for %q, the domain this unit connected to", quoteList(names(leaf)), name)
		if !wildcard && hasWildcard(leaf) {
			msg += "; it holds a wildcard name, and tls.allow_wildcard_server_certificates is off"
		}
		return nil, verr(CauseNameMismatch, msg+" (or turn tls.check_server_domain off)")
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{Roots: t.pool, Intermediates: inter, CurrentTime: now,
		KeyUsages: usages})
	if err != nil {
		return nil, t.explain(err, certs, role)
	}
	chain := chains[0]
	if ve := t.checkRevoked(chain, now); ve != nil {
		return nil, ve
	}
	if leaf.KeyUsage != 0 && leaf.KeyUsage&(x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment|x509.KeyUsageKeyAgreement) == 0 {
		return nil, verr(CauseWrongUsage, fmt.Sprintf("the peer's certificate %q does not allow TLS use (key usage: %s)", label(leaf), strings.Join(keyUsageNames(leaf.KeyUsage), ", ")))
	}
	return chain, nil
}

func quoteList(ss []string) string {
	if len(ss) == 0 {
		return "no name at all"
	}
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// explain turns an x509 verification error into an administrator's words.
func (t *trustStore) explain(err error, certs []*x509.Certificate, role peerRole) *VerifyError {
	leaf := certs[0]
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	switch {
	case errors.As(err, &ua):
		return t.explainUnknown(certs)
	case errors.As(err, &ci):
		switch ci.Reason {
		case x509.Expired:
			return verr(CauseExpired, fmt.Sprintf("the CA certificate %q in the chain has expired or is not valid yet (%s); renew it in the CA store", label(ci.Cert), validity(ci.Cert)))
		case x509.NotAuthorizedToSign:
			return verr(CauseWrongStore, fmt.Sprintf("%q signed the peer's certificate but is not a CA certificate: a device certificate was used as a CA", label(ci.Cert)))
		case x509.IncompatibleUsage:
			return verr(CauseWrongUsage, fmt.Sprintf("the peer's certificate %q may not be used as a TLS %s certificate (extended key usage: %s); the peer needs a certificate with %s usage",
				label(leaf), role.word(), strings.Join(extKeyUsageNames(leaf), ", "), role.usage2()))
		case x509.CANotAuthorizedForExtKeyUsage:
			return verr(CauseWrongUsage, fmt.Sprintf("the CA %q may not issue TLS %s certificates (its extended key usage excludes it)", label(ci.Cert), role.word()))
		}
	}
	return verr(CauseOther, "the peer's certificate does not verify: "+err.Error())
}

func (r peerRole) usage2() string {
	if r == peerIsClient {
		return "clientAuth (TLS web client authentication)"
	}
	return "serverAuth (TLS web server authentication)"
}

// explainUnknown tells apart, for a chain that leads to no trusted CA: a CA
// sitting in the private store instead of the CA store, a CA in the store
// that tls.ca_certificates leaves out, a missing intermediate, and an
// unknown CA.
func (t *trustStore) explainUnknown(certs []*x509.Certificate) *VerifyError {
	leaf := certs[0]
	top := leaf
	used := map[string]bool{Fingerprint(leaf): true}
	for {
		next := findIssuer(top, certs[1:], used)
		if next == nil {
			break
		}
		used[Fingerprint(next)] = true
		top = next
	}
	issuer := issuerLabel(top)
	if selfSigned(top) {
		issuer = label(top)
	}
	issuedBy := func(n namedCert) bool {
		return bytes.Equal(n.cert.RawSubject, top.RawIssuer) && top.CheckSignatureFrom(n.cert) == nil
	}
	for _, n := range t.untrusted {
		if issuedBy(n) {
			return verr(CauseUnknownCA, fmt.Sprintf("the peer's certificate chains to %q, which is in the CA store as %q but not trusted: add %q to tls.ca_certificates",
				label(n.cert), n.name, n.name))
		}
	}
	for _, n := range t.own {
		if issuedBy(n) {
			return verr(CauseWrongStore, fmt.Sprintf("the issuer %q of the peer's certificate is among the unit's private certificates (in %q), but peers are verified only against the CA store: "+
				"import %q into the CA store with 'palisade ca import'", label(n.cert), n.name, label(n.cert)))
		}
	}
	aia := ""
	if len(top.IssuingCertificateURL) > 0 {
		aia = fmt.Sprintf(" (its CA publishes it at %s)", top.IssuingCertificateURL[0])
	}
	if selfSigned(top) {
		return verr(CauseUnknownCA, fmt.Sprintf("the peer's certificate %q chains to the root %q, which is not in the CA store: import the certificate of %q with 'palisade ca import' if you trust it",
			label(leaf), issuer, issuer))
	}
	if top == leaf {
		if root := t.sameOrganisation(top); root != nil {
			return verr(CauseMissingIntermediate, fmt.Sprintf("the peer sent only its own certificate %q, issued by the intermediate CA %q, which this unit does not hold; "+
				"the CA store has %q of the same organisation. The peer must send its intermediate certificate with its own, or import %q into the CA store%s",
				label(leaf), issuer, label(root.cert), issuer, aia))
		}
	}
	return verr(CauseUnknownCA, fmt.Sprintf("the peer's certificate %q was issued by %q, which is not in the CA store: import the certificate of %q (and its root) with 'palisade ca import'%s",
		label(leaf), issuer, issuer, aia))
}

// sameOrganisation returns a trusted CA whose organisation is the one that
// issued c: the sign that c's issuer is an intermediate of a known hierarchy.
func (t *trustStore) sameOrganisation(c *x509.Certificate) *namedCert {
	if len(c.Issuer.Organization) == 0 {
		return nil
	}
	for i, n := range t.trusted {
		if len(n.cert.Subject.Organization) > 0 && n.cert.Subject.Organization[0] == c.Issuer.Organization[0] {
			return &t.trusted[i]
		}
	}
	return nil
}

// checkRevoked looks every certificate of chain (except the anchor) up in
// the CRL of its issuer.
func (t *trustStore) checkRevoked(chain []*x509.Certificate, now time.Time) *VerifyError {
	for i := 0; i+1 < len(chain); i++ {
		c, issuer := chain[i], chain[i+1]
		for _, crl := range t.crls[Fingerprint(issuer)] {
			for _, r := range crl.RevokedCertificateEntries {
				if r.SerialNumber.Cmp(c.SerialNumber) == 0 {
					return verr(CauseRevoked, fmt.Sprintf("the certificate %q (serial %s) was revoked by %q on %s (CRL of %s); the peer needs a new certificate",
						label(c), colonHex(c.SerialNumber.Bytes()), label(issuer), r.RevocationTime.UTC().Format(dateFmt), crl.ThisUpdate.UTC().Format("2006-01-02")))
				}
			}
		}
	}
	return nil
}

// matchName reports whether c is valid for host (RFC 6125): DNS SANs, or the
// CN when there is no DNS SAN. A wildcard stands for exactly one whole
// left-most label, and only when wildcard is allowed.
func matchName(c *x509.Certificate, host string, wildcard bool) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	patterns := c.DNSNames
	if len(patterns) == 0 && c.Subject.CommonName != "" {
		patterns = []string{c.Subject.CommonName}
	}
	for _, p := range patterns {
		p = strings.ToLower(strings.TrimSuffix(p, "."))
		if p == host {
			return true
		}
		if !wildcard || !strings.HasPrefix(p, "*.") {
			continue
		}
		suffix := p[1:] // ".example.com"
		if strings.Count(suffix, ".") < 2 {
			continue // "*.com" names a whole public suffix
		}
		i := strings.IndexByte(host, '.')
		if i > 0 && host[i:] == suffix {
			return true
		}
	}
	return false
}

func hasWildcard(c *x509.Certificate) bool {
	for _, n := range append(append([]string(nil), c.DNSNames...), c.Subject.CommonName) {
		if strings.HasPrefix(n, "*.") {
			return true
		}
	}
	return false
}

// isIP reports whether s is an IP address (a target given by address gets
// no domain check: the check is against the SIP domain or FQDN only).
func isIP(s string) bool {
	return net.ParseIP(strings.Trim(s, "[]")) != nil
}
