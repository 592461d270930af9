package pki

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"strings"
	"time"
)

// Subject is what an administrator fills in for a new key: the unit's FQDN
// as CN (required) and the optional distinguished-name parts and extra
// subjectAltNames. The CN is always also a SAN.
type Subject struct {
	CN    string   `json:"cn"`
	C     string   `json:"c,omitempty"`
	ST    string   `json:"st,omitempty"`
	L     string   `json:"l,omitempty"`
	O     string   `json:"o,omitempty"`
	OU    string   `json:"ou,omitempty"`
	Email string   `json:"email,omitempty"`
	SANs  []string `json:"sans,omitempty"`
}

var (
	oidEmailAddress = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}
	oidExtKeyUsage  = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidServerAuth   = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 1}
	oidClientAuth   = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 2}
)

// Check validates the subject: CN present and a host name, C two letters,
// SANs host names or IP addresses.
func (s Subject) Check() error {
	cn := strings.TrimSpace(s.CN)
	if cn == "" {
		return inputErrorf("the common name (CN) is required: enter the unit's FQDN, e.g. sbc.example.com")
	}
	if !isHostName(cn) {
		return inputErrorf("the common name %q is not a fully qualified domain name (letters, digits, '-' and '.' only)", s.CN)
	}
	if s.C != "" && (len(s.C) != 2 || strings.ToUpper(s.C) != s.C || !isAlpha(s.C)) {
		return inputErrorf("the country code %q must be two capital letters (ISO 3166), e.g. US, GB, SE", s.C)
	}
	if s.Email != "" && !strings.Contains(s.Email, "@") {
		return inputErrorf("the e-mail address %q has no '@'", s.Email)
	}
	for _, san := range s.SANs {
		if net.ParseIP(san) == nil && !isHostName(strings.TrimPrefix(san, "*.")) {
			return inputErrorf("the subjectAltName %q is neither a host name nor an IP address", san)
		}
	}
	return nil
}

func isAlpha(s string) bool {
	for _, r := range s {
		if (r < 'A' || r > 'Z') && (r < 'a' || r > 'z') {
			return false
		}
	}
	return true
}

// isHostName accepts DNS names of letters, digits and hyphens in labels of at
// most 63 characters.
func isHostName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

func (s Subject) name() pkix.Name {
	n := pkix.Name{CommonName: strings.TrimSpace(s.CN)}
	if s.C != "" {
		n.Country = []string{s.C}
	}
	if s.ST != "" {
		n.Province = []string{s.ST}
	}
	if s.L != "" {
		n.Locality = []string{s.L}
	}
	if s.O != "" {
		n.Organization = []string{s.O}
	}
	if s.OU != "" {
		n.OrganizationalUnit = []string{s.OU}
	}
	if s.Email != "" {
		n.ExtraNames = append(n.ExtraNames, pkix.AttributeTypeAndValue{Type: oidEmailAddress, Value: s.Email})
	}
	return n
}

// altNames returns the DNS and IP SANs: the CN first, then the extra SANs,
// without duplicates.
func (s Subject) altNames() ([]string, []net.IP) {
	var dns []string
	var ips []net.IP
	seen := map[string]bool{}
	for _, n := range append([]string{strings.TrimSpace(s.CN)}, s.SANs...) {
		n = strings.TrimSpace(n)
		if n == "" || seen[strings.ToLower(n)] {
			continue
		}
		seen[strings.ToLower(n)] = true
		if ip := net.ParseIP(n); ip != nil {
			ips = append(ips, ip)
		} else {
			dns = append(dns, n)
		}
	}
	return dns, ips
}

// keyUsage is what a TLS key of this kind needs: RSA keys also encipher
// (TLS 1.2 RSA key exchange), ECDSA keys only sign.
func keyUsage(pub crypto.PublicKey) x509.KeyUsage {
	ku := x509.KeyUsageDigitalSignature
	if _, ok := pub.(*rsa.PublicKey); ok {
		ku |= x509.KeyUsageKeyEncipherment
	}
	return ku
}

// CreateCSR makes a PEM certificate request for key. It asks for both
// serverAuth and clientAuth usage through the extension request, because the
// unit is a TLS server for incoming and a TLS client for outgoing SIP.
func CreateCSR(key crypto.Signer, s Subject) ([]byte, error) {
	if err := s.Check(); err != nil {
		return nil, err
	}
	eku, err := asn1.Marshal([]asn1.ObjectIdentifier{oidServerAuth, oidClientAuth})
	if err != nil {
		return nil, err
	}
	ku, err := marshalKeyUsage(keyUsage(key.Public()))
	if err != nil {
		return nil, err
	}
	dns, ips := s.altNames()
	tmpl := &x509.CertificateRequest{
		Subject:     s.name(),
		DNSNames:    dns,
		IPAddresses: ips,
		ExtraExtensions: []pkix.Extension{
			{Id: asn1.ObjectIdentifier{2, 5, 29, 15}, Critical: true, Value: ku},
			{Id: oidExtKeyUsage, Value: eku},
		},
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, fmt.Errorf("create certificate request: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

// marshalKeyUsage encodes the keyUsage extension value (a BIT STRING whose
// bit 0 is the most significant bit of the first byte).
func marshalKeyUsage(ku x509.KeyUsage) ([]byte, error) {
	var b [2]byte
	n := 0
	for i := 0; i < 9; i++ {
		if ku&(1<<uint(i)) != 0 {
			b[i/8] |= 0x80 >> uint(i%8)
			n = i + 1
		}
	}
	l := (n + 7) / 8
	return asn1.Marshal(asn1.BitString{Bytes: b[:l], BitLength: n})
}

// SelfSignedValidity is how long a generated self-signed certificate lasts:
// 397 days, under the 398 that browsers and testssl accept for server
// certificates (such a certificate may serve the admin listener too).
const SelfSignedValidity = 397 * 24 * time.Hour

// CreateSelfSigned makes a self-signed certificate for key with the subject's
// names, valid for server and client authentication.
func CreateSelfSigned(key crypto.Signer, s Subject, now time.Time) (*x509.Certificate, error) {
	if err := s.Check(); err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	dns, ips := s.altNames()
	var emails []string
	if s.Email != "" {
		emails = []string{s.Email}
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               s.name(),
		NotBefore:             now.Add(-time.Hour).UTC(),
		NotAfter:              now.Add(SelfSignedValidity).UTC(),
		DNSNames:              dns,
		IPAddresses:           ips,
		EmailAddresses:        emails,
		KeyUsage:              keyUsage(key.Public()),
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create self-signed certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}
