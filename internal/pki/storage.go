package pki

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/palisade-sbc/palisade/internal/store"
)

// Store layout (all under pki/, see also internal/store):
//
//	pki/keys/<key-id>            private key, PKCS#8 PEM; key-id = hex SHA-256 of the public key (SPKI)
//	pki/private/<material-id>    one version of a private entry (JSON privateRecord): key id,
//	                             request subject, CSR, certificate chain; material-id = hex SHA-256
//	                             of the record, so a record is never overwritten in place
//	pki/private-by-name/<name>   material-id of the newest version of a private entry
//	                             (used when a configuration entry names no material)
//	pki/ca/<fingerprint>         CA certificate, PEM; fingerprint = hex SHA-256 of its DER
//	pki/crl/<sha256>             CRL, PEM; sha256 = hex SHA-256 of its DER
//
// The configuration ties an entry to exact material:
// certificates.private[].material (and .fingerprint, the leaf's SHA-256),
// certificates.ca[].fingerprint and certificates.ca[].crl. The preliminary and
// the running configuration may therefore name different material of the same
// entry at the same time; applying or reverting just switches which records
// are loaded.
const (
	prefixKeys       = "pki/keys/"
	prefixPrivate    = "pki/private/"
	prefixPrivByName = "pki/private-by-name/"
	prefixCA         = "pki/ca/"
	prefixCRL        = "pki/crl/"
)

// privateRecord is one version of a private entry.
type privateRecord struct {
	KeyID   string  `json:"key_id"`
	KeyType string  `json:"key_type"`
	Subject Subject `json:"subject"`
	CSR     string  `json:"csr,omitempty"`   // PEM, when made as a request
	Chain   string  `json:"chain,omitempty"` // PEM, leaf first; empty while the request is pending
	// Root is the root that issued the chain's last certificate when an
	// upload held it: never sent to peers, but it lets the chain be checked.
	Root    string    `json:"root,omitempty"`
	Created time.Time `json:"created"`
}

// material is a loaded private record.
type material struct {
	id    string
	rec   privateRecord
	chain []*x509.Certificate
	root  *x509.Certificate // rec.Root, parsed
}

// anchors are the CA store certificates plus the entry's own root, for
// checking its chain.
func (m *material) anchors(cas []*x509.Certificate) []*x509.Certificate {
	if m.root == nil {
		return cas
	}
	return append(append([]*x509.Certificate(nil), cas...), m.root)
}

func (m *material) leaf() *x509.Certificate {
	if len(m.chain) == 0 {
		return nil
	}
	return m.chain[0]
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func putKey(ctx context.Context, tx store.Writer, key crypto.Signer) (string, error) {
	id, err := KeyID(key.Public())
	if err != nil {
		return "", err
	}
	p, err := MarshalKeyPEM(key)
	if err != nil {
		return "", err
	}
	if err := tx.Put(ctx, prefixKeys+id, p); err != nil {
		return "", fmt.Errorf("store private key: %w", err)
	}
	return id, nil
}

func loadKey(ctx context.Context, r store.Reader, id string) (crypto.Signer, error) {
	p, err := r.Get(ctx, prefixKeys+id)
	if err != nil {
		return nil, fmt.Errorf("private key %s: %w", shortID(id), err)
	}
	return ParseKeyPEM(p)
}

// putPrivate stores rec as a new material record and points the name index
// at it; it returns the material id.
func putPrivate(ctx context.Context, tx store.Writer, name string, rec privateRecord) (string, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return "", err
	}
	id := sha256Hex(b)
	if err := tx.Put(ctx, prefixPrivate+id, b); err != nil {
		return "", fmt.Errorf("store certificate %q: %w", name, err)
	}
	if err := tx.Put(ctx, prefixPrivByName+url.PathEscape(name), []byte(id)); err != nil {
		return "", fmt.Errorf("store certificate %q: %w", name, err)
	}
	return id, nil
}

// loadPrivate reads material by id, or, when id is empty, the newest
// material stored under name.
func loadPrivate(ctx context.Context, r store.Reader, name, id string) (*material, error) {
	if id == "" {
		b, err := r.Get(ctx, prefixPrivByName+url.PathEscape(name))
		if errors.Is(err, store.ErrNotFound) {
			return nil, notFoundf("certificate %q has no key material in the store (create it with 'palisade cert new')", name)
		}
		if err != nil {
			return nil, err
		}
		id = string(b)
	}
	b, err := r.Get(ctx, prefixPrivate+id)
	if err != nil {
		return nil, fmt.Errorf("certificate %q: material %s: %w", name, shortID(id), err)
	}
	m := &material{id: id}
	defer func() {
		if m != nil && m.rec.Root != "" {
			if rs, err := ParseCertificates([]byte(m.rec.Root)); err == nil {
				m.root = rs[0]
			}
		}
	}()
	if err := json.Unmarshal(b, &m.rec); err != nil {
		return nil, fmt.Errorf("certificate %q: stored record is damaged: %w", name, err)
	}
	if m.rec.Chain != "" {
		m.chain, err = ParseCertificates([]byte(m.rec.Chain))
		if err != nil {
			return nil, fmt.Errorf("certificate %q: stored chain is damaged: %w", name, err)
		}
	}
	return m, nil
}

func putCA(ctx context.Context, tx store.Writer, c *x509.Certificate) (string, error) {
	fp := Fingerprint(c)
	if err := tx.Put(ctx, prefixCA+fp, EncodeCertificatesPEM(c)); err != nil {
		return "", fmt.Errorf("store CA certificate: %w", err)
	}
	return fp, nil
}

func loadCA(ctx context.Context, r store.Reader, name, fp string) (*x509.Certificate, error) {
	b, err := r.Get(ctx, prefixCA+fp)
	if err != nil {
		return nil, fmt.Errorf("CA certificate %q (%s): %w", name, shortID(fp), err)
	}
	certs, err := ParseCertificates(b)
	if err != nil {
		return nil, fmt.Errorf("CA certificate %q: stored certificate is damaged: %w", name, err)
	}
	return certs[0], nil
}

func putCRL(ctx context.Context, tx store.Writer, crl *x509.RevocationList) (string, error) {
	id := sha256Hex(crl.Raw)
	p := pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crl.Raw})
	if err := tx.Put(ctx, prefixCRL+id, p); err != nil {
		return "", fmt.Errorf("store CRL: %w", err)
	}
	return id, nil
}

func loadCRL(ctx context.Context, r store.Reader, name, id string) (*x509.RevocationList, error) {
	b, err := r.Get(ctx, prefixCRL+id)
	if err != nil {
		return nil, fmt.Errorf("CRL of %q (%s): %w", name, shortID(id), err)
	}
	return ParseCRL(b)
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
