package alarms

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Thresholds of the checks that read metrics.
const (
	certWarnDays  = 30 // a certificate with fewer days left raises a warning
	certMajorDays = 7  // ... and with fewer than this a major alarm
	// A counter that rose within its window keeps its alarm active; the
	// alarm clears when the window passes without a rise.
	tlsWindow      = 5 * time.Minute
	overloadWindow = 5 * time.Minute
	revertWindow   = time.Hour
	storeWindow    = 15 * time.Minute
)

// Watcher reads the unit's metrics and derives alarm conditions. Counters
// are compared with their value some time ago, so it remembers a few points
// per series (bounded: the series of the checked metrics are bounded).
type Watcher struct {
	g prometheus.Gatherer

	mu     sync.Mutex
	points map[string][]point
}

type point struct {
	t time.Time
	v float64
}

// NewWatcher reads metrics from g (prometheus.DefaultGatherer in the unit).
func NewWatcher(g prometheus.Gatherer) *Watcher {
	return &Watcher{g: g, points: make(map[string][]point)}
}

// sample is one series of a gathered metric.
type sample struct {
	labels map[string]string
	v      float64
}

type snapshot map[string][]sample

func (w *Watcher) gather() (snapshot, error) {
	fams, err := w.g.Gather()
	snap := snapshot{}
	for _, f := range fams {
		if !strings.HasPrefix(f.GetName(), "palisade_") {
			continue
		}
		for _, m := range f.GetMetric() {
			s := sample{labels: make(map[string]string, len(m.GetLabel()))}
			for _, l := range m.GetLabel() {
				s.labels[l.GetName()] = l.GetValue()
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				s.v = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				s.v = m.GetGauge().GetValue()
			default:
				continue
			}
			snap[f.GetName()] = append(snap[f.GetName()], s)
		}
	}
	return snap, err
}

// rise is how much the series (metric + label value) grew within window.
// A series seen for the first time is taken to have started from 0 at the
// start of the process, which is when the unit's counters start.
func (w *Watcher) rise(now time.Time, metric, label string, v float64, window time.Duration) float64 {
	k := metric + "\x00" + label
	ps := w.points[k]
	if len(ps) == 0 {
		ps = append(ps, point{t: now, v: 0})
	}
	if last := ps[len(ps)-1]; now.Sub(last.t) >= 5*time.Second || len(ps) == 1 {
		ps = append(ps, point{t: now, v: v})
	} else {
		ps[len(ps)-1].v = v
	}
	for len(ps) > 2 && !ps[1].t.After(now.Add(-window)) {
		ps = ps[1:]
	}
	w.points[k] = ps
	base := ps[0].v
	if v < base { // counter reset
		return v
	}
	return v - base
}

// Conditions returns the conditions the metrics show at now. A gather that
// failed half-way still evaluates what it got.
func (w *Watcher) Conditions(now time.Time) []Condition {
	snap, _ := w.gather()
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []Condition
	for _, s := range snap["palisade_pki_certificate_days_left"] {
		name, days := s.labels["name"], int(s.v)
		switch {
		case s.v < 0:
			out = append(out, Condition{CertificateExpired, name, Critical, fmt.Sprintf("certificate %s has expired", name)})
		case days < certMajorDays:
			out = append(out, Condition{CertificateExpiring, name, Major, fmt.Sprintf("certificate %s expires in %s", name, plural(days, "day"))})
		case days < certWarnDays:
			out = append(out, Condition{CertificateExpiring, name, Warning, fmt.Sprintf("certificate %s expires in %s", name, plural(days, "day"))})
		}
	}
	for _, s := range snap["palisade_pki_tls_handshake_failures_total"] {
		cause := s.labels["cause"]
		if n := w.rise(now, "tls", cause, s.v, tlsWindow); n > 0 {
			out = append(out, Condition{TLSHandshakeFailing, cause, Minor,
				fmt.Sprintf("%s failed (%s) in the last 5 minutes", plural(int(n), "TLS handshake"), strings.ReplaceAll(cause, "_", " "))})
		}
	}
	for _, s := range snap["palisade_accounts_registered"] {
		if s.v == 0 {
			peer := s.labels["peer"]
			out = append(out, Condition{RegistrationFailing, peer, Major, fmt.Sprintf("the unit is not registered at trunk %s", peer)})
		}
	}
	for _, s := range snap["palisade_guard_cpu_overloaded"] {
		if s.v == 1 {
			out = append(out, Condition{Overload, "cpu", Major, "the CPU is saturated: new calls are refused"})
		}
	}
	for _, s := range snap["palisade_guard_refused_total"] {
		cause := s.labels["cause"]
		if !slices.Contains([]string{"max_calls", "cpu", "fds", "call_rate"}, cause) {
			continue
		}
		if n := w.rise(now, "shed", s.labels["action"]+"/"+cause, s.v, overloadWindow); n > 0 && cause != "cpu" {
			out = append(out, Condition{Overload, cause, Major,
				fmt.Sprintf("%s refused in the last 5 minutes (%s)", plural(int(n), "new call"), shedCause[cause])})
		}
	}
	var reverts float64
	for _, s := range snap["palisade_lifecycle_reverts_total"] {
		if r := s.labels["reason"]; r == "timeout" || r == "restart" {
			reverts += w.rise(now, "revert", r, s.v, revertWindow)
		}
	}
	if reverts > 0 {
		out = append(out, Condition{ConfigReverted, "", Warning,
			"an applied configuration was not saved within its confirmation window and the previous one runs again (last hour)"})
	}
	for _, s := range snap["palisade_observe_cdr_writes_total"] {
		if s.labels["result"] != "error" {
			continue
		}
		if n := w.rise(now, "store", "cdr", s.v, storeWindow); n > 0 {
			out = append(out, Condition{StoreErrors, "call records", Major,
				fmt.Sprintf("%s could not be written to the store in the last 15 minutes", plural(int(n), "call record"))})
		}
	}
	return out
}

var shedCause = map[string]string{
	"max_calls": "the concurrent call limit is reached",
	"fds":       "the process is running out of file descriptors",
	"call_rate": "the new-call rate limit is reached",
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
