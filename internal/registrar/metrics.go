package registrar

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	registersTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "registrar", Name: "registers_total",
		Help: "REGISTER requests answered by the local registrar, by result (ok, fetch, unregister, challenged, stale, wrong_password, locked, bad_request, interval_too_brief, forbidden, error).",
	}, []string{"result"})
	authFailures = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "registrar", Name: "auth_failures_total",
		Help: "Failed digest authentications at the local registrar, by reason (wrong_password, unknown_user, malformed, replay).",
	}, []string{"reason"})
	lockouts = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "registrar", Name: "lockouts_total",
		Help: "Sources locked out after repeated wrong passwords.",
	})
	bindingsGauge = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "palisade", Subsystem: "registrar", Name: "bindings",
		Help: "Contacts registered at the local registrar.",
	})
)
