package pki

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/observe"
	"github.com/palisade-sbc/palisade/internal/store"
)

// SubsystemName is the name of the PKI subsystem in the unit.
const SubsystemName = "pki"

// Subsystem is the running PKI: a unit.Subsystem and the Provider of every
// TLS configuration. Apply loads the configured certificates, CA store and
// CRLs from the store and swaps them in one atomic step; the tls.Configs it
// handed out read the current state on every handshake, so established
// connections are untouched and new handshakes use the new material.
//
// Add it to the unit before the SIP subsystem. For listeners, SIP code may
// use ServerConfig directly, or Listen, which also enforces the handshake
// timeout and logs and counts every failed handshake with its diagnosis;
// for outgoing connections ClientConfig, or Dial. Code that runs its own
// handshakes reports failures with HandshakeFailed.
type Subsystem struct {
	store   store.Store
	log     *slog.Logger
	limited *observe.LimitedLogger
	now     func() time.Time

	rt atomic.Pointer[runtime]

	// applyMu serialises Apply and Reload; applied is the configuration
	// of the running state, for Reload.
	applyMu sync.Mutex
	applied *config.Config

	lastMu sync.Mutex
	last   Diagnosis // newest failed handshake, for status

	closeOnce sync.Once
	stop      chan struct{}
	done      chan struct{}
}

var _ Provider = (*Subsystem)(nil)

// New returns the PKI subsystem over st.
func New(st store.Store, log *slog.Logger) *Subsystem {
	if log == nil {
		log = slog.Default()
	}
	log = log.With("subsystem", SubsystemName)
	s := &Subsystem{store: st, log: log, limited: observe.NewLimitedLogger(log, time.Minute, 20), now: time.Now,
		stop: make(chan struct{}), done: make(chan struct{})}
	go s.expiryLoop()
	return s
}

// SetClock replaces the clock (tests).
func (s *Subsystem) SetClock(now func() time.Time) { s.now = now }

// Name implements unit.Subsystem.
func (s *Subsystem) Name() string { return SubsystemName }

// runtime is one applied state. It is never changed after the swap.
type runtime struct {
	tls       config.TLS
	minV      uint16
	maxV      uint16
	listeners map[listenerKey]config.Listener
	fqdn      map[string]string // interface name → FQDN
	own       map[string]*ownCert
	trust     *trustStore
	peers     *peerTrusts // per-peer widening of trust (peertrust.go)
	expiries  []Expiry
}

type listenerKey struct {
	iface, transport string
	port             int
}

func keyOf(l config.Listener) listenerKey { return listenerKey{l.Interface, l.Transport, l.Port} }

// ownCert is a private entry ready for TLS.
type ownCert struct {
	name   string
	cert   tls.Certificate
	chain  []*x509.Certificate
	root   *x509.Certificate // the entry's own root, when known
	status ChainStatus
}

var tlsVersions = map[string]uint16{"1.0": tls.VersionTLS10, "1.1": tls.VersionTLS11, "1.2": tls.VersionTLS12, "1.3": tls.VersionTLS13}

// Apply loads the material cfg names and swaps it in. On error nothing
// changes.
//
// On a first start the configuration names the private entry "default"
// without material: Apply then creates it (EnsureDefault on a copy of cfg;
// the entry resolves by name), so 'palisade run' on an empty data directory
// needs no other step.
func (s *Subsystem) Apply(ctx context.Context, cfg *config.Config) error {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	if i := findPrivate(cfg, DefaultName); i >= 0 {
		cp := *cfg
		cp.Certificates.Private = slices.Clone(cfg.Certificates.Private)
		if _, err := EnsureDefault(ctx, s.store, &cp); err != nil {
			return err
		}
	}
	rt, err := s.build(ctx, cfg, true)
	if err != nil {
		return err
	}
	s.rt.Store(rt)
	s.applied = cfg
	s.publishExpiries(rt)
	return nil
}

