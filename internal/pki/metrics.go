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
	// handshakes counts every TLS handshake the unit's configs see, by side
	// (server: a peer connected to a listener; client: the unit connected
	// out) and result: ok when the unit's own checks passed in
	// VerifyConnection, failed when a failure was counted above.
	handshakes = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "pki", Name: "tls_handshakes_total",
		Help: "TLS handshakes of SIP listeners and outgoing SIP TLS, by side (server, client) and result (ok, failed).",
	}, []string{"side", "result"})
	daysLeftGauge = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "palisade", Subsystem: "pki", Name: "certificate_days_left",
		Help: "Days until a certificate of the running configuration expires (negative: expired), by entry name; CA entries are named ca:NAME.",
	}, []string{"name"})
)
