package pki

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"time"
)

// assembled is the result of putting an imported bundle in order.
type assembled struct {
	chain []*x509.Certificate // leaf first, then intermediates up to (not including) the root
	root  *x509.Certificate   // the root that issued the last of chain, when the upload held it
	notes []string            // what was dropped or ignored, for the administrator
}

// assembleChain finds the certificate for the key keyID among certs (or uses
// existingLeaf when the upload only adds intermediates), and orders the rest
// leaf → root. Roots included by mistake are dropped with a note; certificates
// not part of the chain are ignored with a note. entry names the entry in
// messages.
func assembleChain(entry, keyID string, existingLeaf *x509.Certificate, existing, certs []*x509.Certificate) (*assembled, error) {
	var leaf *x509.Certificate
	var pool []*x509.Certificate
	// A device certificate in the upload made for another key is a mistake
	// (another request, another unit), even when the entry already holds its
	// own: refuse the whole upload rather than ignore it with a note.
	for _, c := range certs {
		if id, err := KeyID(c.PublicKey); !isCA(c) && (err != nil || id != keyID) {
			return nil, foreignKeyError(entry, keyID, c)
		}
	}
	seen := map[string]bool{}
	for _, c := range append(append([]*x509.Certificate(nil), certs...), existing...) {
		fp := Fingerprint(c)
		if seen[fp] {
			continue
		}
		seen[fp] = true
		id, err := KeyID(c.PublicKey)
		if err == nil && id == keyID {
			if leaf == nil || c.NotAfter.After(leaf.NotAfter) {
				if leaf != nil {
					pool = append(pool, leaf)
				}
				leaf = c
				continue
			}
		}
		pool = append(pool, c)
	}
	if leaf == nil {
		leaf = existingLeaf
	}
	if leaf == nil {
		return nil, foreignCertError(entry, certs)
	}
	a := &assembled{chain: []*x509.Certificate{leaf}}
	used := map[string]bool{Fingerprint(leaf): true}
	cur := leaf
	for !selfSigned(cur) {
		next := findIssuer(cur, pool, used)
		if next == nil {
			break
		}
		used[Fingerprint(next)] = true
		if selfSigned(next) {
			a.root = next
			a.notes = append(a.notes, fmt.Sprintf("dropped the root certificate %q: roots belong in the CA store of the peers (and, to verify peers, in this unit's CA store with 'palisade ca import'), not in the own chain", label(next)))
			break
		}
		a.chain = append(a.chain, next)
		cur = next
	}
	for _, c := range pool {
		if used[Fingerprint(c)] {
			continue
		}
		if selfSigned(c) && isCA(c) {
			a.notes = append(a.notes, fmt.Sprintf("dropped the root certificate %q: it is not part of this chain", label(c)))
			continue
		}
		a.notes = append(a.notes, fmt.Sprintf("ignored %q: it is not part of the chain of %q", label(c), label(leaf)))
	}
	return a, nil
}

// findIssuer returns the certificate in pool that issued c, if any.
func findIssuer(c *x509.Certificate, pool []*x509.Certificate, used map[string]bool) *x509.Certificate {
	for _, p := range pool {
		if used[Fingerprint(p)] {
			continue
		}
		if bytes.Equal(p.RawSubject, c.RawIssuer) && c.CheckSignatureFrom(p) == nil {
			return p
		}
	}
	return nil
}

// foreignCertError explains why none of the uploaded certificates (all CA
// certificates) belongs to the entry's key.
func foreignCertError(entry string, certs []*x509.Certificate) error {
	first := "none"
	if len(certs) > 0 {
		first = label(certs[0])
	}
	return inputErrorf("the file holds only CA certificates (%q); the certificate issued for the request %q is not in it. "+
		"Import the device certificate first; CA certificates of peers belong in the CA store ('palisade ca import')", first, entry)
}

// foreignKeyError names both keys when the device certificate c was issued
// for another key than the entry's (keyID), so that the administrator can
// see which request it was made from.
func foreignKeyError(entry, keyID string, c *x509.Certificate) error {
	certKey, err := KeyID(c.PublicKey)
	if err != nil {
		certKey = "unreadable (" + err.Error() + ")"
	}
	return inputErrorf("this certificate was not issued for the key of %q: %q has the public key SHA-256 %s, the entry's private key is SHA-256 %s "+
		"(was it made from another request, or for another unit?); nothing was changed", entry, label(c), certKey, keyID)
}

// ChainStatus tells whether a chain leads to a CA in the CA store.
type ChainStatus struct {
	Complete bool   `json:"complete"`
	Message  string `json:"message"`
}

// checkChain reports whether chain (leaf first) is complete up to a CA in
// cas, and names the gap when not. Peers verifying the unit need the
// intermediates, so a gap is worth a warning even when the peer has the root.
func checkChain(chain []*x509.Certificate, cas []*x509.Certificate, now time.Time) ChainStatus {
	if len(chain) == 0 {
		return ChainStatus{Message: "no certificate yet: the request waits for the CA-signed certificate ('palisade cert import')"}
	}
	top := chain[len(chain)-1]
	if selfSigned(top) {
		if len(chain) == 1 {
			return ChainStatus{Complete: true, Message: "self-signed: peers must hold this certificate in their CA store"}
		}
		return ChainStatus{Complete: true, Message: "complete up to the root " + fmt.Sprintf("%q", label(top))}
	}
	roots := x509.NewCertPool()
	var issuer *x509.Certificate
	for _, ca := range cas {
		roots.AddCert(ca)
		if bytes.Equal(ca.RawSubject, top.RawIssuer) && top.CheckSignatureFrom(ca) == nil {
			issuer = ca
		}
	}
	if issuer == nil && len(chain) > 1 {
		return ChainStatus{Message: fmt.Sprintf("not checked to the root: %q, the issuer of the last intermediate %q, is not in the CA store. "+
			"Peers need only the intermediates; if %q is a root, import it with 'palisade ca import' to have the chain checked", issuerLabel(top), label(top), issuerLabel(top))}
	}
	if issuer == nil {
		return ChainStatus{Message: fmt.Sprintf("incomplete: the issuer %q of %q is missing. Import the intermediate certificate into this entry ('palisade cert import NAME FILE'), "+
			"or, if it is a root, into the CA store", issuerLabel(top), label(top))}
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return ChainStatus{Message: "chain does not verify: " + err.Error()}
	}
	return ChainStatus{Complete: true, Message: fmt.Sprintf("complete up to %q in the CA store", label(issuer))}
}
