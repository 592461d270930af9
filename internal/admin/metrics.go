package admin

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	apiErrors = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "admin", Name: "api_errors_total",
		Help: "Admin API requests answered with an error, by class (4xx, 5xx).",
	}, []string{"class"})
	loginsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "admin", Name: "logins_total",
		Help: "Admin login attempts, by result (ok, bad_password, locked_out).",
	}, []string{"result"})
	panicsTotal = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "admin", Name: "handler_panics_total",
		Help: "Admin requests whose handler panicked (answered 500).",
	})
	deniedTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "admin", Name: "denied_requests_total",
		Help: "Admin requests refused before reaching a handler, by reason (network, csrf, unit: a bad or misused signature of another unit).",
	}, []string{"reason"})
)
