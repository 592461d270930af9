// Package acme keeps the unit's public certificates issued and renewed by an
// ACME CA (RFC 8555) with lego: the outside FQDN's certificate, the admin
// certificate, any private entry named in acme.certificates. A certificate
// obtained goes into the PKI store as the entry's newest material, like an
// imported one, and the PKI swaps it in for new handshakes.
package acme

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/go-acme/lego/v5/acme"
	legolog "github.com/go-acme/lego/v5/log"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/pki"
	"github.com/palisade-sbc/palisade/internal/store"
)

// SubsystemName is the manager's name in the unit.
const SubsystemName = "acme"

// Reloader is the PKI: Reload loads newest material again (pki.Subsystem).
type Reloader interface {
	Reload(ctx context.Context) error
}

// Retry pauses after a failed attempt: FirstRetry, doubling up to maxRetry.
const maxRetry = 6 * time.Hour

// Manager is the ACME part of the running unit (a unit.Subsystem). Apply
// gives every managed entry a self-signed stand-in when it has nothing yet
// (so listeners that use it start) and wakes the renewal loop, which runs
// in the background: a CA that is slow, down or refusing never holds up an
// apply and never takes a working certificate away.
type Manager struct {
	store store.Store
	pki   Reloader
	log   *slog.Logger
	// FirstRetry is the pause after a first failure (tests shorten it).
	FirstRetry time.Duration

	mu       sync.Mutex
	now      func() time.Time
	cfg      *config.Config
	state    map[string]*certState
	revoked  map[string]bool // fingerprints revoked here: replace at once
	forced   map[string]bool // entries to renew now (Renew)
	running  bool
	wake     chan struct{}
	stop     chan struct{}
	done     chan struct{}
	attempts sync.WaitGroup
}

// certState is what the loop knows of one managed certificate.
type certState struct {
	Status
	failures int
	retryAt  time.Time
}

// Status describes one managed certificate.
type Status struct {
	Name        string    `json:"name"`
	Domains     []string  `json:"domains"`
	NotAfter    time.Time `json:"not_after,omitzero"`
	RenewAt     time.Time `json:"renew_at,omitzero"` // two thirds into the certificate's life
	Issued      int       `json:"issued"`            // certificates obtained since the unit started
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	LastError   string    `json:"last_error,omitempty"` // the CA's error of the last failed attempt
}

// New returns a manager over the PKI store st; certs reloads the PKI.
func New(st store.Store, certs Reloader, log *slog.Logger) *Manager {
	if log == nil {
		log = slog.Default()
	}
	log = log.With("subsystem", SubsystemName)
	legolog.SetDefault(log) // lego reports its steps through one process-wide logger
	return &Manager{store: st, pki: certs, log: log, FirstRetry: time.Minute,
		now: time.Now, state: map[string]*certState{}, revoked: map[string]bool{}, forced: map[string]bool{}, wake: make(chan struct{}, 1)}
}

// SetClock replaces the clock (tests: a renewal is due two thirds into a
// certificate's life).
func (m *Manager) SetClock(now func() time.Time) {
	m.mu.Lock()
	m.now = now
	m.mu.Unlock()
	m.Wake()
}

// Name implements unit.Subsystem.
func (m *Manager) Name() string { return SubsystemName }

// Apply follows cfg.ACME. It must come before the PKI in the unit: the
// stand-in certificates it creates are what the PKI then loads.
func (m *Manager) Apply(ctx context.Context, cfg *config.Config) error {
	if cfg.ACME.Enabled {
		for _, c := range cfg.ACME.Certificates {
			// A stand-in's CN is a host name: a wildcard gives its base.
			cn := strings.TrimPrefix(c.Domains[0], "*.")
			if err := pki.EnsureSelfSigned(ctx, m.store, c.Name, cn, c.Domains); err != nil {
				return err
			}
		}
	}
	m.mu.Lock()
	m.cfg = cfg
	if !m.running && cfg.ACME.Enabled {
		m.running = true
		m.stop, m.done = make(chan struct{}), make(chan struct{})
		go m.loop(m.stop, m.done)
	}
	m.mu.Unlock()
	m.Wake()
	return nil
}

// Wake makes the loop look at every certificate now.
func (m *Manager) Wake() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// Drain implements unit.Subsystem.
func (m *Manager) Drain(context.Context) error { return nil }

