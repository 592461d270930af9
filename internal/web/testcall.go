package web

import (
	"errors"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/palisade-sbc/palisade/internal/admin"
	"github.com/palisade-sbc/palisade/internal/observe"
)

// callData is the Test Call page.
type callData struct {
	Target  string
	From    string
	Caller  string
	Hold    string
	Ring    string
	Sources []string
	Result  *admin.CallResult
	Ladder  template.HTML
}

// callPage places a test call from the unit (POST) and shows its outcome
// and ladder.
func (s *server) callPage(w http.ResponseWriter, r *http.Request) {
	v := s.newView(r.Context(), r, "Test Call")
	d := callData{Target: strings.TrimSpace(r.FormValue("target")), From: r.FormValue("from"), Caller: strings.TrimSpace(r.FormValue("caller")),
		Hold: strings.TrimSpace(r.FormValue("hold")), Ring: strings.TrimSpace(r.FormValue("ring"))}
	if cfg, err := s.env.Config.Running(r.Context()); err == nil {
		d.Sources = names(cfg, "peers")
	}
	status := http.StatusOK
	if r.Method == http.MethodPost {
		req := admin.CallRequest{Target: d.Target, From: d.From, Caller: d.Caller}
		var problems []string
		for _, f := range []struct {
			in, name string
			out      *time.Duration
		}{{d.Hold, "Hold", &req.Hold}, {d.Ring, "Ring", &req.Ring}} {
			if f.in == "" {
				continue
			}
			dur, err := time.ParseDuration(f.in)
			if err != nil || dur <= 0 {
				problems = append(problems, f.name+" must be a duration such as 2s or 1m30s")
			}
			*f.out = dur
		}
		if d.Target == "" {
			problems = append(problems, "Number or SIP URI is needed")
		}
		if len(problems) > 0 {
			v.Problem, status = "Test Call: "+strings.Join(problems, "; ")+".", http.StatusBadRequest
		} else {
			res, err := admin.TestCall(s.env, r, req)
			if v.Problem, status = toolProblem("Test Call", err); err == nil {
				d.Result = res
				d.Ladder = s.ladder(r, "Test call to "+d.Target, res.Messages)
			}
		}
	}
	v.Data = d
	s.render(w, status, "call", v)
}

// toolProblem is the page's message and status for a tool's error.
func toolProblem(tool string, err error) (string, int) {
	var ae *admin.Error
	switch {
	case err == nil:
		return "", http.StatusOK
	case errors.As(err, &ae):
		return tool + ": " + ae.Message, ae.Status
	}
	return tool + ": " + err.Error(), http.StatusInternalServerError
}

// ladder draws a tool's messages (SVG, escaped by the ladder writer).
func (s *server) ladder(r *http.Request, title string, msgs []observe.Message) template.HTML {
	if len(msgs) == 0 {
		return ""
	}
	svg, err := admin.LadderSVG(s.env, r, title, msgs)
	if err != nil {
		return ""
	}
	return template.HTML(svg) //nolint:gosec // built by observe.WriteLadderNamed, which escapes every text
}
