package pki

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	handshakeFailures = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "pki", Name: "tls_handshake_failures_total",
		Help: "Failed TLS handshakes (as server and as client), by cause (wrong_store, missing_intermediate, name_mismatch, unknown_ca, expired, not_yet_valid, revoked, no_client_certificate, wrong_usage, protocol_mismatch, cipher_mismatch, ...).",
	}, []string{"cause"})
	daysLeftGauge = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "palisade", Subsystem: "pki", Name: "certificate_days_left",
		Help: "Days until a certificate of the running configuration expires (negative: expired), by entry name; CA entries are named ca:NAME.",
	}, []string{"name"})
)
