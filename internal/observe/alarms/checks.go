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

	mu      sync.Mutex
	points  map[string][]point
	details map[string]func(subject string) string
}

type point struct {
	t time.Time
	v float64
}

// NewWatcher reads metrics from g (prometheus.DefaultGatherer in the unit).
func NewWatcher(g prometheus.Gatherer) *Watcher {
	return &Watcher{g: g, points: make(map[string][]point), details: make(map[string]func(string) string)}
}

// Explain gives the alarms of kind more words than their metric holds:
// fn returns them for a subject ("" when it knows none). The ACME manager
// explains acme_failing with the CA's error.
func (w *Watcher) Explain(kind string, fn func(subject string) string) {
	w.mu.Lock()
	w.details[kind] = fn
	w.mu.Unlock()
}

// detail appends what the kind's explainer says about subject to text.
func (w *Watcher) detail(kind, subject, text string) string {
	if fn := w.details[kind]; fn != nil {
		if d := fn(subject); d != "" {
			return text + ": " + d
		}
	}
	return text
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
	for _, s := range snap["palisade_lifecycle_store_behind"] {
		if s.v == 1 {
			out = append(out, Condition{StoreBehind, "etcd", Critical,
				"etcd answers with an older revision than this unit followed (restored backup?): the unit keeps its configuration and refuses changes"})
		}
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
	out = append(out, w.acme(snap)...)
	out = append(out, collectorsDown(snap, "palisade_hep_collector_up", "palisade_hep_packets_dropped_total", "collector",
		HEPCollectorDown, "HEP collector %s does not take packets: SIP messages for it are dropped", "collector_down", "write_error")...)
	out = append(out, collectorsDown(snap, "palisade_syslog_collector_up", "palisade_syslog_dropped_total", "destination",
		SyslogCollectorDown, "syslog collector %s does not take messages: logs and call records for it are dropped", "unreachable", "send_error")...)
	return out
}

// acme raises an alarm for every certificate whose last attempt at the
// ACME CA failed; the working certificate stays in use meanwhile.
func (w *Watcher) acme(snap snapshot) []Condition {
	var out []Condition
	for _, s := range snap["palisade_acme_failing"] {
		if s.v != 1 {
			continue
		}
		name := s.labels["certificate"]
		out = append(out, Condition{ACMEFailing, name, Major,
			w.detail(ACMEFailing, name, fmt.Sprintf("certificate %s could not be obtained from the ACME CA (the current one stays in use)", name))})
	}
	return out
}

// collectorsDown raises a minor alarm for every collector whose up gauge
// is 0 once a send to it has failed (a drop counted for one of reasons):
// a collector is 0 from its start until the first send, and one nothing
// was sent to yet (no call, for HEP) is not known to be down.
func collectorsDown(snap snapshot, upMetric, dropMetric, label, kind, text string, reasons ...string) []Condition {
	failed := map[string]bool{}
	for _, s := range snap[dropMetric] {
		if s.v > 0 && slices.Contains(reasons, s.labels["reason"]) {
			failed[s.labels[label]] = true
		}
	}
	var out []Condition
	for _, s := range snap[upMetric] {
		if c := s.labels[label]; s.v == 0 && failed[c] {
			out = append(out, Condition{kind, c, Minor, fmt.Sprintf(text, c)})
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
