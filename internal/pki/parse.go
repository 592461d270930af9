package pki

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// MaxUpload bounds one uploaded file (certificate, bundle or CRL). Real
// certificate bundles are a few kilobytes; CRLs of large public CAs stay well
// under a megabyte.
const MaxUpload = 1 << 20

// InputError is a problem with uploaded material: the message names the
// problem in words an administrator can act on. Nothing was stored.
type InputError struct{ Msg string }

func (e *InputError) Error() string { return e.Msg }

func inputErrorf(format string, args ...any) error {
	return &InputError{Msg: fmt.Sprintf(format, args...)}
}

// IsInputError reports whether err is about the uploaded material itself
// (answered 400 by the API).
func IsInputError(err error) bool {
	var ie *InputError
	return errors.As(err, &ie)
}

// ParseCertificates reads one uploaded file holding certificates: PEM with
// one or more CERTIFICATE blocks (text around them is ignored, as in bundles
// saved from a browser), DER (one certificate, or several concatenated), or
// a certs-only PKCS#7 bundle (.p7b, PEM or DER).
// Anything else is refused with a clear error.
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	if len(data) > MaxUpload {
		return nil, inputErrorf("the file is %d bytes; certificate files larger than %d bytes are refused", len(data), MaxUpload)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, inputErrorf("the file is empty")
	}
	if looksPEM(data) {
		return parsePEMCertificates(data)
	}
	certs, err := x509.ParseCertificates(data)
	if err != nil {
		if p7, ok := parsePKCS7(data); ok {
			return p7, nil
		}
		if truncatedDER(data) {
			return nil, inputErrorf("the DER certificate is cut off: the data ends before the certificate does (%d bytes)", len(data))
		}
		return nil, inputErrorf("the file is neither PEM nor a DER certificate (%s)", derProblem(err))
	}
	if len(certs) == 0 {
		return nil, inputErrorf("the file holds no certificate")
	}
	return certs, nil
}

func looksPEM(data []byte) bool {
	return bytes.Contains(data, []byte("-----BEGIN "))
}

func parsePEMCertificates(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		switch {
		case block.Type == "CERTIFICATE" || block.Type == "X509 CERTIFICATE" || block.Type == "TRUSTED CERTIFICATE":
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, inputErrorf("certificate %d in the file is damaged (%s)", len(certs)+1, derProblem(err))
			}
			certs = append(certs, c)
		case strings.Contains(block.Type, "PRIVATE KEY"):
			return nil, inputErrorf("the file holds a private key (%s), not a certificate; a private key is never uploaded — import the certificate file instead", block.Type)
		case block.Type == "CERTIFICATE REQUEST" || block.Type == "NEW CERTIFICATE REQUEST":
			return nil, inputErrorf("the file holds a certificate request (CSR), not a certificate; send the request to the CA and import the certificate it returns")
		case block.Type == "X509 CRL":
			return nil, inputErrorf("the file holds a CRL, not a certificate; import it with 'palisade ca crl'")
		case block.Type == "PKCS7" || block.Type == "CERTIFICATE CHAIN":
			p7, ok := parsePKCS7(block.Bytes)
			if !ok {
				return nil, inputErrorf("the file holds a PKCS#7 block without readable certificates")
			}
			certs = append(certs, p7...)
		default:
			return nil, inputErrorf("the file holds a PEM block of type %q, not a certificate", block.Type)
		}
	}
	if len(certs) == 0 {
		return nil, inputErrorf("the file has a PEM header but no readable certificate (the PEM text may be cut off)")
	}
	return certs, nil
}

// derProblem says what is wrong with DER bytes in words, without the
// internal ASN.1 detail that means nothing to an administrator.
func derProblem(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "truncated") || strings.Contains(msg, "data truncated"):
		return "it is cut off: the data ends before the certificate does"
	case strings.Contains(msg, "trailing data"):
		return "it has extra bytes after the certificate"
	case strings.Contains(msg, "structure error"), strings.Contains(msg, "malformed"):
		return "it is not a valid X.509 structure"
	}
	return msg
}

// truncatedDER reports whether data starts like a DER SEQUENCE whose
// declared length runs past the end of data.
func truncatedDER(data []byte) bool {
	if len(data) < 2 || data[0] != 0x30 {
		return false
	}
	n := int(data[1])
	hdr := 2
	if n&0x80 != 0 {
		k := n & 0x7f
		if k == 0 || k > 4 || len(data) < 2+k {
			return false
		}
		n = 0
		for _, b := range data[2 : 2+k] {
			n = n<<8 | int(b)
		}
		hdr += k
	}
	return hdr+n > len(data)
}

// ParseCRL reads a CRL in PEM or DER.
func ParseCRL(data []byte) (*x509.RevocationList, error) {
	if len(data) > MaxUpload {
		return nil, inputErrorf("the file is %d bytes; CRL files larger than %d bytes are refused", len(data), MaxUpload)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, inputErrorf("the file is empty")
	}
	der := data
	if looksPEM(data) {
		block, _ := pem.Decode(data)
		if block == nil {
			return nil, inputErrorf("the file has a PEM header but no readable CRL (the PEM text may be cut off)")
		}
		switch {
		case block.Type == "X509 CRL":
			der = block.Bytes
		case strings.Contains(block.Type, "PRIVATE KEY"):
			return nil, inputErrorf("the file holds a private key, not a CRL")
		case block.Type == "CERTIFICATE":
			return nil, inputErrorf("the file holds a certificate, not a CRL; import CA certificates with 'palisade ca import'")
		default:
			return nil, inputErrorf("the file holds a PEM block of type %q, not a CRL (X509 CRL)", block.Type)
		}
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		if truncatedDER(der) {
			return nil, inputErrorf("the CRL is cut off: the data ends before the CRL does")
		}
		return nil, inputErrorf("the file is not a readable CRL (%s)", derProblem(err))
	}
	return crl, nil
}

// EncodeCertificatesPEM returns certs as concatenated PEM blocks.
func EncodeCertificatesPEM(certs ...*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.Bytes()
}
