package alarms

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// An alarm is raised when its condition appears, keeps its raise time while
// it holds, is cleared (with the time) when it goes, and is exported while
// active only.
func TestEngineRaiseClear(t *testing.T) {
	e := NewEngine()
	e.gauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "a"}, []string{"kind", "subject", "severity"})
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	down := Condition{PeerDown, "itsp", Major, "peer itsp does not answer"}
	e.Update(t0, []Condition{down})
	e.Update(t0.Add(5*time.Second), []Condition{down, {CertificateExpired, "sip", Critical, "expired"}})
	act := e.Active()
	if len(act) != 2 || act[0].Kind != CertificateExpired || act[1].Kind != PeerDown || !act[1].Raised.Equal(t0) {
		t.Fatalf("active = %+v, want the critical one first and itsp raised at t0", act)
	}
	var m dto.Metric
	if err := e.gauge.WithLabelValues(PeerDown, "itsp", "major").Write(&m); err != nil || m.GetGauge().GetValue() != 1 {
		t.Fatalf("gauge = %v (%v), want 1", m.GetGauge().GetValue(), err)
	}
	e.Update(t0.Add(10*time.Second), []Condition{{CertificateExpired, "sip", Critical, "expired"}})
	cl := e.Cleared(10)
	if len(cl) != 1 || cl[0].Kind != PeerDown || !cl[0].Cleared.Equal(t0.Add(10*time.Second)) || cl[0].Active {
		t.Fatalf("cleared = %+v, want itsp cleared at +10s", cl)
	}
	ch := make(chan prometheus.Metric, 10)
	e.gauge.Collect(ch)
	if n := len(ch); n != 1 {
		t.Fatalf("%d series exported, want 1 (the cleared alarm removed)", n)
	}
}

// The watcher reads the subsystems' metrics: a certificate's days left, a
// trunk not registered, TLS failures that rose within the window (and the
// alarm clears once the window passes without a rise).
func TestWatcherConditions(t *testing.T) {
	reg := prometheus.NewRegistry()
	days := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "palisade_pki_certificate_days_left"}, []string{"name"})
	registered := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "palisade_accounts_registered"}, []string{"peer"})
	tls := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "palisade_pki_tls_handshake_failures_total"}, []string{"cause"})
	reverts := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "palisade_lifecycle_reverts_total"}, []string{"reason"})
	reg.MustRegister(days, registered, tls, reverts)
	days.WithLabelValues("sip").Set(12)
	days.WithLabelValues("old").Set(-1)
	days.WithLabelValues("fine").Set(300)
	registered.WithLabelValues("itsp").Set(0)
	registered.WithLabelValues("lab").Set(1)
	reverts.WithLabelValues("revert").Inc() // reverted by the administrator: no alarm
	w := NewWatcher(reg)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	kinds := func(cs []Condition) string {
		var out []string
		for _, c := range cs {
			out = append(out, c.Kind+":"+c.Subject+":"+string(c.Severity))
		}
		return strings.Join(out, " ")
	}
	got := kinds(w.Conditions(t0))
	want := "certificate_expired:old:critical certificate_expiring:sip:warning trunk_registration_failing:itsp:major"
	if got != want {
		t.Fatalf("conditions\n got %s\nwant %s", got, want)
	}
	tls.WithLabelValues("unknown_ca").Add(2)
	if got := kinds(w.Conditions(t0.Add(10 * time.Second))); !strings.Contains(got, "tls_handshake_failures:unknown_ca:minor") {
		t.Fatalf("after 2 failures: %s", got)
	}
	w.Conditions(t0.Add(3 * time.Minute))
	if got := kinds(w.Conditions(t0.Add(4 * time.Minute))); !strings.Contains(got, "tls_handshake_failures") {
		t.Fatalf("within 5 minutes of the failures the alarm must hold: %s", got)
	}
	if got := kinds(w.Conditions(t0.Add(20 * time.Minute))); strings.Contains(got, "tls_handshake_failures") {
		t.Fatalf("15 minutes without failures, still: %s", got)
	}
	reverts.WithLabelValues("timeout").Inc()
	if got := kinds(w.Conditions(t0.Add(21 * time.Minute))); !strings.Contains(got, "configuration_reverted::warning") {
		t.Fatalf("after a timeout revert: %s", got)
	}
}
