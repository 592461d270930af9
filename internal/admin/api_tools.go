package admin

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/observe"
	"github.com/palisade-sbc/palisade/internal/routing"
)

// Tools for the administrator: the dial-plan tester (which rule a number
// from a source takes, where it goes, with which number, and which time
// classes are in force). It reads the configuration only, so it works on a
// stopped unit's data directory too.
func init() {
	RegisterRoutes(func(rt *Routes) {
		rt.API("POST /api/v1/tools/route", toolsRoute)
	})
}

// RouteRequest asks where a call would go.
type RouteRequest struct {
	Number string `json:"number"`           // the dialled number (Request-URI user)
	Source string `json:"source,omitempty"` // the peer or interface the call comes from
	From   string `json:"from,omitempty"`   // From URI, for rules that match it
	Host   string `json:"host,omitempty"`   // Request-URI host (DNS override entries match it)
	// Config is "running" (default) or "preliminary" (test a plan before applying it).
	Config string    `json:"config,omitempty"`
	At     time.Time `json:"at,omitzero"` // when (default now; the time classes depend on it)
}

// RouteTarget is one destination, tried in order.
type RouteTarget struct {
	Peer      string        `json:"peer,omitempty"`
	URI       string        `json:"uri"`
	Number    string        `json:"number"` // the Request-URI user sent (after rewriting)
	Interface string        `json:"interface,omitempty"`
	Transport string        `json:"transport,omitempty"`
	Timeout   time.Duration `json:"timeout"` // ring time before the next target
}

// RouteResult is the answer of the dial-plan tester.
type RouteResult struct {
	Request     RouteRequest      `json:"request"`
	SourcePeer  string            `json:"source_peer,omitempty"`
	SourceIface string            `json:"source_interface,omitempty"`
	Step        string            `json:"step,omitempty"` // dns_override | registrar | dial_plan | default
	Rule        string            `json:"rule,omitempty"` // the dial plan rule that matched
	Match       string            `json:"match,omitempty"`
	Targets     []RouteTarget     `json:"targets"`
	TimeClasses []TimeClassActive `json:"time_classes"`
	Result      string            `json:"result"` // routed | no_route
	Message     string            `json:"message"`
	Notes       []string          `json:"notes,omitempty"`
}

// TimeClassActive says whether a time class is in force.
type TimeClassActive struct {
	Name   string `json:"name"`
	Active bool   `json:"active"`
}

func toolsRoute(env *Env, w http.ResponseWriter, r *http.Request) error {
	var req RouteRequest
	if err := DecodeJSON(r, &req); err != nil {
		return err
	}
	res, err := TestRoute(env, r, req)
	if err != nil {
		return err
	}
	return JSON(w, http.StatusOK, res)
}

