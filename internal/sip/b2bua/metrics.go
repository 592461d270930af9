package b2bua

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	badInput = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "sip", Name: "bad_input_total",
		Help: "SIP input refused, by reason (unparseable, bad_request, too_many_hops, loop, method_not_allowed, unsupported_uri_scheme, unsupported_media_type, bad_flow_token).",
	}, []string{"reason"})
	callsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "sip", Name: "calls_total",
		Help: "Calls ended, by result (answered, failed, canceled).",
	}, []string{"result"})
	callsActive = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "palisade", Subsystem: "sip", Name: "calls_active",
		Help: "Calls in progress (early or confirmed).",
	})
	requestsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "sip", Name: "requests_total",
		Help: "SIP requests received, by method.",
	}, []string{"method"})
	peerUp = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "palisade", Subsystem: "sip", Name: "peer_up",
		Help: "1 when the peer answers OPTIONS keepalives (or has none), 0 when marked down.",
	}, []string{"peer"})
	failovers = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "sip", Name: "failovers_total",
		Help: "Times an INVITE moved to the next target or dial plan row, by cause (timeout, transport, status, no_answer).",
	}, []string{"cause"})
)