// Close stops the loop, cancelling an attempt in progress.
func (m *Manager) Close() error {
	m.mu.Lock()
	stop, done := m.stop, m.done
	m.running, m.stop, m.done = false, nil, nil
	m.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
	return nil
}

func (m *Manager) manages(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cfg != nil && m.cfg.ACMEManages(name)
}

// Status lists the managed certificates.
func (m *Manager) Status() []Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Status
	if m.cfg == nil {
		return nil
	}
	for _, c := range m.cfg.ACME.Certificates {
		if st := m.state[c.Name]; st != nil {
			out = append(out, st.Status)
		} else {
			out = append(out, Status{Name: c.Name, Domains: c.Domains})
		}
	}
	return out
}

// LastError is the CA's error of the last failed attempt for the entry
// name, "" when it succeeded or was not tried (the acme_failing alarm's
// text).
func (m *Manager) LastError(name string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if st := m.state[name]; st != nil {
		return st.LastError
	}
	return ""
}

func (m *Manager) loop(stop, done chan struct{}) {
	defer close(done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-stop
		cancel()
	}()
	for {
		next := m.runDue(ctx)
		t := time.NewTimer(max(next.Sub(m.clock()()), time.Second))
		select {
		case <-stop:
			t.Stop()
			return
		case <-m.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// runDue obtains every certificate that is due and returns when the next
// one will be.
func (m *Manager) runDue(ctx context.Context) time.Time {
	m.mu.Lock()
	cfg, now := m.cfg, m.now()
	m.mu.Unlock()
	next := now.Add(12 * time.Hour) // look again twice a day anyway
	if cfg == nil || !cfg.ACME.Enabled {
		return next
	}
	for _, c := range cfg.ACME.Certificates {
		if ctx.Err() != nil {
			return next
		}
		st := m.stateOf(c)
		at := m.dueAt(ctx, c, st, now)
		if at.After(now) {
			next = minTime(next, at)
			continue
		}
		if err := m.obtain(ctx, cfg, c); err != nil {
			m.failed(c, st, err)
		}
		m.mu.Lock()
		at = st.retryAt
		m.mu.Unlock()
		if at.IsZero() {
			at = m.dueAt(ctx, c, st, m.clock()())
		}
		next = minTime(next, at)
	}
	return next
}

func (m *Manager) stateOf(c config.ACMECertificate) *certState {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.state[c.Name]
	if st == nil {
		st = &certState{}
		m.state[c.Name] = st
	}
	st.Name, st.Domains = c.Name, c.Domains
	return st
}

// dueAt says when the entry needs a certificate from the CA: now when it
// has none from a CA for all its names (a stand-in, names changed) or its
// certificate was revoked here; else two thirds into its life; never
// before a retry pause ends.
func (m *Manager) dueAt(ctx context.Context, c config.ACMECertificate, st *certState, now time.Time) time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	due := now
	chain, err := pki.NewestChain(ctx, m.store, c.Name)
	if err == nil && len(chain) > 0 && !selfSigned(chain[0]) && covers(chain[0], c.Domains) && !m.revoked[pki.Fingerprint(chain[0])] {
		leaf := chain[0]
		st.NotAfter = leaf.NotAfter
		st.RenewAt = leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) * 2 / 3)
		renewAt.WithLabelValues(c.Name).Set(float64(st.RenewAt.Unix()))
		if !m.forced[c.Name] {
			due = st.RenewAt
		}
	}
	if st.retryAt.After(due) {
		return st.retryAt
	}
	return due
}

func (m *Manager) failed(c config.ACMECertificate, st *certState, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st.failures++
	wait := min(m.FirstRetry<<min(st.failures-1, 20), maxRetry)
	st.retryAt = m.now().Add(wait)
	st.LastError = caError(err)
	failures.WithLabelValues(c.Name).Inc()
	failing.WithLabelValues(c.Name).Set(1)
	m.log.Error("ACME: the certificate was not obtained; the current one stays in use", "certificate", c.Name,
		"domains", c.Domains, "ca_error", st.LastError, "retry_in", wait.String())
}

// caError is the CA's own problem report when there is one (RFC 8555
// §6.7), else the error.
func caError(err error) string {
	var p *acme.ProblemDetails
	if errors.As(err, &p) {
		return p.Error()
	}
	return err.Error()
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