// TestRoute runs the routing of the running (or preliminary) configuration
// for req, with every peer taken as reachable.
func TestRoute(env *Env, r *http.Request, req RouteRequest) (*RouteResult, error) {
	req.Number = strings.TrimSpace(req.Number)
	if req.Number == "" {
		return nil, Errorf(http.StatusBadRequest, "give the number to test")
	}
	var cfg *config.Config
	var err error
	switch req.Config {
	case "", "running":
		req.Config = "running"
		cfg, err = env.Config.Running(r.Context())
	case "preliminary":
		cfg, _, err = env.Config.Preliminary(r.Context())
	default:
		return nil, Errorf(http.StatusBadRequest, "config must be running or preliminary")
	}
	if err != nil {
		return nil, err
	}
	if req.At.IsZero() {
		req.At = time.Now()
	}
	res := &RouteResult{Request: req, Targets: []RouteTarget{}, TimeClasses: []TimeClassActive{}}
	rr := routing.Request{Method: "INVITE", User: req.Number, Host: req.Host, FromURI: req.From}
	switch src := req.Source; {
	case src == "":
	case slices.ContainsFunc(cfg.Peers, func(p config.Peer) bool { return p.Name == src }):
		i := slices.IndexFunc(cfg.Peers, func(p config.Peer) bool { return p.Name == src })
		rr.SourcePeer, rr.SourceInterface = src, cfg.Peers[i].Interface
	case slices.ContainsFunc(cfg.Network.Interfaces, func(i config.Interface) bool { return i.Name == src }):
		rr.SourceInterface = src
	default:
		return nil, Errorf(http.StatusBadRequest, "%q is neither a peer nor an interface of the %s configuration", src, req.Config)
	}
	res.SourcePeer, res.SourceIface = rr.SourcePeer, rr.SourceInterface
	tcs, err := routing.NewTimeClasses(cfg.DialPlan.TimeClasses)
	if err != nil {
		return nil, err
	}
	for _, tc := range cfg.DialPlan.TimeClasses {
		res.TimeClasses = append(res.TimeClasses, TimeClassActive{Name: tc.Name, Active: tcs.Active(tc.Name, req.At)})
	}
	table, err := routing.NewTable(cfg, nil)
	if err != nil {
		return nil, err
	}
	if slices.Contains(cfg.Routing.Order, "registrar") || len(cfg.Routing.Order) == 0 {
		res.Notes = append(res.Notes, "phones registered at the local registrar are not consulted by the tester")
	}
	hops, err := table.RouteAt(rr, nil, req.At)
	switch {
	case errors.Is(err, routing.ErrNoRoute):
		res.Result, res.Message = "no_route", "no rule matches: the call would be answered 404 Not Found"
		return res, nil
	case err != nil:
		res.Result, res.Message = "no_route", err.Error()
		return res, nil
	}
	res.Result, res.Step = "routed", hops[0].Step
	res.Rule = hops[0].Rule
	if i := slices.IndexFunc(cfg.DialPlan.Rules, func(d config.DialRule) bool { return d.Name == res.Rule }); i >= 0 && res.Rule != "" {
		res.Match = describeMatch(cfg.DialPlan.Rules[i])
	}
	for _, h := range hops {
		t := RouteTarget{Peer: h.Peer, Number: h.User, Interface: h.Interface, Transport: h.Transport, Timeout: h.Timeout}
		if t.Timeout == 0 {
			t.Timeout = table.NoAnswerTimeout()
		}
		scheme := h.Scheme
		if scheme == "" {
			scheme = "sip"
		}
		t.URI = scheme + ":" + h.User + "@" + h.Host
		if h.User == "" {
			t.URI = scheme + ":" + h.Host
		}
		if h.Port != 0 {
			t.URI += fmt.Sprintf(":%d", h.Port)
		}
		res.Targets = append(res.Targets, t)
	}
	switch res.Step {
	case "dial_plan":
		res.Message = fmt.Sprintf("dial plan rule %q matches", res.Rule)
	case "dns_override":
		res.Message = "the DNS override table routes the domain " + req.Host
	default:
		res.Message = "no dial plan rule matches; the default route applies (the peer on the other side, or the Request-URI's host)"
	}
	return res, nil
}

// describeMatch says in words what a rule matches.
func describeMatch(d config.DialRule) string {
	var parts []string
	switch {
	case d.Prefix != "":
		parts = append(parts, "numbers starting with "+d.Prefix+" (stripped)")
	case d.Head != "":
		parts = append(parts, "numbers starting with "+d.Head+" (kept)")
	case d.Regex != "":
		parts = append(parts, "numbers matching /"+d.Regex+"/")
	default:
		parts = append(parts, "every number")
	}
	if d.Tail != "" {
		parts = append(parts, "followed only by ["+d.Tail+"]")
	}
	if d.Source != "" {
		parts = append(parts, "from "+d.Source)
	}
	if d.FromURI != "" {
		parts = append(parts, "with From "+d.FromURI)
	}
	if d.TimeClass != "" {
		parts = append(parts, "while "+d.TimeClass+" is in force")
	}
	return strings.Join(parts, ", ")
}

// peerNamer names the peers of the running configuration by their literal
// address (with or without port) for the ladder's lanes.
func peerNamer(env *Env, r *http.Request) observe.PeerNamer {
	cfg, err := env.Config.Running(r.Context())
	if err != nil {
		return nil
	}
	byAddr, byIP := map[netip.AddrPort]string{}, map[netip.Addr]string{}
	for _, p := range cfg.Peers {
		if ap, err := netip.ParseAddrPort(p.Address); err == nil {
			byAddr[ap] = p.Name
		} else if ip, err := netip.ParseAddr(strings.Trim(p.Address, "[]")); err == nil {
			byIP[ip] = p.Name
		}
	}
	return func(a netip.AddrPort) string {
		if n, ok := byAddr[a]; ok {
			return n
		}
		return byIP[a.Addr()]
	}
}
