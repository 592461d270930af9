package admin

import (
	"bytes"
	"net/http"
	"strconv"
	"time"

	"github.com/palisade-sbc/palisade/internal/observe"
	"github.com/palisade-sbc/palisade/internal/pki"
	"github.com/palisade-sbc/palisade/internal/sip/b2bua"
)

// Status, calls, SIP traces, ladder diagrams, pcap export and call records
// (the observe package). Traces live in the running unit's memory; call
// records are in the store and are served on a stopped unit too.
func init() {
	RegisterRoutes(func(rt *Routes) {
		rt.API("GET /api/v1/calls", listCalls)
		rt.API("GET /api/v1/calls/{id}/trace", callTrace)
		rt.API("GET /api/v1/calls/{id}/ladder.svg", callLadder)
		rt.API("GET /api/v1/trace", traceWindow)
		rt.API("GET /api/v1/trace.pcap", tracePCAP)
		rt.API("GET /api/v1/cdr", listCDR)
	})
	for _, kind := range []string{observe.StatusCalls, observe.StatusRegistrations, observe.StatusPeers} {
		RegisterStatus(kind, observeStatus(kind))
	}
	RegisterStatus(observe.StatusCertificates, certificateStatus)
}

func needObserve(env *Env) (*observe.Service, error) {
	if !env.Running() {
		return nil, ErrUnitStopped
	}
	s := observeService(env)
	if s == nil {
		return nil, Errorf(http.StatusServiceUnavailable, "the observe subsystem is not part of this unit")
	}
	return s, nil
}

// observeStatus serves a status kind from the source a subsystem registered
// with the observe service; without one, peers come from the SIP layer's
// keepalive states (dated by the observe service) and other lists are empty.
func observeStatus(kind string) StatusFunc {
	return func(env *Env, r *http.Request) (any, error) {
		s := observeService(env)
		if s != nil {
			if src, ok := s.Sources.Get(kind); ok {
				return src.Status(r.Context())
			}
		}
		if kind == observe.StatusPeers && env.Live != nil && env.Live.Peers != nil {
			peers := PeerStatuses(env.Live.Peers.PeerStates())
			if s != nil {
				// The service also samples the states every second (the
				// composition root has it follow the SIP layer), to date
				// changes between two reads.
				return s.Peers.Observe(peers, time.Now()), nil
			}
			return peers, nil
		}
		return []any{}, nil
	}
}

// PeerStatuses converts the SIP layer's keepalive states for the status.
func PeerStatuses(in []b2bua.PeerState) []observe.PeerStatus {
	out := make([]observe.PeerStatus, 0, len(in))
	for _, p := range in {
		out = append(out, observe.PeerStatus{Name: p.Name, Up: p.Up, Failures: p.Failures,
			LastCheck: p.LastCheck, LastError: p.LastError, Keepalive: p.Keepalive, Targets: p.Targets})
	}
	return out
}

// certStatus is one line of the certificates status.
type certStatus struct {
	Name     string    `json:"name"`
	Kind     string    `json:"kind"` // private | ca
	State    string    `json:"state,omitempty"`
	Subject  string    `json:"subject,omitempty"`
	NotAfter time.Time `json:"not_after,omitzero"`
	DaysLeft int       `json:"days_left"`
	Chain    string    `json:"chain,omitempty"`
	UsedBy   []string  `json:"used_by,omitempty"`
}

// certificateStatus lists the running configuration's certificates with the
// days they have left (a source registered for "certificates" wins).
func certificateStatus(env *Env, r *http.Request) (any, error) {
	if s := observeService(env); s != nil {
		if src, ok := s.Sources.Get(observe.StatusCertificates); ok {
			return src.Status(r.Context())
		}
	}
	cfg, err := env.Config.Running(r.Context())
	if err != nil {
		return nil, err
	}
	certs := &pki.Certs{Store: env.Store}
	entries, err := certs.List(r.Context(), cfg)
	if err != nil {
		return nil, err
	}
	out := []certStatus{}
	for _, e := range entries {
		cs := certStatus{Name: e.Name, Kind: "private", State: e.State, UsedBy: e.UsedBy, Chain: e.ChainStatus.Message}
		if c := e.Certificate; c != nil {
			cs.Subject, cs.NotAfter, cs.DaysLeft = c.Subject, c.NotAfter, c.DaysLeft
		}
		out = append(out, cs)
	}
	for _, ca := range cfg.Certificates.CA {
		info, err := certs.ShowCA(r.Context(), cfg, ca.Name)
		if err != nil {
			out = append(out, certStatus{Name: ca.Name, Kind: "ca", State: "missing"})
			continue
		}
		c := info.Certificate
		out = append(out, certStatus{Name: ca.Name, Kind: "ca", State: "certificate", Subject: c.Subject,
			NotAfter: c.NotAfter, DaysLeft: c.DaysLeft})
	}
	return out, nil
}

func querySince(r *http.Request) (time.Time, error) {
	t, err := observe.ParseSince(r.URL.Query().Get("since"), time.Now())
	if err != nil {
		return t, Errorf(http.StatusBadRequest, "%v", err)
	}
	return t, nil
}

func queryFlag(r *http.Request, name string) bool {
	v := r.URL.Query().Get(name)
	return v == "1" || v == "true" || v == "yes"
}

