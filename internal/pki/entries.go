package pki

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/store"
)

// Certs carries out the certificate commands (SPEC §4.1 cert and ca) on a
// configuration document — the preliminary one, which the caller stores
// afterwards — and on the key material in the store. Material is written
// before the caller stores the document; when that fails, the material is
// merely unused.
type Certs struct {
	Store store.Store
	// Now is the clock (tests set it); nil means time.Now.
	Now func() time.Time
}

func (c *Certs) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// ErrUnknownEntry is matched (errors.Is) by errors about a name that the
// configuration does not list; it is store.ErrNotFound, answered 404.
var ErrUnknownEntry = store.ErrNotFound

// notFound is an error about a missing entry or material whose message is
// complete in itself and which matches store.ErrNotFound.
type notFound struct{ msg string }

func (e *notFound) Error() string        { return e.msg }
func (e *notFound) Is(target error) bool { return target == store.ErrNotFound }

func notFoundf(format string, args ...any) error {
	return &notFound{msg: fmt.Sprintf(format, args...)}
}

// NewOptions are the choices of 'palisade cert new'.
type NewOptions struct {
	Subject
	KeyType    string `json:"key,omitempty"` // ecdsa-p256 (default) | rsa-2048 | rsa-3072 | rsa-4096
	SelfSigned bool   `json:"self_signed,omitempty"`
}

// EntryInfo is what 'palisade cert show' prints about a private entry.
type EntryInfo struct {
	Name        string      `json:"name"`
	Material    string      `json:"material,omitempty"`
	State       string      `json:"state"` // "request" (waiting for the signed certificate) | "certificate"
	KeyType     string      `json:"key_type"`
	Request     Subject     `json:"request"`
	Certificate *CertInfo   `json:"certificate,omitempty"`
	Chain       []CertInfo  `json:"chain,omitempty"` // intermediates, leaf's issuer first
	ChainStatus ChainStatus `json:"chain_status"`
	UsedBy      []string    `json:"used_by,omitempty"`
	Notes       []string    `json:"notes,omitempty"`
}

