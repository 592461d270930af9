package web

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// saves counts page saves and configuration changes made in the browser,
// by result: ok, invalid (field errors shown), stale (someone else changed
// the preliminary configuration), error.
var saves = promauto.NewCounterVec(prometheus.CounterOpts{
	Namespace: "palisade", Subsystem: "web", Name: "saves_total",
	Help: "Changes made in the web admin, by result (ok, invalid, stale, error).",
}, []string{"result"})
