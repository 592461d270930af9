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
	behind := prometheus.NewGauge(prometheus.GaugeOpts{Name: "palisade_lifecycle_store_behind"})
	reg.MustRegister(behind)
	if got := kinds(w.Conditions(t0.Add(22 * time.Minute))); strings.Contains(got, "store_behind") {
		t.Fatalf("store_behind while the gauge is 0: %s", got)
	}
	behind.Set(1)
	if got := kinds(w.Conditions(t0.Add(23 * time.Minute))); !strings.Contains(got, "store_behind:etcd:critical") {
		t.Fatalf("with etcd behind the unit: %s", got)
	}
}

// An ACME certificate that is failing raises a major alarm with the CA's
// error (from the explainer); a HEP or syslog collector that is down
// raises a minor one once a send to it failed. Each clears when its gauge
// goes back.
func TestWatcherACMEAndCollectors(t *testing.T) {
	type series struct {
		metric, label, value, reason string
		v                            float64
	}
	caErr := map[string]string{"public": "urn:ietf:params:acme:error:rejectedIdentifier :: name refused"}
	cases := []struct {
		name string
		set  []series
		want []string // kind|subject|severity|text
	}{
		{"acme failing, the CA's error in the text", []series{{metric: "palisade_acme_failing", label: "certificate", value: "public", v: 1}},
			[]string{"acme_failing|public|major|certificate public could not be obtained from the ACME CA (the current one stays in use): urn:ietf:params:acme:error:rejectedIdentifier :: name refused"}},
		{"acme failing without a known error", []series{{metric: "palisade_acme_failing", label: "certificate", value: "admin", v: 1}},
			[]string{"acme_failing|admin|major|certificate admin could not be obtained from the ACME CA (the current one stays in use)"}},
		{"acme back to 0", []series{{metric: "palisade_acme_failing", label: "certificate", value: "public", v: 0}}, nil},
		{"hep collector down after failed sends", []series{
			{metric: "palisade_hep_collector_up", label: "collector", value: "tcp:10.0.0.9:9060", v: 0},
			{metric: "palisade_hep_packets_dropped_total", label: "collector", value: "tcp:10.0.0.9:9060", reason: "collector_down", v: 3}},
			[]string{"hep_collector_down|tcp:10.0.0.9:9060|minor|HEP collector tcp:10.0.0.9:9060 does not take packets: SIP messages for it are dropped"}},
		{"hep collector not tried yet", []series{{metric: "palisade_hep_collector_up", label: "collector", value: "udp:10.0.0.9:9060", v: 0}}, nil},
		{"hep collector up again after a write error", []series{
			{metric: "palisade_hep_collector_up", label: "collector", value: "udp:10.0.0.9:9060", v: 1},
			{metric: "palisade_hep_packets_dropped_total", label: "collector", value: "udp:10.0.0.9:9060", reason: "write_error", v: 1}}, nil},
		{"hep collector up again", []series{
			{metric: "palisade_hep_collector_up", label: "collector", value: "tcp:10.0.0.9:9060", v: 1},
			{metric: "palisade_hep_packets_dropped_total", label: "collector", value: "tcp:10.0.0.9:9060", reason: "collector_down", v: 3}}, nil},
		{"syslog collector unreachable", []series{
			{metric: "palisade_syslog_collector_up", label: "destination", value: "tcp://10.0.0.7:514", v: 0},
			{metric: "palisade_syslog_dropped_total", label: "destination", value: "tcp://10.0.0.7:514", reason: "unreachable", v: 2}},
			[]string{"syslog_collector_down|tcp://10.0.0.7:514|minor|syslog collector tcp://10.0.0.7:514 does not take messages: logs and call records for it are dropped"}},
		{"syslog queue full only", []series{
			{metric: "palisade_syslog_collector_up", label: "destination", value: "tcp://10.0.0.7:514", v: 0},
			{metric: "palisade_syslog_dropped_total", label: "destination", value: "tcp://10.0.0.7:514", reason: "queue_full", v: 2}}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			for _, s := range tc.set {
				labels := []string{s.label}
				values := []string{s.value}
				if s.reason != "" {
					labels, values = append(labels, "reason"), append(values, s.reason)
				}
				if strings.HasSuffix(s.metric, "_total") {
					c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: s.metric}, labels)
					reg.MustRegister(c)
					c.WithLabelValues(values...).Add(s.v)
				} else {
					g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: s.metric}, labels)
					reg.MustRegister(g)
					g.WithLabelValues(values...).Set(s.v)
				}
			}
			w := NewWatcher(reg)
			w.Explain(ACMEFailing, func(name string) string { return caErr[name] })
			var got []string
			for _, c := range w.Conditions(time.Now()) {
				got = append(got, strings.Join([]string{c.Kind, c.Subject, string(c.Severity), c.Text}, "|"))
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("conditions\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// The engine raises acme_failing while palisade_acme_failing is 1 and
// clears it when it returns to 0.
func TestACMEAlarmRaisedAndCleared(t *testing.T) {
	reg := prometheus.NewRegistry()
	failing := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "palisade_acme_failing"}, []string{"certificate"})
	reg.MustRegister(failing)
	w := NewWatcher(reg)
	e := NewEngine()
	e.gauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "a"}, []string{"kind", "subject", "severity"})
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	failing.WithLabelValues("public").Set(1)
	e.Update(t0, w.Conditions(t0))
	if act := e.Active(); len(act) != 1 || act[0].Kind != ACMEFailing || act[0].Subject != "public" || act[0].Severity != Major {
		t.Fatalf("active = %+v, want acme_failing for public", act)
	}
	failing.WithLabelValues("public").Set(0)
	e.Update(t0.Add(time.Minute), w.Conditions(t0.Add(time.Minute)))
	if act := e.Active(); len(act) != 0 {
		t.Fatalf("active after success = %+v", act)
	}
	if cl := e.Cleared(1); len(cl) != 1 || cl[0].Kind != ACMEFailing || !cl[0].Cleared.Equal(t0.Add(time.Minute)) {
		t.Fatalf("cleared = %+v", cl)
	}
}
