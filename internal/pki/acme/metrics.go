package acme

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	issued = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "acme", Name: "certificates_issued_total",
		Help: "Certificates obtained from the ACME CA and put in use, by certificate entry.",
	}, []string{"certificate"})
	failures = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "acme", Name: "failures_total",
		Help: "Failed attempts to obtain a certificate (CA refused, down, bad answer), by certificate entry.",
	}, []string{"certificate"})
	failing = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "palisade", Subsystem: "acme", Name: "failing",
		Help: "1 while the last attempt for a certificate failed (an alarm: the log has the CA's error), else 0.",
	}, []string{"certificate"})
	renewAt = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "palisade", Subsystem: "acme", Name: "renew_time_seconds",
		Help: "When a certificate is renewed (Unix time): two thirds into its life.",
	}, []string{"certificate"})
)
