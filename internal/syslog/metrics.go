package syslog

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	sentTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "syslog", Name: "sent_total",
		Help: "Messages sent to a remote syslog collector, by destination (transport://address) and kind (log, cdr).",
	}, []string{"destination", "kind"})
	droppedTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "syslog", Name: "dropped_total",
		Help: "Messages not sent to a remote syslog collector, by destination and reason (queue_full: the collector is slow or down; unreachable: no connection; send_error: the write failed).",
	}, []string{"destination", "reason"})
	collectorUp = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "palisade", Subsystem: "syslog", Name: "collector_up",
		Help: "1 while the last send to the collector succeeded (for udp: was written), 0 after a failure.",
	}, []string{"destination"})
	queueLength = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "palisade", Subsystem: "syslog", Name: "queue_length",
		Help: "Messages waiting for a collector.",
	}, []string{"destination"})
)