func checkEntryName(name string) error {
	if strings.TrimSpace(name) == "" {
		return inputErrorf("the certificate name is empty")
	}
	if len(name) > 64 {
		return inputErrorf("the certificate name %q is longer than 64 characters", name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || r == '/' {
			return inputErrorf("the certificate name %q contains a control character or '/'", name)
		}
	}
	return nil
}

func findPrivate(cfg *config.Config, name string) int {
	for i, p := range cfg.Certificates.Private {
		if p.Name == name {
			return i
		}
	}
	return -1
}

func findCA(cfg *config.Config, name string) int {
	for i, p := range cfg.Certificates.CA {
		if p.Name == name {
			return i
		}
	}
	return -1
}

// New creates a key for the private entry name (adding the entry, or giving
// an existing one a new key) with a self-signed certificate or a pending
// certificate request.
func (c *Certs) New(ctx context.Context, cfg *config.Config, name string, o NewOptions) (*EntryInfo, error) {
	if err := checkEntryName(name); err != nil {
		return nil, err
	}
	o.CN = strings.TrimSpace(o.CN)
	if err := o.Check(); err != nil {
		return nil, err
	}
	if o.KeyType == "" {
		o.KeyType = KeyECDSAP256
	}
	key, err := GenerateKey(o.KeyType)
	if err != nil {
		return nil, err
	}
	rec := privateRecord{KeyType: o.KeyType, Subject: o.Subject, Created: c.now().UTC()}
	if o.SelfSigned {
		cert, err := CreateSelfSigned(key, o.Subject, c.now())
		if err != nil {
			return nil, err
		}
		rec.Chain = string(EncodeCertificatesPEM(cert))
	} else {
		csr, err := CreateCSR(key, o.Subject)
		if err != nil {
			return nil, err
		}
		rec.CSR = string(csr)
	}
	var id string
	err = c.Store.Update(ctx, func(tx store.Tx) error {
		var err error
		if rec.KeyID, err = putKey(ctx, tx, key); err != nil {
			return err
		}
		id, err = putPrivate(ctx, tx, name, rec)
		return err
	})
	if err != nil {
		return nil, err
	}
	entry := config.PrivateCertificate{Name: name, Material: id}
	var notes []string
	if len(rec.Chain) > 0 {
		certs, _ := ParseCertificates([]byte(rec.Chain))
		entry.Fingerprint = Fingerprint(certs[0])
	}
	if i := findPrivate(cfg, name); i >= 0 {
		notes = append(notes, fmt.Sprintf("%q gets a new key; the running configuration keeps the old one until you apply", name))
		cfg.Certificates.Private[i] = entry
	} else {
		cfg.Certificates.Private = append(cfg.Certificates.Private, entry)
	}
	info, err := c.Show(ctx, cfg, name)
	if err != nil {
		return nil, err
	}
	info.Notes = append(notes, info.Notes...)
	return info, nil
}

// CSR returns the pending certificate request of name as PEM.
func (c *Certs) CSR(ctx context.Context, cfg *config.Config, name string) ([]byte, error) {
	m, err := c.privateMaterial(ctx, cfg, name)
	if err != nil {
		return nil, err
	}
	if m.rec.CSR == "" {
		return nil, inputErrorf("%q was created with a self-signed certificate and has no certificate request; create a request with 'palisade cert new %s --cn FQDN'", name, name)
	}
	return []byte(m.rec.CSR), nil
}

func (c *Certs) privateMaterial(ctx context.Context, cfg *config.Config, name string) (*material, error) {
	i := findPrivate(cfg, name)
	if i < 0 {
		return nil, notFoundf("there is no private certificate %q", name)
	}
	return loadPrivate(ctx, c.Store, name, materialOf(cfg, cfg.Certificates.Private[i]))
}

// Import adds the CA-signed certificate and/or intermediates to the entry
// name. files are the uploaded files (PEM or DER, bundled in any order, or
// one certificate per file; Figure 21 alternatives A–C); a later call may add
// intermediates to an entry that already has its certificate. Nothing is
// stored when any file is bad or no certificate belongs to the entry's key.
func (c *Certs) Import(ctx context.Context, cfg *config.Config, name string, files [][]byte) (*EntryInfo, error) {
	if len(files) == 0 {
		return nil, inputErrorf("no file to import")
	}
	var certs []*x509.Certificate
	for i, f := range files {
		cs, err := ParseCertificates(f)
		if err != nil {
			if len(files) > 1 {
				return nil, inputErrorf("file %d: %s", i+1, err)
			}
			return nil, err
		}
		certs = append(certs, cs...)
	}
	m, err := c.privateMaterial(ctx, cfg, name)
	if err != nil {
		return nil, err
	}
	var existing []*x509.Certificate
	if len(m.chain) > 1 {
		existing = m.chain[1:]
	}
	a, err := assembleChain(name, m.rec.KeyID, m.leaf(), existing, certs)
	if err != nil {
		return nil, err
	}
	leaf := a.chain[0]
	if isCA(leaf) {
		return nil, inputErrorf("%q is a CA certificate; a CA certificate cannot be the unit's own certificate", label(leaf))
	}
	if now := c.now(); now.After(leaf.NotAfter) {
		a.notes = append(a.notes, fmt.Sprintf("warning: %q expired on %s", label(leaf), leaf.NotAfter.UTC().Format(time.RFC3339)))
	}
	rec := m.rec
	rec.Chain = string(EncodeCertificatesPEM(a.chain...))
	top := a.chain[len(a.chain)-1]
	switch {
	case a.root != nil:
		rec.Root = string(EncodeCertificatesPEM(a.root))
	case m.root != nil && findIssuer(top, []*x509.Certificate{m.root}, nil) != nil:
		// the root seen with an earlier upload still issues the chain
	default:
		rec.Root = ""
	}
	rec.Created = c.now().UTC()
	id, err := putPrivate(ctx, c.Store, name, rec)
	if err != nil {
		return nil, err
	}
	i := findPrivate(cfg, name)
	cfg.Certificates.Private[i].Material = id
	cfg.Certificates.Private[i].Fingerprint = Fingerprint(leaf)
	info, err := c.Show(ctx, cfg, name)
	if err != nil {
		return nil, err
	}
	info.Notes = append(a.notes, info.Notes...)
	return info, nil
}

// Show describes the private entry name.
func (c *Certs) Show(ctx context.Context, cfg *config.Config, name string) (*EntryInfo, error) {
	m, err := c.privateMaterial(ctx, cfg, name)
	if err != nil {
		return nil, err
	}
	now := c.now()
	info := &EntryInfo{Name: name, Material: m.id, State: "request", KeyType: m.rec.KeyType, Request: m.rec.Subject,
		UsedBy: usedBy(cfg, name)}
	if leaf := m.leaf(); leaf != nil {
		info.State = "certificate"
		ci := Describe(leaf, now)
		info.Certificate = &ci
		info.KeyType = ci.KeyType
		for _, ic := range m.chain[1:] {
			info.Chain = append(info.Chain, Describe(ic, now))
		}
	}
	cas, _ := c.caCertificates(ctx, cfg)
	info.ChainStatus = checkChain(m.chain, m.anchors(cas), now)
	if info.Certificate != nil && info.Certificate.DaysLeft <= ExpiryWarningDays {
		info.Notes = append(info.Notes, expiryText(name, info.Certificate.NotAfter, info.Certificate.DaysLeft))
	}
	return info, nil
}

// usedBy lists the configuration fields that name the private entry.
func usedBy(cfg *config.Config, name string) []string {
	var out []string
	for i, l := range cfg.SIP.Listeners {
		if l.Certificate == name {
			out = append(out, fmt.Sprintf("sip.listeners[%d] (%s %s:%d)", i, l.Interface, l.Transport, l.Port))
		}
	}
	if cfg.TLS.ClientCertificate == name {
		out = append(out, "tls.client_certificate")
	}
	if cfg.Admin.Certificate == name {
		out = append(out, "admin.certificate")
	}
	return out
}

// List describes every private entry. Entries whose material is missing are
// listed with their problem rather than failing the whole list.
func (c *Certs) List(ctx context.Context, cfg *config.Config) ([]EntryInfo, error) {
	out := make([]EntryInfo, 0, len(cfg.Certificates.Private))
	for _, p := range cfg.Certificates.Private {
		info, err := c.Show(ctx, cfg, p.Name)
		if err != nil {
			out = append(out, EntryInfo{Name: p.Name, State: "missing", Notes: []string{err.Error()}})
			continue
		}
		out = append(out, *info)
	}
	return out, nil
}

// Export returns the certificate of name (with its intermediates when chain
// is set) as PEM, or DER. DER holds one certificate, so chain with DER
// concatenates the DER encodings.
func (c *Certs) Export(ctx context.Context, cfg *config.Config, name string, der, chain bool) ([]byte, error) {
	m, err := c.privateMaterial(ctx, cfg, name)
	if err != nil {
		return nil, err
	}
	if len(m.chain) == 0 {
		return nil, inputErrorf("%q has no certificate yet (the request is pending); download the request with 'palisade cert csr %s'", name, name)
	}
	certs := m.chain[:1]
	if chain {
		certs = m.chain
	}
	return encodeCerts(certs, der), nil
}

func encodeCerts(certs []*x509.Certificate, der bool) []byte {
	if !der {
		return EncodeCertificatesPEM(certs...)
	}
	var out []byte
	for _, c := range certs {
		out = append(out, c.Raw...)
	}
	return out
}

// Delete removes the private entry name from the configuration. It refuses
// while a listener or the client settings use it. The material stays in the
// store, for the running configuration and for reverting.
func (c *Certs) Delete(cfg *config.Config, name string) error {
	i := findPrivate(cfg, name)
	if i < 0 {
		return notFoundf("there is no private certificate %q", name)
	}
	if used := usedBy(cfg, name); len(used) > 0 {
		return inputErrorf("%q is in use by %s; choose another certificate there first", name, strings.Join(used, ", "))
	}
	cfg.Certificates.Private = append(cfg.Certificates.Private[:i], cfg.Certificates.Private[i+1:]...)
	return nil
}

// CAInfo is what 'palisade ca show' prints.
type CAInfo struct {
	Name        string   `json:"name"`
	Certificate CertInfo `json:"certificate"`
	CRL         *CRLInfo `json:"crl,omitempty"`
	Trusted     bool     `json:"trusted"` // listed in tls.ca_certificates, or that list is empty
	Notes       []string `json:"notes,omitempty"`
}

// CRLInfo describes an imported CRL.
type CRLInfo struct {
	Issuer     string    `json:"issuer"`
	Number     string    `json:"number,omitempty"`
	ThisUpdate time.Time `json:"this_update"`
	NextUpdate time.Time `json:"next_update,omitzero"`
	Revoked    int       `json:"revoked"`
	SHA256     string    `json:"sha256"`
	Stale      bool      `json:"stale"` // next_update has passed
}

// ImportCA adds (or replaces) the CA entry name with the certificate in
// data (PEM or DER, one certificate). A device certificate is refused with
// the command to use instead.
func (c *Certs) ImportCA(ctx context.Context, cfg *config.Config, name string, data []byte) (*CAInfo, error) {
	if err := checkEntryName(name); err != nil {
		return nil, err
	}
	certs, err := ParseCertificates(data)
	if err != nil {
		return nil, err
	}
	if len(certs) > 1 {
		return nil, inputErrorf("the file holds %d certificates; import one CA certificate per name (the first is %q)", len(certs), label(certs[0]))
	}
	ca := certs[0]
	if err := c.checkNotOwn(ctx, cfg, ca); err != nil {
		return nil, err
	}
	if !isCA(ca) && !selfSigned(ca) {
		return nil, inputErrorf("%q is not a CA certificate but a certificate for %s issued by %q: it belongs in the private store of the unit it was made for, "+
			"and here only its issuer %q (and that one's root) is imported", label(ca), strings.Join(names(ca), ", "), issuerLabel(ca), issuerLabel(ca))
	}
	fp, err := putCA(ctx, c.Store, ca)
	if err != nil {
		return nil, err
	}
	var notes []string
	entry := config.CACertificate{Name: name, Fingerprint: fp}
	if i := findCA(cfg, name); i >= 0 {
		notes = append(notes, fmt.Sprintf("replaced the CA certificate of %q (its CRL was dropped)", name))
		cfg.Certificates.CA[i] = entry
	} else {
		cfg.Certificates.CA = append(cfg.Certificates.CA, entry)
	}
	for _, e := range cfg.Certificates.CA {
		if e.Name != name && e.Fingerprint == fp {
			notes = append(notes, fmt.Sprintf("the same certificate is also in the CA store as %q", e.Name))
		}
	}
	if now := c.now(); now.After(ca.NotAfter) {
		notes = append(notes, fmt.Sprintf("warning: %q expired on %s; certificates it issued will be refused", label(ca), ca.NotAfter.UTC().Format(time.RFC3339)))
	}
	info, err := c.ShowCA(ctx, cfg, name)
	if err != nil {
		return nil, err
	}
	info.Notes = append(notes, info.Notes...)
	return info, nil
}

// checkNotOwn refuses a "CA" that is really the certificate for one of the
// unit's own keys: the device certificate imported into the wrong store.
func (c *Certs) checkNotOwn(ctx context.Context, cfg *config.Config, cert *x509.Certificate) error {
	id, err := KeyID(cert.PublicKey)
	if err != nil {
		return nil
	}
	for _, p := range cfg.Certificates.Private {
		m, err := loadPrivate(ctx, c.Store, p.Name, materialOf(cfg, p))
		if err == nil && m.rec.KeyID == id {
			return inputErrorf("this is the unit's own certificate: it was issued for the request '%s'. "+
				"Import it with 'palisade cert import \"%s\" FILE', not into the CA store", p.Name, p.Name)
		}
	}
	return nil
}

// ImportCRL attaches the CRL in data to the CA entry name after checking
// that this CA signed it.
func (c *Certs) ImportCRL(ctx context.Context, cfg *config.Config, name string, data []byte) (*CAInfo, error) {
	i := findCA(cfg, name)
	if i < 0 {
		return nil, notFoundf("there is no CA certificate %q", name)
	}
	crl, err := ParseCRL(data)
	if err != nil {
		return nil, err
	}
	ca, err := loadCA(ctx, c.Store, name, cfg.Certificates.CA[i].Fingerprint)
	if err != nil {
		return nil, err
	}
	if err := crl.CheckSignatureFrom(ca); err != nil {
		return nil, inputErrorf("this CRL was not signed by %q (it names %q as its issuer): import it for the CA that issued it", label(ca), crl.Issuer.String())
	}
	id, err := putCRL(ctx, c.Store, crl)
	if err != nil {
		return nil, err
	}
	cfg.Certificates.CA[i].CRL = id
	return c.ShowCA(ctx, cfg, name)
}

// ShowCA describes the CA entry name.
func (c *Certs) ShowCA(ctx context.Context, cfg *config.Config, name string) (*CAInfo, error) {
	i := findCA(cfg, name)
	if i < 0 {
		return nil, notFoundf("there is no CA certificate %q", name)
	}
	e := cfg.Certificates.CA[i]
	ca, err := loadCA(ctx, c.Store, name, e.Fingerprint)
	if err != nil {
		return nil, err
	}
	now := c.now()
	info := &CAInfo{Name: name, Certificate: Describe(ca, now), Trusted: trusted(cfg, name)}
	if !info.Trusted {
		info.Notes = append(info.Notes, fmt.Sprintf("not trusted for peers: tls.ca_certificates does not list %q", name))
	}
	if e.CRL != "" {
		crl, err := loadCRL(ctx, c.Store, name, e.CRL)
		if err != nil {
			return nil, err
		}
		info.CRL = describeCRL(crl, now)
	}
	if info.Certificate.DaysLeft <= ExpiryWarningDays {
		info.Notes = append(info.Notes, expiryText(name, info.Certificate.NotAfter, info.Certificate.DaysLeft))
	}
	return info, nil
}

func describeCRL(crl *x509.RevocationList, now time.Time) *CRLInfo {
	ci := &CRLInfo{Issuer: crl.Issuer.String(), ThisUpdate: crl.ThisUpdate.UTC(), NextUpdate: crl.NextUpdate.UTC(),
		Revoked: len(crl.RevokedCertificateEntries), SHA256: sha256Hex(crl.Raw)}
	if crl.Number != nil {
		ci.Number = crl.Number.String()
	}
	ci.Stale = !crl.NextUpdate.IsZero() && now.After(crl.NextUpdate)
	return ci
}

// trusted reports whether the CA entry is used to verify peers:
// tls.ca_certificates lists it, or that list is empty (= the whole CA store).
func trusted(cfg *config.Config, name string) bool {
	if len(cfg.TLS.CACertificates) == 0 {
		return true
	}
	for _, n := range cfg.TLS.CACertificates {
		if n == name {
			return true
		}
	}
	return false
}

// ListCA describes every CA entry.
func (c *Certs) ListCA(ctx context.Context, cfg *config.Config) ([]CAInfo, error) {
	out := make([]CAInfo, 0, len(cfg.Certificates.CA))
	for _, e := range cfg.Certificates.CA {
		info, err := c.ShowCA(ctx, cfg, e.Name)
		if err != nil {
			out = append(out, CAInfo{Name: e.Name, Notes: []string{err.Error()}})
			continue
		}
		out = append(out, *info)
	}
	return out, nil
}

// ExportCA returns the CA certificate of name as PEM or DER.
func (c *Certs) ExportCA(ctx context.Context, cfg *config.Config, name string, der bool) ([]byte, error) {
	i := findCA(cfg, name)
	if i < 0 {
		return nil, notFoundf("there is no CA certificate %q", name)
	}
	ca, err := loadCA(ctx, c.Store, name, cfg.Certificates.CA[i].Fingerprint)
	if err != nil {
		return nil, err
	}
	return encodeCerts([]*x509.Certificate{ca}, der), nil
}

// DeleteCA removes the CA entry name. It refuses while tls.ca_certificates
// names it: removing the last name there would widen trust to the whole CA
// store, which must be the administrator's explicit choice.
func (c *Certs) DeleteCA(cfg *config.Config, name string) error {
	i := findCA(cfg, name)
	if i < 0 {
		return notFoundf("there is no CA certificate %q", name)
	}
	for _, n := range cfg.TLS.CACertificates {
		if n == name {
			return inputErrorf("%q is in use by tls.ca_certificates; remove it there first", name)
		}
	}
	cfg.Certificates.CA = append(cfg.Certificates.CA[:i], cfg.Certificates.CA[i+1:]...)
	return nil
}

// caCertificates loads every CA certificate the configuration lists.
func (c *Certs) caCertificates(ctx context.Context, cfg *config.Config) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	var errs []error
	for _, e := range cfg.Certificates.CA {
		ca, err := loadCA(ctx, c.Store, e.Name, e.Fingerprint)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, ca)
	}
	return out, errors.Join(errs...)
}

// CSRInfo decodes a PEM certificate request (for showing what was asked).
func CSRInfo(p []byte) (*x509.CertificateRequest, error) {
	block, _ := pem.Decode(p)
	if block == nil {
		return nil, errors.New("not a PEM certificate request")
	}
	return x509.ParseCertificateRequest(block.Bytes)
}
