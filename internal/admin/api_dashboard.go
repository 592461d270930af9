package admin

import (
	"net/http"
	"time"

	"github.com/palisade-sbc/palisade/internal/observe"
	"github.com/palisade-sbc/palisade/internal/observe/alarms"
	hist "github.com/palisade-sbc/palisade/internal/observe/history"
	"github.com/palisade-sbc/palisade/internal/registrar"
)

// The dashboard's data: traffic figures from the unit's own history, the
// peers, certificates and registrations of the status, and the alarms.
func init() {
	RegisterRoutes(func(rt *Routes) {
		rt.API("GET /api/v1/dashboard", dashboard)
		rt.API("GET /api/v1/alarms", listAlarms)
		rt.API("GET /api/v1/history", listHistory)
		rt.API("GET /api/v1/history/{graph}", historyGraph)
	})
	// `palisade status alarms` and the alarms section of /api/v1/status.
	RegisterStatus("alarms", func(env *Env, r *http.Request) (any, error) {
		s := observeService(env)
		if s == nil {
			return []alarms.Alarm{}, nil
		}
		_, _ = observeStatus(observe.StatusPeers)(env, r)
		s.EvaluateAlarms(time.Now())
		return s.Alarms.Active(), nil
	})
}

// CertStatus is one line of the certificates status.
type CertStatus = certStatus

// WindowStats are the traffic figures of one stretch of time.
type WindowStats struct {
	Name string `json:"name"` // 5m, 1h, 24h
	hist.Stats
}

// Dashboard is everything the landing page shows.
type Dashboard struct {
	Time          time.Time                `json:"time"`
	ActiveCalls   int                      `json:"active_calls"`
	Stats         []WindowStats            `json:"stats"`
	Registrations []registrar.Registration `json:"registrations"`
	Peers         []observe.PeerStatus     `json:"peers"`
	Certificates  []CertStatus             `json:"certificates"`
	Alarms        []alarms.Alarm           `json:"alarms"`
	Cleared       []alarms.Alarm           `json:"cleared"` // the last cleared alarms, newest first
}

// dashboardWindows are the stretches the figures are given for.
var dashboardWindows = []struct {
	name    string
	minutes int
}{{"5m", 5}, {"1h", 60}, {"24h", hist.Minutes}}

// BuildDashboard gathers the dashboard of the running unit (the web admin's
// landing page shows the same).
func BuildDashboard(env *Env, r *http.Request) (*Dashboard, error) {
	s, err := needObserve(env)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	d := &Dashboard{Time: now, Registrations: []registrar.Registration{}, Peers: []observe.PeerStatus{}, Certificates: []CertStatus{}}
	if calls, ok := s.Sources.Get(observe.StatusCalls); ok {
		if v, err := calls.Status(r.Context()); err == nil {
			if l, ok := v.([]observe.CDR); ok {
				d.ActiveCalls = len(l)
			}
		}
	}
	for _, w := range dashboardWindows {
		samples := s.History.Last(now, w.minutes)
		d.Stats = append(d.Stats, WindowStats{Name: w.name, Stats: hist.Summarize(samples, time.Duration(w.minutes)*time.Minute)})
	}
	if v, err := observeStatus(observe.StatusRegistrations)(env, r); err == nil {
		if l, ok := v.([]registrar.Registration); ok {
			d.Registrations = l
		}
	}
	// Reading the peers notes their states for the alarms evaluated below.
	if v, err := observeStatus(observe.StatusPeers)(env, r); err == nil {
		if l, ok := v.([]observe.PeerStatus); ok {
			d.Peers = l
		}
	}
	if v, err := certificateStatus(env, r); err == nil {
		if l, ok := v.([]certStatus); ok {
			d.Certificates = l
		}
	}
	s.EvaluateAlarms(now)
	d.Alarms, d.Cleared = s.Alarms.Active(), s.Alarms.Cleared(20)
	return d, nil
}

