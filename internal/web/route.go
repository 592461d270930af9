package web

import (
	"errors"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/palisade-sbc/palisade/internal/admin"
	"github.com/palisade-sbc/palisade/internal/config"
)

// The dial-plan tester: a number and where the call comes from → the rule,
// the targets with the number sent to each, and the time classes in force.

type routeData struct {
	Number, Source, From, Config, At string
	Sources                          []string
	Result                           *admin.RouteResult
}

func (s *server) routePage(w http.ResponseWriter, r *http.Request) {
	v := s.newView(r.Context(), r, "Dial Plan Tester")
	q := r.URL.Query()
	d := routeData{Number: q.Get("number"), Source: q.Get("source"), From: q.Get("from"), Config: q.Get("config"), At: q.Get("at")}
	if d.Config == "" {
		d.Config = "running"
	}
	cfg, err := s.env.Config.Running(r.Context())
	if d.Config == "preliminary" {
		cfg, _, err = s.env.Config.Preliminary(r.Context())
	}
	if err == nil {
		d.Sources = append(names(cfg, "peers"), names(cfg, "interfaces")...)
	} else {
		cfg = config.Default()
	}
	status := http.StatusOK
	if d.Number != "" {
		req := admin.RouteRequest{Number: d.Number, Source: d.Source, From: d.From, Config: d.Config}
		if d.At != "" {
			at, err := time.ParseInLocation("2006-01-02T15:04", d.At, time.Local)
			if err != nil {
				v.Problem = "Dial Plan Tester: the time must look like 2026-12-07T09:30 (or leave it empty for now)."
				status = http.StatusBadRequest
			}
			req.At = at
		}
		if v.Problem == "" {
			res, err := admin.TestRoute(s.env, r, req)
			var ae *admin.Error
			switch {
			case errors.As(err, &ae):
				v.Problem, status = "Dial Plan Tester: "+ae.Message, ae.Status
			case err != nil:
				v.Problem, status = "Dial Plan Tester: "+err.Error(), http.StatusInternalServerError
			default:
				d.Result = res
			}
		}
	}
	v.Data = d
	s.render(w, status, "route", v)
}

// pingData is the OPTIONS ping page.
type pingData struct {
	Peer   string
	URI    string
	Peers  []string
	Result *admin.PingResult
	Ladder template.HTML // the OPTIONS and its answer, drawn
}

// pingPage sends one OPTIONS to a peer or a SIP URI (POST) and shows the
// answer with both messages and their ladder.
func (s *server) pingPage(w http.ResponseWriter, r *http.Request) {
	v := s.newView(r.Context(), r, "OPTIONS Ping")
	d := pingData{Peer: r.FormValue("peer"), URI: strings.TrimSpace(r.FormValue("uri"))}
	if cfg, err := s.env.Config.Running(r.Context()); err == nil {
		d.Peers = names(cfg, "peers")
	}
	status := http.StatusOK
	if r.Method == http.MethodPost {
		dest := d.Peer
		if d.URI != "" {
			dest = d.URI
		}
		res, err := admin.Ping(s.env, r, dest)
		if v.Problem, status = toolProblem("OPTIONS Ping", err); err == nil {
			d.Result = res
			d.Ladder = s.ladder(r, "OPTIONS to "+res.Name(), res.Messages)
		}
	}
	v.Data = d
	s.render(w, status, "ping", v)
}
