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

type storedCert struct {
	CertPEM string `json:"cert_pem"`
	KeyPEM  string `json:"key_pem"`
}

// LoadOrCreateCertificate returns the admin listener's certificate from the
// store, generating a self-signed one (ECDSA P-256, SANs 127.0.0.1, ::1,
// localhost) when there is none or it has expired. The PKI package may
// later hand the listener a certificate of its own with Server.SetCertificate.
func LoadOrCreateCertificate(ctx context.Context, st store.Store) (tls.Certificate, []byte, error) {
	b, err := st.Get(ctx, tlsKey)
	if err == nil {
		var sc storedCert
		if err := json.Unmarshal(b, &sc); err == nil {
			c, err := tls.X509KeyPair([]byte(sc.CertPEM), []byte(sc.KeyPEM))
			if err == nil && c.Leaf != nil && time.Now().Before(c.Leaf.NotAfter.Add(-24*time.Hour)) {
				return c, []byte(sc.CertPEM), nil
			}
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return tls.Certificate{}, nil, fmt.Errorf("read admin certificate: %w", err)
	}
	certPEM, keyPEM, err := selfSigned("palisade admin", []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback})
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

// selfSigned makes an ECDSA P-256 self-signed server certificate.
func selfSigned(cn string, names []string, ips []net.IP) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate admin key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Palisade"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(5, 0, 0),
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