func dashboard(env *Env, w http.ResponseWriter, r *http.Request) error {
	d, err := BuildDashboard(env, r)
	if err != nil {
		return err
	}
	return JSON(w, http.StatusOK, d)
}

// listAlarms: GET /api/v1/alarms — {"active": [...], "cleared": [...]}.
func listAlarms(env *Env, w http.ResponseWriter, r *http.Request) error {
	s, err := needObserve(env)
	if err != nil {
		return err
	}
	_, _ = observeStatus(observe.StatusPeers)(env, r) // notes the states for the peer-down check
	s.EvaluateAlarms(time.Now())
	return JSON(w, http.StatusOK, map[string][]alarms.Alarm{"active": s.Alarms.Active(), "cleared": s.Alarms.Cleared(200)})
}

// listHistory: GET /api/v1/history?minutes=N (default 60, at most a day) —
// the per-minute samples, oldest first.
func listHistory(env *Env, w http.ResponseWriter, r *http.Request) error {
	s, err := needObserve(env)
	if err != nil {
		return err
	}
	n, err := historyMinutes(r.URL.Query().Get("minutes"))
	if err != nil {
		return err
	}
	return JSON(w, http.StatusOK, s.History.Last(time.Now(), n))
}

func historyMinutes(q string) (int, error) {
	switch q {
	case "", "60", "hour":
		return 60, nil
	case "1440", "day":
		return hist.Minutes, nil
	}
	return 0, Errorf(http.StatusBadRequest, "minutes must be 60 (hour) or 1440 (day)")
}

// historyGraph: GET /api/v1/history/{calls|failures|media}.svg?range=hour|day
// — a chart of the unit's own history (a day is drawn in 10-minute points).
func historyGraph(env *Env, w http.ResponseWriter, r *http.Request) error {
	s, err := needObserve(env)
	if err != nil {
		return err
	}
	n, err := historyMinutes(r.URL.Query().Get("range"))
	if err != nil {
		return err
	}
	samples, per := s.History.Last(time.Now(), n), "minute"
	if n > 60 {
		samples, per = hist.Merge(samples, 10), "10 minutes"
	}
	svg, ok := HistoryChart(r.PathValue("graph"), samples, per)
	if !ok {
		return Errorf(http.StatusNotFound, "no graph %q (calls.svg, failures.svg, media.svg)", r.PathValue("graph"))
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "no-store")
	_, err = w.Write(svg)
	return err
}

// HistoryChart draws one of the dashboard's graphs; per says what one point
// covers ("minute", "10 minutes").
func HistoryChart(name string, samples []hist.Sample, per string) ([]byte, bool) {
	times := make([]time.Time, len(samples))
	col := func(f func(hist.Sample) float64) []float64 {
		out := make([]float64, len(samples))
		for i, s := range samples {
			out[i] = f(s)
		}
		return out
	}
	for i, s := range samples {
		times[i] = s.Minute
	}
	switch name {
	case "calls.svg":
		return hist.Chart("Calls", "calls per "+per, times,
			hist.Series{Name: "started", Color: "#1f6feb", Values: col(func(s hist.Sample) float64 { return float64(s.Attempts) })},
			hist.Series{Name: "answered", Color: "#2da44e", Values: col(func(s hist.Sample) float64 { return float64(s.Answered) })},
			hist.Series{Name: "peak in progress", Color: "#8250df", Values: col(func(s hist.Sample) float64 { return float64(s.PeakCalls) })}), true
	case "failures.svg":
		return hist.Chart("Failed calls", "calls per "+per, times,
			hist.Series{Name: "failed", Color: "#cf222e", Values: col(func(s hist.Sample) float64 { return float64(s.Failed) })}), true
	case "media.svg":
		return hist.Chart("Media quality", "loss % / jitter ms, per "+per, times,
			hist.Series{Name: "loss %", Color: "#cf222e", Values: col(hist.Sample.LossPct)},
			hist.Series{Name: "jitter ms", Color: "#bf8700", Values: col(hist.Sample.Jitter)}), true
	}
	return nil, false
}
