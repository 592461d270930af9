package observe

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics shared by the whole unit that no feature package owns. Feature
// packages keep their own (palisade_sip_*, palisade_media_*, palisade_pki_*);
// docs/metrics.md lists them all.
var (
	callsActive = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "palisade", Subsystem: "calls", Name: "active",
		Help: "Calls in progress, by direction (inbound, outbound, internal).",
	}, []string{"direction"})
	callsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "calls", Name: "total",
		Help: "Calls that ended, by direction and result (answered, busy, no_answer, cancelled, rejected, failed).",
	}, []string{"direction", "result"})
	callAttempts = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "calls", Name: "attempts_total",
		Help: "New calls (initial INVITEs accepted for routing), by direction; rate() gives attempts per second.",
	}, []string{"direction"})
	mediaPackets = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "calls", Name: "media_packets_total",
		Help: "Media packets of ended calls, by leg (a = caller's, b = callee's) and direction (in, out); added when a call ends.",
	}, []string{"leg", "direction"})
	mediaBytes = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "calls", Name: "media_bytes_total",
		Help: "Media bytes of ended calls, by leg and direction; added when a call ends.",
	}, []string{"leg", "direction"})
	mediaLost = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "calls", Name: "media_lost_packets_total",
		Help: "Media packets lost (sequence gaps) on ended calls, by leg; added when a call ends.",
	}, []string{"leg"})
	callDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "palisade", Subsystem: "calls", Name: "duration_seconds",
		Help:    "Talk time of answered calls, by direction.",
		Buckets: []float64{5, 15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600},
	}, []string{"direction"})

	sipRequests = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "observe", Name: "sip_requests_total",
		Help: "SIP requests seen by the unit on either leg, by interface, direction (in, out) and method.",
	}, []string{"leg", "direction", "method"})
	sipResponses = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "observe", Name: "sip_responses_total",
		Help: "SIP responses seen by the unit on either leg, by interface, direction (in, out), CSeq method and status code.",
	}, []string{"leg", "direction", "method", "code"})

	malformedDropped = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "observe", Name: "malformed_dropped_total",
		Help: "Malformed messages or packets dropped, by kind (sip, sdp, rtp, rtcp, srtp, http, ...).",
	}, []string{"kind"})
	traceDropped = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "observe", Name: "trace_dropped_messages_total",
		Help: "SIP messages not kept in a call's trace because the call (1000 messages, 4 MiB) or all traces (256 MiB) were full.",
	})
	cdrWrites = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "observe", Name: "cdr_writes_total",
		Help: "Call records written to the store, by result (ok, error).",
	}, []string{"result"})
	cdrPruned = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "observe", Name: "cdr_pruned_total",
		Help: "Call records deleted because they were older than observe.cdr_retention.",
	})
)

// knownMethods bounds the method label: anything else counts as "other", so
// that a peer inventing methods cannot grow the metric without limit.
var knownMethods = map[string]bool{
	"INVITE": true, "ACK": true, "BYE": true, "CANCEL": true, "OPTIONS": true,
	"REGISTER": true, "PRACK": true, "UPDATE": true, "INFO": true, "MESSAGE": true,
	"NOTIFY": true, "SUBSCRIBE": true, "REFER": true, "PUBLISH": true,
}

func methodLabel(m string) string {
	if knownMethods[m] {
		return m
	}
	return "other"
}

func dirLabel(d Direction) string {
	if d == Sent {
		return "out"
	}
	return "in"
}

// countSIP counts one traced message; the tracer sees every message of both
// legs, so the SIP layer needs no separate call.
func countSIP(m SIPMessage, h Head) {
	leg := m.Leg
	if len(leg) > 32 {
		leg = "other"
	}
	switch {
	case h.Status != 0:
		sipResponses.WithLabelValues(leg, dirLabel(m.Dir), methodLabel(h.Method), strconv.Itoa(h.Status)).Inc()
	case h.Method != "":
		sipRequests.WithLabelValues(leg, dirLabel(m.Dir), methodLabel(h.Method)).Inc()
	default:
		malformedDropped.WithLabelValues("sip_trace").Inc()
	}
}

// DroppedMalformed counts one malformed message or packet that was dropped.
// kind is a short fixed word naming what it was (sip, sdp, rtp, ...); never
// pass text from the message itself.
func DroppedMalformed(kind string) { malformedDropped.WithLabelValues(kind).Inc() }

// countMedia adds an ended call's media counters.
func countMedia(media [2]MediaLeg) {
	for i, leg := range []string{"a", "b"} {
		m := media[i]
		mediaPackets.WithLabelValues(leg, "in").Add(float64(m.PacketsIn))
		mediaPackets.WithLabelValues(leg, "out").Add(float64(m.PacketsOut))
		mediaBytes.WithLabelValues(leg, "in").Add(float64(m.BytesIn))
		mediaBytes.WithLabelValues(leg, "out").Add(float64(m.BytesOut))
		mediaLost.WithLabelValues(leg).Add(float64(m.Lost))
	}
}
