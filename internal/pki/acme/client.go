package acme

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/certificate"
	"github.com/go-acme/lego/v5/challenge"
	"github.com/go-acme/lego/v5/challenge/http01"
	"github.com/go-acme/lego/v5/challenge/tlsalpn01"
	"github.com/go-acme/lego/v5/lego"
	"github.com/go-acme/lego/v5/providers/dns/cloudflare"
	"github.com/go-acme/lego/v5/providers/dns/digitalocean"
	"github.com/go-acme/lego/v5/providers/dns/exec"
	"github.com/go-acme/lego/v5/providers/dns/hetzner"
	"github.com/go-acme/lego/v5/providers/dns/httpreq"
	"github.com/go-acme/lego/v5/providers/dns/pdns"
	"github.com/go-acme/lego/v5/registration"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/pki"
	"github.com/palisade-sbc/palisade/internal/store"
)

// prefixAccount holds one ACME account per directory and contact:
// acme/accounts/<hex SHA-256 of directory URL and e-mail> → JSON account.
const prefixAccount = "acme/accounts/"

// requestTimeout bounds one attempt (every request and challenge of it).
const requestTimeout = 5 * time.Minute

type account struct {
	Key   string `json:"key"` // PKCS#8 PEM
	URI   string `json:"uri"` // the account's URL at the CA
	Email string `json:"email,omitempty"`

	signer crypto.Signer
	reg    *acme.ExtendedAccount
}

func (a *account) GetEmail() string                       { return a.Email }
func (a *account) GetRegistration() *acme.ExtendedAccount { return a.reg }
func (a *account) GetPrivateKey() crypto.Signer           { return a.signer }
func accountKey(a config.ACME) string {
	sum := sha256.Sum256([]byte(a.DirectoryURL + "\n" + a.Email))
	return prefixAccount + hex.EncodeToString(sum[:])
}

// obtain gets a certificate for c from the CA and puts it in use.
func (m *Manager) obtain(ctx context.Context, cfg *config.Config, c config.ACMECertificate) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	m.mu.Lock()
	m.state[c.Name].LastAttempt = m.now()
	m.mu.Unlock()
	client, err := m.client(ctx, cfg)
	if err != nil {
		return err
	}
	key, err := pki.GenerateKey(cfg.ACME.KeyType)
	if err != nil {
		return err
	}
	res, err := client.Certificate.Obtain(ctx, certificate.ObtainRequest{Domains: c.Domains, PrivateKey: key, Bundle: true})
	if err != nil {
		return err
	}
	leaf, id, err := (&pki.Certs{Store: m.store, Now: m.clock()}).PutIssued(ctx, c.Name, key, cfg.ACME.KeyType, res.Certificate, c.Domains)
	if err != nil {
		return fmt.Errorf("refused what the CA sent: %w", err)
	}
	if err := m.pki.Reload(ctx); err != nil {
		return fmt.Errorf("the new certificate is stored (material %s) but could not be put in use: %w", id, err)
	}
	m.mu.Lock()
	st := m.state[c.Name]
	st.failures, st.retryAt, st.LastError = 0, time.Time{}, ""
	st.Issued++
	delete(m.forced, c.Name)
	m.mu.Unlock()
	issued.WithLabelValues(c.Name).Inc()
	failing.WithLabelValues(c.Name).Set(0)
	m.log.Info("ACME: certificate obtained and in use", "certificate", c.Name, "domains", c.Domains,
		"fingerprint", pki.Fingerprint(leaf), "not_after", leaf.NotAfter, "material", id)
	return nil
}