// Reload loads the running configuration's material again: entries that
// follow their newest material (those ACME manages) take what was stored
// since, for new handshakes, the same way an apply swaps certificates.
func (s *Subsystem) Reload(ctx context.Context) error {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	if s.applied == nil {
		return errors.New("pki: no configuration applied yet")
	}
	rt, err := s.build(ctx, s.applied, true)
	if err != nil {
		return err
	}
	s.rt.Store(rt)
	s.publishExpiries(rt)
	return nil
}

// build makes a runtime from cfg. strict refuses configurations whose TLS
// listeners or client certificate cannot work; the diagnosis tool builds
// leniently to test whatever there is.
func (s *Subsystem) build(ctx context.Context, cfg *config.Config, strict bool) (*runtime, error) {
	rt := &runtime{tls: cfg.TLS, listeners: map[listenerKey]config.Listener{}, fqdn: map[string]string{},
		own: map[string]*ownCert{}, trust: &trustStore{crls: map[string][]*x509.RevocationList{}}}
	var errs []error
	rt.minV, rt.maxV = tls.VersionTLS12, tls.VersionTLS13
	if v, ok := tlsVersions[cfg.TLS.MinVersion]; ok {
		rt.minV = v
	}
	if v, ok := tlsVersions[cfg.TLS.MaxVersion]; ok {
		rt.maxV = v
	}
	if rt.minV > rt.maxV {
		errs = append(errs, fmt.Errorf("tls.min_version %s is above tls.max_version %s", cfg.TLS.MinVersion, cfg.TLS.MaxVersion))
	}
	for _, in := range cfg.Network.Interfaces {
		rt.fqdn[in.Name] = in.FQDN
	}
	for _, l := range cfg.SIP.Listeners {
		rt.listeners[keyOf(l)] = l
	}
	for _, p := range cfg.Certificates.Private {
		m, err := loadPrivate(ctx, s.store, p.Name, materialOf(cfg, p))
		if err != nil {
			if len(usedBy(cfg, p.Name)) > 0 {
				errs = append(errs, err)
			}
			continue
		}
		for _, c := range m.chain {
			rt.trust.own = append(rt.trust.own, namedCert{p.Name, c})
		}
		if m.leaf() == nil {
			continue
		}
		key, err := loadKey(ctx, s.store, m.rec.KeyID)
		if err != nil {
			errs = append(errs, fmt.Errorf("certificate %q: %w", p.Name, err))
			continue
		}
		oc := &ownCert{name: p.Name, chain: m.chain, root: m.root, cert: tls.Certificate{PrivateKey: key, Leaf: m.chain[0]}}
		for _, c := range m.chain {
			oc.cert.Certificate = append(oc.cert.Certificate, c.Raw)
		}
		rt.own[p.Name] = oc
	}
	errs = append(errs, s.buildTrust(ctx, cfg, rt)...)
	rt.peers = s.buildPeerTrusts(cfg, rt.trust)
	for _, oc := range rt.own {
		anchors := trustCerts(rt.trust)
		if oc.root != nil {
			anchors = append(anchors, oc.root)
		}
		oc.status = checkChain(oc.chain, anchors, s.now())
	}
	if strict {
		for i, l := range cfg.SIP.Listeners {
			if l.Transport != "tls" {
				continue
			}
			if err := usable(rt, cfg, l.Certificate, fmt.Sprintf("sip.listeners[%d] (%s tls:%d)", i, l.Interface, l.Port)); err != nil {
				errs = append(errs, err)
			}
		}
		if n := cfg.TLS.ClientCertificate; n != "" {
			if err := usable(rt, cfg, n, "tls.client_certificate"); err != nil {
				errs = append(errs, err)
			}
		}
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
	} else if len(errs) > 0 {
		s.log.Warn("some certificates could not be loaded", "err", errors.Join(errs...))
	}
	if rt.minV < tls.VersionTLS12 {
		s.log.Warn("TLS versions below 1.2 are enabled (tls.min_version); they are weak and should be used only for a peer that cannot be upgraded",
			"min_version", cfg.TLS.MinVersion)
	}
	rt.expiries = (&Certs{Store: s.store, Now: s.now}).Expiries(ctx, cfg)
	return rt, nil
}

