package unit

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	applyTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "unit", Name: "config_applies_total",
		Help: "Configuration applies to the running unit, by result (ok, error).",
	}, []string{"result"})
	lastApplyOK = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "palisade", Subsystem: "unit", Name: "last_apply_successful",
		Help: "1 when the last configuration apply succeeded, 0 when it failed.",
	})
	rollbackFailures = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "unit", Name: "rollback_failures_total",
		Help: "Subsystems that failed to go back to the previous configuration after a failed apply.",
	})
)