// listCalls: GET /api/v1/calls?active=1|ended=1&since=&number=&call_id=&result=&q=&limit=
// (q is the web admin's search box: a number, a call id or a result).
func listCalls(env *Env, w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	t, err := querySince(r)
	if err != nil {
		return err
	}
	limit := 0
	if l := q.Get("limit"); l != "" {
		if limit, err = strconv.Atoi(l); err != nil || limit < 0 {
			return Errorf(http.StatusBadRequest, "limit must be a positive number")
		}
	}
	rows, err := observe.ListCalls(r.Context(), env.Store, observeService(env), observe.CallQuery{
		Active: queryFlag(r, "active"), Ended: queryFlag(r, "ended"), Since: t, Number: q.Get("number"),
		CallID: q.Get("call_id"), Result: q.Get("result"), Text: q.Get("q"), Limit: limit,
	})
	if err != nil {
		return err
	}
	if clusterWide(env, r) { // units.go: every unit's calls, with a unit column
		for i := range rows {
			rows[i].Unit = env.Live.Units.Unit()
		}
		rows = append(rows, fromOtherUnits(env, w, r, func(c *observe.CallRow, u string) { c.Unit = u })...)
		rows = byStart(rows, func(c *observe.CallRow) (time.Time, string) { return c.Start, c.ID }, true, limit)
	}
	if rows == nil {
		rows = []observe.CallRow{}
	}
	return JSON(w, http.StatusOK, rows)
}

// callMessages finds a traced call by the unit's id or a SIP Call-ID.
func callMessages(env *Env, r *http.Request) (observe.CallSummary, []observe.Message, error) {
	s, err := needObserve(env)
	if err != nil {
		return observe.CallSummary{}, nil, err
	}
	id := r.PathValue("id")
	if id == "" {
		id = r.URL.Query().Get("call")
	}
	sum, ok := s.Traces.Lookup(id)
	msgs, ok2 := s.Traces.Messages(sum.ID)
	if !ok || !ok2 {
		return sum, nil, Errorf(http.StatusNotFound, "no trace of call %q (it may be older than the trace buffer)", id)
	}
	return sum, msgs, nil
}

// callTrace: GET /api/v1/calls/{id}/trace — the call and its messages.
func callTrace(env *Env, w http.ResponseWriter, r *http.Request) error {
	sum, msgs, err := callMessages(env, r)
	if err != nil {
		return err
	}
	return JSON(w, http.StatusOK, struct {
		Call     observe.CallSummary `json:"call"`
		Messages []observe.Message   `json:"messages"`
	}{sum, msgs})
}

// callLadder: GET /api/v1/calls/{id}/ladder.svg
func callLadder(env *Env, w http.ResponseWriter, r *http.Request) error {
	sum, msgs, err := callMessages(env, r)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	title := "Call " + sum.ID
	if sum.From != "" || sum.To != "" {
		title += " " + sum.From + " → " + sum.To
	}
	if err := observe.WriteLadderNamed(&b, title, msgs, peerNamer(env, r)); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(b.Bytes())
	return err
}

// windowMessages returns ?call= messages, or those of ?since=[&until=].
func windowMessages(env *Env, r *http.Request) ([]observe.Message, error) {
	if r.URL.Query().Get("call") != "" {
		_, msgs, err := callMessages(env, r)
		return msgs, err
	}
	s, err := needObserve(env)
	if err != nil {
		return nil, err
	}
	from, err := querySince(r)
	if err != nil {
		return nil, err
	}
	if from.IsZero() {
		return nil, Errorf(http.StatusBadRequest, "give call=ID or since=DURATION")
	}
	until, err := observe.ParseSince(r.URL.Query().Get("until"), time.Now())
	if err != nil {
		return nil, Errorf(http.StatusBadRequest, "until: %v", err)
	}
	return s.Traces.Window(from, until), nil
}

// traceWindow: GET /api/v1/trace?call=ID|since=D — messages as JSON.
func traceWindow(env *Env, w http.ResponseWriter, r *http.Request) error {
	msgs, err := windowMessages(env, r)
	if err != nil {
		return err
	}
	if msgs == nil {
		msgs = []observe.Message{}
	}
	return JSON(w, http.StatusOK, msgs)
}

// tracePCAP: GET /api/v1/trace.pcap?call=ID|since=D
func tracePCAP(env *Env, w http.ResponseWriter, r *http.Request) error {
	msgs, err := windowMessages(env, r)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if err := observe.WritePCAP(&b, msgs); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/vnd.tcpdump.pcap")
	w.Header().Set("Content-Disposition", `attachment; filename="palisade-trace.pcap"`)
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(b.Bytes())
	return err
}

// listCDR: GET /api/v1/cdr?since=D[&format=csv]
func listCDR(env *Env, w http.ResponseWriter, r *http.Request) error {
	t, err := querySince(r)
	if err != nil {
		return err
	}
	if s := observeService(env); s != nil {
		s.Recorder.Flush() // records of calls that just ended are still queued
	}
	cdrs, _, err := observe.ListCDRs(r.Context(), env.Store, t)
	if err != nil {
		return err
	}
	if clusterWide(env, r) { // units.go: every unit's records, with a unit column
		for i := range cdrs {
			cdrs[i].Unit = env.Live.Units.Unit()
		}
		cdrs = append(cdrs, fromOtherUnits(env, w, r, func(c *observe.CDR, u string) { c.Unit = u })...)
		cdrs = byStart(cdrs, func(c *observe.CDR) (time.Time, string) { return c.Start, c.ID }, false, 0)
	}
	if r.URL.Query().Get("format") == "csv" {
		var b bytes.Buffer
		if err := observe.WriteCSV(&b, cdrs); err != nil {
			return err
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="palisade-cdr.csv"`)
		w.WriteHeader(http.StatusOK)
		_, err = w.Write(b.Bytes())
		return err
	}
	if cdrs == nil {
		cdrs = []observe.CDR{}
	}
	return JSON(w, http.StatusOK, cdrs)
}
