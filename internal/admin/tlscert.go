package admin

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"

	"github.com/palisade-sbc/palisade/internal/store"
)

// tlsKey is where the admin listener's generated certificate lives, so that
// it stays the same across restarts (clients may pin it with --ca).
const tlsKey = "admin/tls"

// Validity of the generated certificate. Browsers and testssl refuse or flag
// server certificates valid for more than 398 days (CA/Browser Forum
// baseline since September 2020), so the unit stays one day under that and
// makes a new one at start-up when less than renewBefore is left: a unit
// restarted at least once a month never serves an expired certificate.
const (
	certValidity = 397 * 24 * time.Hour
	renewBefore  = 30 * 24 * time.Hour
)

type storedCert struct {
	CertPEM string `json:"cert_pem"`
	KeyPEM  string `json:"key_pem"`
}

// LoadOrCreateCertificate returns the admin listener's certificate from the
// store, generating a self-signed one (ECDSA P-256, SANs 127.0.0.1, ::1,
// localhost, valid 397 days) when there is none, when less than 30 days are
// left, or when the stored one is valid longer than 397 days (made by an
// older version). The PKI package may later hand the listener a certificate
// of its own with Server.SetCertificate.
func LoadOrCreateCertificate(ctx context.Context, st store.Store) (tls.Certificate, []byte, error) {
	return loadOrCreateCertificate(ctx, st, time.Now())
}

func loadOrCreateCertificate(ctx context.Context, st store.Store, now time.Time) (tls.Certificate, []byte, error) {
	b, err := st.Get(ctx, tlsKey)
	if err == nil {
		var sc storedCert
		if err := json.Unmarshal(b, &sc); err == nil {
			c, err := tls.X509KeyPair([]byte(sc.CertPEM), []byte(sc.KeyPEM))
			if err == nil && c.Leaf != nil && usable(c.Leaf, now) {
				return c, []byte(sc.CertPEM), nil
			}
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return tls.Certificate{}, nil, fmt.Errorf("read admin certificate: %w", err)
	}
	certPEM, keyPEM, err := selfSignedAt("palisade admin", []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, now, certValidity)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	sc, _ := json.Marshal(storedCert{CertPEM: string(certPEM), KeyPEM: string(keyPEM)})
	if err := st.Put(ctx, tlsKey, sc); err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("store admin certificate: %w", err)
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	return c, certPEM, err
}

// usable reports whether a stored generated certificate may be served on:
// not about to expire and not valid longer than certValidity.
func usable(c *x509.Certificate, now time.Time) bool {
	return now.Before(c.NotAfter.Add(-renewBefore)) && c.NotAfter.Sub(c.NotBefore) <= certValidity
}

// selfSigned makes an ECDSA P-256 self-signed server certificate valid from
// now on.
func selfSigned(cn string, names []string, ips []net.IP) (certPEM, keyPEM []byte, err error) {
	return selfSignedAt(cn, names, ips, time.Now(), certValidity)
}

// selfSignedAt makes the certificate as if the time were now. The validity
// starts an hour early (clients with a clock slightly behind) and the whole
// period, that hour included, is validity.
func selfSignedAt(cn string, names []string, ips []net.IP, now time.Time, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate admin key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Palisade"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(-time.Hour).Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // lets clients trust it directly as its own root (--ca)
		DNSNames:              names,
		IPAddresses:           ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create admin certificate: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), nil
}
