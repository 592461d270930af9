package guard

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	refused = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "guard", Name: "refused_total",
		Help: "SIP requests the guard refused, by action (rejected = answered, dropped = ignored) and cause.",
	}, []string{"action", "cause"})
	blocks = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "guard", Name: "blocks_total",
		Help: "Sources blocked, by cause (rate, auth).",
	}, []string{"cause"})
	blockedSources = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "palisade", Subsystem: "guard", Name: "blocked_sources",
		Help: "Sources blocked now (refreshed every few seconds).",
	})
	cpuShare = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "palisade", Subsystem: "guard", Name: "cpu_share",
		Help: "The process's CPU use as a share of its usable cores (0-1).",
	})
	fdShare = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "palisade", Subsystem: "guard", Name: "fd_share",
		Help: "Open file descriptors as a share of the process limit (0-1).",
	})
	cpuOverloaded = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "palisade", Subsystem: "guard", Name: "cpu_overloaded",
		Help: "1 while new calls are refused because the CPU is saturated.",
	})
)
