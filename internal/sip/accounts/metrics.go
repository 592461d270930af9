package accounts

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	registersTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "accounts", Name: "registers_total",
		Help: "Registrations at trunks, by result (registered, failed).",
	}, []string{"result"})
	registeredGauge = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "palisade", Subsystem: "accounts", Name: "registered",
		Help: "1 while the unit is registered at the peer's trunk, 0 after a failure.",
	}, []string{"peer"})
)
