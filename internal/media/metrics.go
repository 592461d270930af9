package media

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Packet-path counters are updated per batch or only on the drop path, so
// that no cache line is shared by every call for every packet.
var (
	authFailures = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "media", Name: "srtp_auth_failures_total",
		Help: "SRTP/SRTCP packets dropped because they failed authentication (wrong key, forged or damaged).",
	})
	dropped = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "media", Name: "dropped_packets_total",
		Help: "Media packets dropped, by reason (unexpected_source, replay, malformed, not_ready, no_destination, truncated).",
	}, []string{"reason"})
	callsActive = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "palisade", Subsystem: "media", Name: "calls_active",
		Help: "Calls with media anchored by the relay.",
	})
	portsInUse = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "palisade", Subsystem: "media", Name: "ports_in_use",
		Help: "UDP ports of the media range held by calls in progress.",
	})
	portExhausted = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "media", Name: "port_exhaustion_total",
		Help: "Calls refused because the media port range was used up.",
	})
	negotiationErrors = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "media", Name: "negotiation_errors_total",
		Help: "Offers and answers refused, by reason (bad_sdp, not_acceptable).",
	}, []string{"reason"})
	inactivityTimeouts = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "media", Name: "inactivity_timeouts_total",
		Help: "Calls ended because no media arrived for media.inactivity_timeout.",
	})
	jitterSeconds = promauto.NewHistogram(prometheus.HistogramOpts{
		Namespace: "palisade", Subsystem: "media", Name: "jitter_seconds",
		Help:    "RTP interarrival jitter (RFC 3550) of each leg that received RTP, observed once when its call ends.",
		Buckets: []float64{0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5},
	})
	relayedPackets = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "media", Name: "relayed_packets_total",
		Help: "Media packets relayed (added when a call ends).",
	})
)

var (
	dropUnexpected = dropped.WithLabelValues("unexpected_source")
	dropReplay     = dropped.WithLabelValues("replay")
	dropMalformed  = dropped.WithLabelValues("malformed")
	dropNotReady   = dropped.WithLabelValues("not_ready")
	dropNoDest     = dropped.WithLabelValues("no_destination")
	dropTruncated  = dropped.WithLabelValues("truncated")
)
