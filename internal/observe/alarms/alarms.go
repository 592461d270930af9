// Package alarms turns the unit's signals (peer keepalive states, the
// Prometheus counters and gauges of every subsystem) into alarms an
// administrator acts on: each with a kind, a subject, a severity, the time
// it was raised and, once the condition went away, the time it was cleared.
// Active alarms are also exported as palisade_alarms_active.
//
// The engine keeps what it knows in memory: after a restart an alarm whose
// condition still holds is raised again at the first evaluation.
package alarms

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Severity of an alarm, highest first.
type Severity string

const (
	Critical Severity = "critical"
	Major    Severity = "major"
	Minor    Severity = "minor"
	Warning  Severity = "warning"
)

func (s Severity) rank() int {
	switch s {
	case Critical:
		return 0
	case Major:
		return 1
	case Minor:
		return 2
	}
	return 3
}

// Alarm kinds (the kind label of palisade_alarms_active; docs/alarms in
// docs/web-admin.md explains each).
const (
	PeerDown            = "peer_down"
	CertificateExpiring = "certificate_expiring"
	CertificateExpired  = "certificate_expired"
	TLSHandshakeFailing = "tls_handshake_failures"
	RegistrationFailing = "trunk_registration_failing"
	Overload            = "overload_shedding"
	ConfigReverted      = "configuration_reverted"
	StoreErrors         = "store_errors"
	StoreBehind         = "store_behind"
	ACMEFailing         = "acme_failing"
	HEPCollectorDown    = "hep_collector_down"
	SyslogCollectorDown = "syslog_collector_down"
)

// Condition is one alarm condition that holds now.
type Condition struct {
	Kind     string
	Subject  string // what it is about: a peer, a certificate, a cause; may be empty
	Severity Severity
	Text     string // what is wrong, in words
}

func (c Condition) key() string { return c.Kind + "\x00" + c.Subject }

// Alarm is a condition with its history.
type Alarm struct {
	Kind     string    `json:"kind"`
	Subject  string    `json:"subject,omitempty"`
	Severity Severity  `json:"severity"`
	Text     string    `json:"text"`
	Raised   time.Time `json:"raised"`
	Cleared  time.Time `json:"cleared,omitzero"` // zero while active
	Active   bool      `json:"active"`
}

// keepCleared bounds the cleared alarms remembered for the dashboard.
const keepCleared = 200

var activeGauge = promauto.NewGaugeVec(prometheus.GaugeOpts{
	Namespace: "palisade", Subsystem: "alarms", Name: "active",
	Help: "1 for every alarm that is active, by kind, subject and severity (docs/web-admin.md lists the kinds).",
}, []string{"kind", "subject", "severity"})

// Engine holds the active alarms and the recently cleared ones. The zero
// value is not usable; call NewEngine. It is safe for concurrent use.
type Engine struct {
	mu      sync.Mutex
	active  map[string]*Alarm
	cleared []Alarm // oldest first, at most keepCleared
	gauge   *prometheus.GaugeVec
}

// NewEngine returns an engine exporting to palisade_alarms_active.
func NewEngine() *Engine {
	return &Engine{active: make(map[string]*Alarm), gauge: activeGauge}
}

// Update makes conds the set of conditions that hold at now: new ones are
// raised, absent ones cleared; a held condition keeps its raise time but
// takes the newest severity and text.
func (e *Engine) Update(now time.Time, conds []Condition) {
	e.mu.Lock()
	defer e.mu.Unlock()
	seen := make(map[string]bool, len(conds))
	for _, c := range conds {
		k := c.key()
		if seen[k] {
			continue
		}
		seen[k] = true
		a, ok := e.active[k]
		if !ok {
			a = &Alarm{Kind: c.Kind, Subject: c.Subject, Raised: now, Active: true}
			e.active[k] = a
		}
		if a.Severity != c.Severity && a.Severity != "" {
			e.gauge.DeleteLabelValues(a.Kind, a.Subject, string(a.Severity))
		}
		a.Severity, a.Text = c.Severity, c.Text
		e.gauge.WithLabelValues(a.Kind, a.Subject, string(a.Severity)).Set(1)
	}
	for k, a := range e.active {
		if seen[k] {
			continue
		}
		delete(e.active, k)
		e.gauge.DeleteLabelValues(a.Kind, a.Subject, string(a.Severity))
		done := *a
		done.Cleared, done.Active = now, false
		e.cleared = append(e.cleared, done)
		if len(e.cleared) > keepCleared {
			e.cleared = slices.Delete(e.cleared, 0, len(e.cleared)-keepCleared)
		}
	}
}

// Active returns the active alarms, most severe first, then newest first.
func (e *Engine) Active() []Alarm {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Alarm, 0, len(e.active))
	for _, a := range e.active {
		out = append(out, *a)
	}
	slices.SortFunc(out, func(a, b Alarm) int {
		if c := cmp.Compare(a.Severity.rank(), b.Severity.rank()); c != 0 {
			return c
		}
		if c := b.Raised.Compare(a.Raised); c != 0 {
			return c
		}
		return cmp.Compare(a.Kind+a.Subject, b.Kind+b.Subject)
	})
	return out
}

// Cleared returns up to n cleared alarms, the last cleared first.
func (e *Engine) Cleared(n int) []Alarm {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Alarm, 0, min(n, len(e.cleared)))
	for i := len(e.cleared) - 1; i >= 0 && len(out) < n; i-- {
		out = append(out, e.cleared[i])
	}
	return out
}

// Find returns the condition of kind about subject among conds.
func Find(conds []Condition, kind, subject string) (Condition, bool) {
	for _, c := range conds {
		if c.Kind == kind && c.Subject == subject {
			return c, true
		}
	}
	return Condition{}, false
}
