package pki

import (
	"crypto/x509"
	"encoding/asn1"
)

// CAs often deliver the device certificate and its intermediates as a
// "certs-only" PKCS#7 bundle (.p7b / .p7c): a SignedData without content or
// signers whose certificates field holds the chain (RFC 2315 §9.1). Only
// that field is read.

var oidSignedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}

type pkcs7ContentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"explicit,optional,tag:0"`
}

type pkcs7SignedData struct {
	Version          int
	DigestAlgorithms asn1.RawValue
	ContentInfo      asn1.RawValue
	Certificates     asn1.RawValue `asn1:"optional,tag:0"`
	CRLs             asn1.RawValue `asn1:"optional,tag:1"`
	SignerInfos      asn1.RawValue
}

// parsePKCS7 returns the certificates of a certs-only PKCS#7 bundle in DER,
// and false when der is not one.
func parsePKCS7(der []byte) ([]*x509.Certificate, bool) {
	var ci pkcs7ContentInfo
	rest, err := asn1.Unmarshal(der, &ci)
	if err != nil || len(rest) > 0 || !ci.ContentType.Equal(oidSignedData) {
		return nil, false
	}
	var sd pkcs7SignedData
	if _, err := asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil || len(sd.Certificates.Bytes) == 0 {
		return nil, false
	}
	certs, err := x509.ParseCertificates(sd.Certificates.Bytes)
	if err != nil || len(certs) == 0 {
		return nil, false
	}
	return certs, true
}
