package vip

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Labelled by the floating address: a short list from the configuration.
var (
	ownedGauge = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "palisade", Subsystem: "vip", Name: "owned",
		Help: "1 while this unit carries the floating address, else 0.",
	}, []string{"address"})
	takenTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "vip", Name: "taken_total",
		Help: "Times this unit took the floating address (won the election and added it).",
	}, []string{"address"})
	fencedTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "vip", Name: "fenced_total",
		Help: "Times this unit removed the floating address because its lease was not renewed in time.",
	}, []string{"address"})
)
