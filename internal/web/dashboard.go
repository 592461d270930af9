package web

import (
	"html/template"
	"net/http"
	"time"

	"github.com/palisade-sbc/palisade/internal/admin"
	"github.com/palisade-sbc/palisade/internal/human"
	"github.com/palisade-sbc/palisade/internal/observe"
	"github.com/palisade-sbc/palisade/internal/observe/alarms"
)

// The dashboard is the landing page: traffic figures, graphs, peers,
// certificates, registrations and alarms of the running unit.

func init() {
	now := time.Now
	more := template.FuncMap{
		"hdur":     human.Duration,
		"htime":    func(t time.Time) string { return human.Time(t, now()) },
		"hago":     func(t time.Time) string { return human.Ago(t, now()) },
		"hpct":     human.Percent,
		"hdays":    human.Days,
		"hcount":   human.Count,
		"peerWord": peerWord,
		"sevClass": func(s alarms.Severity) string {
			switch s {
			case alarms.Critical, alarms.Major:
				return "bad"
			case alarms.Minor:
				return "warn"
			}
			return "info"
		},
		"alarmName": func(kind string) string { return alarmNames[kind] },
		"windowName": func(name string) string {
			return map[string]string{"5m": "Last 5 minutes", "1h": "Last hour", "24h": "Last day"}[name]
		},
		"peerClass": func(state string) string {
			switch state {
			case observe.PeerUp:
				return "ok"
			case observe.PeerDown:
				return "bad"
			}
			return "warn"
		},
		"daysClass": func(days int) string {
			switch {
			case days < 7:
				return "bad"
			case days < 30:
				return "warn"
			}
			return "ok"
		},
	}
	for k, v := range more {
		funcs[k] = v
	}
}

// peerWord is a peer state in words.
func peerWord(state string) string {
	switch state {
	case observe.PeerUp:
		return "up"
	case observe.PeerDown:
		return "down"
	case observe.PeerUnchecked:
		return "not checked yet"
	case observe.PeerUnmonitored:
		return "not monitored (no OPTIONS)"
	}
	return state
}

// alarmNames are the alarm kinds in words.
var alarmNames = map[string]string{
	alarms.PeerDown:            "Peer down",
	alarms.CertificateExpiring: "Certificate expiring",
	alarms.CertificateExpired:  "Certificate expired",
	alarms.TLSHandshakeFailing: "TLS handshakes failing",
	alarms.RegistrationFailing: "Trunk registration failing",
	alarms.Overload:            "Overload: calls refused",
	alarms.ConfigReverted:      "Configuration reverted",
	alarms.StoreErrors:         "Store errors",
	alarms.StoreBehind:         "Cluster store behind this unit",
	alarms.ACMEFailing:         "ACME certificate failing",
	alarms.HEPCollectorDown:    "HEP collector down",
	alarms.SyslogCollectorDown: "Syslog collector down",
}

type dashboardData struct {
	*admin.Dashboard
	Range        string // hour | day
	LocalRegs    int
	TrunkRegs    int
	TrunkRegsBad int
}

func (s *server) dashboardPage(w http.ResponseWriter, r *http.Request) {
	v := s.newView(r.Context(), r, "Dashboard")
	d, err := admin.BuildDashboard(s.env, r)
	if err != nil {
		v.Problem = "The dashboard needs the running unit: " + err.Error()
		s.render(w, http.StatusOK, "dashboard", v)
		return
	}
	dd := dashboardData{Dashboard: d, Range: "hour"}
	if r.URL.Query().Get("range") == "day" {
		dd.Range = "day"
	}
	for _, reg := range d.Registrations {
		if reg.Kind == "trunk" {
			dd.TrunkRegs++
			if reg.State != "registered" {
				dd.TrunkRegsBad++
			}
		} else {
			dd.LocalRegs++
		}
	}
	v.Data = dd
	s.render(w, http.StatusOK, "dashboard", v)
}