// Revoke asks the CA to revoke the certificate the entry name uses now and
// obtains a new one at once.
func (m *Manager) Revoke(ctx context.Context, name string) error {
	m.mu.Lock()
	cfg := m.cfg
	m.mu.Unlock()
	if cfg == nil || !cfg.ACMEManages(name) {
		return fmt.Errorf("ACME does not manage the certificate %q", name)
	}
	chain, err := pki.NewestChain(ctx, m.store, name)
	if err != nil {
		return err
	}
	if len(chain) == 0 || selfSigned(chain[0]) {
		return fmt.Errorf("the certificate %q was not issued by a CA", name)
	}
	client, err := m.client(ctx, cfg)
	if err != nil {
		return err
	}
	if err := client.Certificate.Revoke(ctx, pki.EncodeCertificatesPEM(chain...)); err != nil {
		return fmt.Errorf("the CA did not revoke %q: %s", name, caError(err))
	}
	m.mu.Lock()
	m.revoked[pki.Fingerprint(chain[0])] = true
	m.mu.Unlock()
	m.log.Warn("ACME: certificate revoked; obtaining a new one", "certificate", name, "fingerprint", pki.Fingerprint(chain[0]))
	m.Wake()
	return nil
}

// Renew obtains a new certificate for the entry name now, whatever the age
// of the one in use (which stays until the new one is in).
func (m *Manager) Renew(name string) error {
	m.mu.Lock()
	cfg := m.cfg
	if cfg == nil || !cfg.ACMEManages(name) {
		m.mu.Unlock()
		return fmt.Errorf("ACME does not manage the certificate %q", name)
	}
	if st := m.state[name]; st != nil {
		st.retryAt, st.failures = time.Time{}, 0
	}
	m.forced[name] = true
	m.mu.Unlock()
	m.Wake()
	return nil
}

func (m *Manager) clock() func() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.now
}

// client returns a lego client for the configured CA with the stored
// account, registering one (with External Account Binding when configured)
// the first time.
func (m *Manager) client(ctx context.Context, cfg *config.Config) (*lego.Client, error) {
	a := cfg.ACME
	hc, err := m.httpClient(ctx, cfg)
	if err != nil {
		return nil, err
	}
	acc, err := m.loadAccount(ctx, a)
	if err != nil {
		return nil, err
	}
	lc := lego.NewConfig(acc)
	lc.CADirURL, lc.HTTPClient, lc.UserAgent = a.DirectoryURL, hc, "palisade"
	client, err := lego.NewClient(lc)
	if err != nil {
		return nil, fmt.Errorf("ACME directory %s: %s", a.DirectoryURL, caError(err))
	}
	if acc.reg == nil {
		var reg *acme.ExtendedAccount
		if a.EAB.KeyID != "" {
			reg, err = client.Registration.RegisterWithExternalAccountBinding(ctx, registration.RegisterEABOptions{
				TermsOfServiceAgreed: true, Kid: a.EAB.KeyID, HmacEncoded: a.EAB.HMACKey})
		} else {
			reg, err = client.Registration.Register(ctx, registration.RegisterOptions{TermsOfServiceAgreed: true})
		}
		if err != nil {
			return nil, fmt.Errorf("registering the ACME account: %w", err)
		}
		acc.reg, acc.URI = reg, reg.Location
		if err := m.saveAccount(ctx, a, acc); err != nil {
			return nil, err
		}
		// The client signs with the account URL from now on.
		if client, err = lego.NewClient(lc); err != nil {
			return nil, err
		}
	}
	if err := setSolver(client, a); err != nil {
		return nil, err
	}
	return client, nil
}

func (m *Manager) loadAccount(ctx context.Context, a config.ACME) (*account, error) {
	b, err := m.store.Get(ctx, accountKey(a))
	if errors.Is(err, store.ErrNotFound) {
		key, err := pki.GenerateKey(pki.KeyECDSAP256)
		if err != nil {
			return nil, err
		}
		return &account{Email: a.Email, signer: key}, nil
	}
	if err != nil {
		return nil, err
	}
	acc := &account{}
	if err := json.Unmarshal(b, acc); err != nil {
		return nil, fmt.Errorf("stored ACME account is damaged: %w", err)
	}
	if acc.signer, err = pki.ParseKeyPEM([]byte(acc.Key)); err != nil {
		return nil, fmt.Errorf("stored ACME account key: %w", err)
	}
	acc.reg = &acme.ExtendedAccount{Location: acc.URI}
	return acc, nil
}

