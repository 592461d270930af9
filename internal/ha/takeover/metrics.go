package takeover

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	takeovers = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "ha", Name: "takeovers_total",
		Help: "Times this unit took the floating addresses over.",
	})
	adopted = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "ha", Name: "calls_adopted_total",
		Help: "Calls carried on by this unit after it took the floating addresses over.",
	})
	refused = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "ha", Name: "calls_refused_total",
		Help: "Call records a takeover could not use (another version, corrupt, ports in use); those calls are not carried on.",
	})
	owner = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "palisade", Subsystem: "ha", Name: "owner",
		Help: "1 while this unit owns the floating addresses, else 0.",
	})
	recordWrites = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "ha", Name: "record_writes_total",
		Help: "Call record writes to the cluster's store, by kind (put, delete).",
	}, []string{"kind"})
	recordBytes = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "ha", Name: "record_bytes_total",
		Help: "Bytes of call records written to the cluster's store.",
	})
	recordErrors = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "ha", Name: "record_write_errors_total",
		Help: "Call record writes that failed (tried again).",
	})
)
