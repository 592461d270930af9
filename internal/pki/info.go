package pki

import (
	"bytes"
	"crypto/md5" //nolint:gosec // MD5 is shown as a fingerprint only (the seed's appliances show it), never used for trust.
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"math"
	"regexp"
	"strings"
	"time"
)

// Fingerprints of a certificate's DER encoding, as colon-separated upper-case
// hex (the way appliances and browsers show them).
type Fingerprints struct {
	MD5    string `json:"md5"`
	SHA1   string `json:"sha1"`
	SHA256 string `json:"sha256"`
}

// CertInfo is everything "show" tells about one certificate.
type CertInfo struct {
	Subject      string       `json:"subject"`
	Issuer       string       `json:"issuer"`
	Serial       string       `json:"serial"`
	NotBefore    time.Time    `json:"not_before"`
	NotAfter     time.Time    `json:"not_after"`
	DaysLeft     int          `json:"days_left"`
	SANs         []string     `json:"sans,omitempty"`
	KeyType      string       `json:"key_type"`
	KeyUsage     []string     `json:"key_usage,omitempty"`
	ExtKeyUsage  []string     `json:"ext_key_usage,omitempty"`
	IsCA         bool         `json:"is_ca"`
	SelfSigned   bool         `json:"self_signed"`
	Fingerprints Fingerprints `json:"fingerprints"`
}

// colonHex formats b as "AB:CD:...".
func colonHex(b []byte) string {
	h := strings.ToUpper(hex.EncodeToString(b))
	var s strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			s.WriteByte(':')
		}
		s.WriteString(h[i : i+2])
	}
	return s.String()
}

// Fingerprint is the SHA-256 of the certificate in lower-case hex without
// separators: the form the configuration uses to name exact material.
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// FingerprintsOf returns the MD5, SHA-1 and SHA-256 fingerprints of c.
func FingerprintsOf(c *x509.Certificate) Fingerprints {
	m := md5.Sum(c.Raw) //nolint:gosec
	s1 := sha1.Sum(c.Raw)
	s256 := sha256.Sum256(c.Raw)
	return Fingerprints{MD5: colonHex(m[:]), SHA1: colonHex(s1[:]), SHA256: colonHex(s256[:])}
}

// selfSigned reports whether c is issued by itself and its signature checks
// with its own key (a root, or a self-signed end-entity certificate).
func selfSigned(c *x509.Certificate) bool {
	// CheckSignatureFrom would refuse a self-signed end-entity certificate
	// (not a CA), so the signature is checked directly.
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

var emailAttrRE = regexp.MustCompile(`1\.2\.840\.113549\.1\.9\.1=#[0-9a-f]+`)

// dn formats a distinguished name like pkix.Name.String, but shows the
// e-mail attribute as emailAddress=... instead of its hex encoding.
func dn(n pkix.Name) string {
	s := n.String()
	for _, atv := range n.Names {
		if v, ok := atv.Value.(string); ok && atv.Type.Equal(oidEmailAddress) {
			s = strings.Replace(s, emailAttrRE.FindString(s), "emailAddress="+v, 1)
		}
	}
	return s
}

// isCA reports whether c may issue certificates.
func isCA(c *x509.Certificate) bool {
	return c.BasicConstraintsValid && c.IsCA
}

// daysLeft is the whole days until notAfter (negative when expired).
func daysLeft(notAfter, now time.Time) int {
	return int(math.Floor(notAfter.Sub(now).Hours() / 24))
}

// Describe returns the CertInfo of c at time now.
func Describe(c *x509.Certificate, now time.Time) CertInfo {
	info := CertInfo{
		Subject:      dn(c.Subject),
		Issuer:       dn(c.Issuer),
		Serial:       colonHex(c.SerialNumber.Bytes()),
		NotBefore:    c.NotBefore.UTC(),
		NotAfter:     c.NotAfter.UTC(),
		DaysLeft:     daysLeft(c.NotAfter, now),
		KeyType:      KeyDescription(c.PublicKey),
		KeyUsage:     keyUsageNames(c.KeyUsage),
		ExtKeyUsage:  extKeyUsageNames(c),
		IsCA:         isCA(c),
		SelfSigned:   selfSigned(c),
		Fingerprints: FingerprintsOf(c),
	}
	info.SANs = append(info.SANs, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		info.SANs = append(info.SANs, ip.String())
	}
	for _, u := range c.URIs {
		info.SANs = append(info.SANs, u.String())
	}
	for _, e := range c.EmailAddresses {
		info.SANs = append(info.SANs, "email:"+e)
	}
	return info
}

func keyUsageNames(ku x509.KeyUsage) []string {
	names := []string{"digitalSignature", "contentCommitment", "keyEncipherment", "dataEncipherment",
		"keyAgreement", "keyCertSign", "cRLSign", "encipherOnly", "decipherOnly"}
	var out []string
	for i, n := range names {
		if ku&(1<<uint(i)) != 0 {
			out = append(out, n)
		}
	}
	return out
}

var ekuNames = map[x509.ExtKeyUsage]string{
	x509.ExtKeyUsageAny:             "any",
	x509.ExtKeyUsageServerAuth:      "serverAuth",
	x509.ExtKeyUsageClientAuth:      "clientAuth",
	x509.ExtKeyUsageCodeSigning:     "codeSigning",
	x509.ExtKeyUsageEmailProtection: "emailProtection",
	x509.ExtKeyUsageTimeStamping:    "timeStamping",
	x509.ExtKeyUsageOCSPSigning:     "OCSPSigning",
	x509.ExtKeyUsageIPSECUser:       "ipsecUser",
}

func extKeyUsageNames(c *x509.Certificate) []string {
	var out []string
	for _, u := range c.ExtKeyUsage {
		if n, ok := ekuNames[u]; ok {
			out = append(out, n)
		} else {
			out = append(out, "unknown")
		}
	}
	for _, oid := range c.UnknownExtKeyUsage {
		out = append(out, oid.String())
	}
	return out
}

// names lists the identities a certificate speaks for (SANs, or the CN when
// it has no DNS SAN), for messages.
func names(c *x509.Certificate) []string {
	out := append([]string(nil), c.DNSNames...)
	for _, ip := range c.IPAddresses {
		out = append(out, ip.String())
	}
	if len(c.DNSNames) == 0 && c.Subject.CommonName != "" {
		out = append(out, c.Subject.CommonName)
	}
	return out
}

// label names a certificate briefly in messages: its CN, or its whole subject.
func label(c *x509.Certificate) string {
	if c.Subject.CommonName != "" {
		return c.Subject.CommonName
	}
	return c.Subject.String()
}

// issuerLabel is the issuer's CN, or the whole issuer name.
func issuerLabel(c *x509.Certificate) string {
	if c.Issuer.CommonName != "" {
		return c.Issuer.CommonName
	}
	return c.Issuer.String()
}
