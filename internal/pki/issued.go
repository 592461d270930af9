package pki

import (
	"context"
	"crypto"
	"crypto/x509"
	"fmt"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/store"
)

// materialOf is the material an entry uses: the one it names, or the newest
// stored under its name when ACME manages it (renewals store new material
// without changing the configuration).
func materialOf(cfg *config.Config, p config.PrivateCertificate) string {
	if cfg.ACMEManages(p.Name) {
		return ""
	}
	return p.Material
}

// NewestChain returns the chain of the newest material stored under name
// (nil when the newest is a pending request), or an error matching
// store.ErrNotFound when there is none.
func NewestChain(ctx context.Context, r store.Reader, name string) ([]*x509.Certificate, error) {
	m, err := loadPrivate(ctx, r, name, "")
	if err != nil {
		return nil, err
	}
	return m.chain, nil
}

// EnsureSelfSigned gives the entry name a self-signed certificate for cn
// and sans when nothing is stored under it yet, so that listeners that use
// it work before a CA has issued the real one.
func EnsureSelfSigned(ctx context.Context, st store.Store, name string, cn string, sans []string) error {
	if _, err := loadPrivate(ctx, st, name, ""); err == nil {
		return nil
	}
	scratch := config.Default()
	_, err := (&Certs{Store: st}).New(ctx, scratch, name, NewOptions{Subject: Subject{CN: cn, SANs: sans}, SelfSigned: true})
	return err
}

// PutIssued stores a certificate a CA issued for the entry name, with the
// key it was requested with, as the entry's newest material (the older
// versions stay in the store). It refuses a chain whose leaf is not for
// key or does not cover every one of names.
func (c *Certs) PutIssued(ctx context.Context, name string, key crypto.Signer, keyType string, chainPEM []byte, names []string) (*x509.Certificate, string, error) {
	certs, err := ParseCertificates(chainPEM)
	if err != nil {
		return nil, "", fmt.Errorf("the issued certificate: %w", err)
	}
	leaf := certs[0]
	pub, ok := leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(key.Public()) {
		return nil, "", fmt.Errorf("the issued certificate %q is not for the key that was sent", label(leaf))
	}
	if isCA(leaf) {
		return nil, "", fmt.Errorf("the issued certificate %q is a CA certificate", label(leaf))
	}
	for _, n := range names {
		if err := leaf.VerifyHostname(n); err != nil {
			return nil, "", fmt.Errorf("the issued certificate %q is not for %s (it names %v)", label(leaf), n, leaf.DNSNames)
		}
	}
	if now := c.now(); now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		return nil, "", fmt.Errorf("the issued certificate %q is not valid now (%s to %s)", label(leaf), leaf.NotBefore, leaf.NotAfter)
	}
	// A root sent along is never served to peers.
	if n := len(certs); n > 1 && isCA(certs[n-1]) && certs[n-1].CheckSignatureFrom(certs[n-1]) == nil {
		certs = certs[:n-1]
	}
	rec := privateRecord{KeyType: keyType, Subject: Subject{CN: names[0], SANs: names}, Chain: string(EncodeCertificatesPEM(certs...)),
		Created: c.now().UTC()}
	var id string
	err = c.Store.Update(ctx, func(tx store.Tx) error {
		var err error
		if rec.KeyID, err = putKey(ctx, tx, key); err != nil {
			return err
		}
		id, err = putPrivate(ctx, tx, name, rec)
		return err
	})
	return leaf, id, err
}