func (m *Manager) saveAccount(ctx context.Context, a config.ACME, acc *account) error {
	p, err := pki.MarshalKeyPEM(acc.signer)
	if err != nil {
		return err
	}
	acc.Key = string(p)
	b, err := json.Marshal(acc)
	if err != nil {
		return err
	}
	return m.store.Put(ctx, accountKey(a), b)
}

// httpClient trusts the CA entries acme.ca_certificates names, or the
// system roots when it names none.
func (m *Manager) httpClient(ctx context.Context, cfg *config.Config) (*http.Client, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if names := cfg.ACME.CACertificates; len(names) > 0 {
		tc.RootCAs = x509.NewCertPool()
		for _, n := range names {
			p, err := (&pki.Certs{Store: m.store}).ExportCA(ctx, cfg, n, false)
			if err != nil {
				return nil, fmt.Errorf("acme.ca_certificates: %w", err)
			}
			tc.RootCAs.AppendCertsFromPEM(p)
		}
	}
	return &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		Proxy: http.ProxyFromEnvironment, TLSClientConfig: tc, TLSHandshakeTimeout: 15 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second, DialContext: (&net.Dialer{Timeout: 15 * time.Second}).DialContext,
	}}, nil
}

func setSolver(client *lego.Client, a config.ACME) error {
	switch a.Challenge {
	case "http-01", "tls-alpn-01":
		host, port, err := net.SplitHostPort(a.ChallengeListen)
		if err != nil {
			return fmt.Errorf("acme.challenge_listen: %w", err)
		}
		if a.Challenge == "http-01" {
			return client.Challenge.SetHTTP01Provider(http01.NewProviderServer(host, port))
		}
		return client.Challenge.SetTLSALPN01Provider(tlsalpn01.NewProviderServer(host, port))
	case "dns-01":
		p, err := dnsProvider(a.DNSProvider, a.DNSSettings)
		if err != nil {
			return fmt.Errorf("acme.dns_provider %s: %w", a.DNSProvider, err)
		}
		if len(a.DNSResolvers) > 0 {
			return client.Challenge.SetDNS01Provider(p, resolverCheck(a.DNSResolvers))
		}
		return client.Challenge.SetDNS01Provider(p)
	}
	return fmt.Errorf("acme.challenge %q is not supported", a.Challenge)
}

// envMu serialises dnsProvider: lego's providers read their settings from
// the environment when made, so the settings are put there for the call.
var envMu sync.Mutex

func dnsProvider(name string, settings map[string]string) (challenge.Provider, error) {
	envMu.Lock()
	defer envMu.Unlock()
	for k, v := range settings {
		old, had := os.LookupEnv(k)
		os.Setenv(k, v)
		defer func() {
			if had {
				os.Setenv(k, old)
			} else {
				os.Unsetenv(k)
			}
		}()
	}
	switch name {
	case "cloudflare":
		return cloudflare.NewDNSProvider()
	case "digitalocean":
		return digitalocean.NewDNSProvider()
	case "exec":
		return exec.NewDNSProvider()
	case "hetzner":
		return hetzner.NewDNSProvider()
	case "httpreq":
		return httpreq.NewDNSProvider()
	case "pdns":
		return pdns.NewDNSProvider()
	}
	return nil, fmt.Errorf("unknown DNS provider %q", name)
}

func selfSigned(c *x509.Certificate) bool {
	return string(c.RawIssuer) == string(c.RawSubject) && c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

// covers reports whether leaf is valid for every name.
func covers(leaf *x509.Certificate, names []string) bool {
	for _, n := range names {
		if leaf.VerifyHostname(n) != nil {
			return false
		}
	}
	return true
}