func usable(rt *runtime, cfg *config.Config, name, where string) error {
	if _, ok := rt.own[name]; ok {
		return nil
	}
	if findPrivate(cfg, name) < 0 {
		return fmt.Errorf("%s names the certificate %q, which certificates.private does not list", where, name)
	}
	return fmt.Errorf("%s uses the certificate %q, which has no signed certificate yet (the request is pending): import it with 'palisade cert import' or choose another certificate", where, name)
}

// buildTrust loads the CA entries and their CRLs.
func (s *Subsystem) buildTrust(ctx context.Context, cfg *config.Config, rt *runtime) []error {
	var errs []error
	t := rt.trust
	if cfg.TLS.UseSystemRoots {
		if sys, err := x509.SystemCertPool(); err == nil {
			t.pool = sys
			t.system = true
		} else {
			s.log.Warn("system roots are not available", "err", err)
		}
	}
	if t.pool == nil {
		t.pool = x509.NewCertPool()
	}
	for _, e := range cfg.Certificates.CA {
		ca, err := loadCA(ctx, s.store, e.Name, e.Fingerprint)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !trusted(cfg, e.Name) {
			t.untrusted = append(t.untrusted, namedCert{e.Name, ca})
			continue
		}
		t.trusted = append(t.trusted, namedCert{e.Name, ca})
		t.pool.AddCert(ca)
		if e.CRL == "" {
			continue
		}
		crl, err := loadCRL(ctx, s.store, e.Name, e.CRL)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := crl.CheckSignatureFrom(ca); err != nil {
			errs = append(errs, fmt.Errorf("the CRL of %q is not signed by that CA", e.Name))
			continue
		}
		if !crl.NextUpdate.IsZero() && s.now().After(crl.NextUpdate) {
			s.log.Warn("a CRL is out of date; import a newer one", "ca", e.Name, "next_update", crl.NextUpdate)
		}
		fp := Fingerprint(ca)
		t.crls[fp] = append(t.crls[fp], crl)
	}
	return errs
}

func trustCerts(t *trustStore) []*x509.Certificate {
	out := make([]*x509.Certificate, 0, len(t.trusted))
	for _, n := range t.trusted {
		out = append(out, n.cert)
	}
	return out
}

// Drain implements unit.Subsystem; the PKI has no work of its own.
func (s *Subsystem) Drain(context.Context) error { return nil }

// Close stops the expiry checks.
func (s *Subsystem) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
	})
	return nil
}

// Expiries returns the certificates of the running configuration with
// their days left (for status).
func (s *Subsystem) Expiries() []Expiry {
	rt := s.rt.Load()
	if rt == nil {
		return nil
	}
	now := s.now()
	out := make([]Expiry, len(rt.expiries))
	for i, e := range rt.expiries {
		e.DaysLeft = daysLeft(e.NotAfter, now)
		e.Warning = ""
		if e.DaysLeft <= ExpiryWarningDays {
			e.Warning = expiryText(e.Name, e.NotAfter, e.DaysLeft)
		}
		out[i] = e
	}
	return out
}

// publishExpiries sets the days-left gauge and logs a warning for every
// certificate within ExpiryWarningDays of its end.
func (s *Subsystem) publishExpiries(rt *runtime) {
	if rt == nil || s.rt.Load() != rt {
		return
	}
	daysLeftGauge.Reset()
	for _, e := range s.Expiries() {
		name := e.Name
		if e.Kind == "ca" {
			name = "ca:" + name
		}
		daysLeftGauge.WithLabelValues(name).Set(float64(e.DaysLeft))
		if e.Warning != "" {
			s.log.Warn("certificate expires soon", "certificate", e.Name, "kind", e.Kind, "days_left", e.DaysLeft, "detail", e.Warning)
		}
	}
}

// expiryLoop refreshes the gauge and the warnings twice a day.
func (s *Subsystem) expiryLoop() {
	defer close(s.done)
	t := time.NewTicker(12 * time.Hour)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.publishExpiries(s.rt.Load())
		}
	}
}
