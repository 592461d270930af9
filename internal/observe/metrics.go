package observe

import (
	"strconv"
	"strings"
	"sync"

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
// that a peer inventing methods cannot grow the metric without limit. The
// value is the label itself (a constant, never a string of a message).
var knownMethods = map[string]string{}

func init() {
	for _, m := range []string{"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK",
		"UPDATE", "INFO", "MESSAGE", "NOTIFY", "SUBSCRIBE", "REFER", "PUBLISH"} {
		knownMethods[m] = m
	}
}

func methodLabel(m string) string {
	if l, ok := knownMethods[m]; ok {
		return l
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
	if h.Status == 0 && h.Method == "" {
		malformedDropped.WithLabelValues("sip_trace").Inc()
		return
	}
	k := sipCounterKey{leg: leg, dir: m.Dir, method: methodLabel(h.Method), status: h.Status}
	if c, ok := sipCounters.Load(k); ok {
		c.(prometheus.Counter).Inc()
		return
	}
	k.leg = strings.Clone(leg) // kept as a map key
	var c prometheus.Counter
	if h.Status != 0 {
		c = sipResponses.WithLabelValues(k.leg, dirLabel(m.Dir), k.method, strconv.Itoa(h.Status))
	} else {
		c = sipRequests.WithLabelValues(k.leg, dirLabel(m.Dir), k.method)
	}
	sipCounters.Store(k, c)
	c.Inc()
}

// sipCounters caches the counter of each label set countSIP has seen:
// looking the labels up in the vector on every message (hashing them, the
// status code made a string) showed in profiles under load. The key space
// is bounded like the labels: legs, two directions, known methods, codes.
var sipCounters sync.Map // sipCounterKey → prometheus.Counter

type sipCounterKey struct {
	leg, method string
	dir         Direction
	status      int
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
