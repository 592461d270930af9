package web

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/palisade-sbc/palisade/internal/admin"
	"github.com/palisade-sbc/palisade/internal/config"
)

func path(format string, args ...any) string { return fmt.Sprintf(format, args...) }

func saveRegistrar(f *form, c *config.Config) {
	r := &c.Registrar
	r.Enabled = f.bool("enabled")
	r.MinExpires = f.int("min_expires", "registrar.min_expires")
	r.MaxExpires = f.int("max_expires", "registrar.max_expires")
	r.Domains = []string{}
	for _, row := range f.rows("domains", "domain") {
		r.Domains = append(r.Domains, row["domain"])
	}
	old := r.Users
	r.Users = []config.RegistrarUser{}
	for _, row := range f.rows("users", "username", "password") {
		u := config.RegistrarUser{Username: row["username"], Password: row["password"]}
		if u.Password == "" { // an untouched password field keeps the stored one
			if i := slices.IndexFunc(old, func(o config.RegistrarUser) bool { return o.Username == u.Username }); i >= 0 {
				u.Password = old[i].Password
			}
		}
		r.Users = append(r.Users, u)
	}
}

func saveAccounts(f *form, c *config.Config) {
	old := c.Peers
	c.Peers = []config.Peer{}
	cols := append([]string{"name", "!kind", "!profile", "!type", "!interface", "address", "domain",
		"!transport", "prefix", "username", "password", "realm", "!register", "expires", "options_interval", "headers",
		"!media_requirement", "!media_group"}, trunkCols...)
	for i, row := range f.rows("peers", cols...) {
		p := config.Peer{
			Name: row["name"], Kind: row["kind"], Profile: row["profile"], Type: row["type"], Interface: row["interface"],
			Address: row["address"], Domain: row["domain"], Transport: row["transport"], Prefix: row["prefix"],
			Auth: config.PeerAuth{Username: row["username"], Password: row["password"], Realm: row["realm"],
				Register: row["register"] == "yes", Expires: f.parseDur(row["expires"], path("peers[%d].auth.expires", i))},
			OptionsInterval: f.parseDur(row["options_interval"], path("peers[%d].options_interval", i)),
		}
		p.Headers = parseHeaders(f, row["headers"], path("peers[%d].headers", i))
		p.Trunk = parseTrunk(f, row, i)
		p.Media = config.PeerMedia{Requirement: row["media_requirement"], Group: row["media_group"]}
		// An empty password field keeps the stored password.
		if j := slices.IndexFunc(old, func(o config.Peer) bool { return o.Name == p.Name }); j >= 0 {
			o := old[j]
			if p.Auth.Password == "" {
				p.Auth.Password = o.Auth.Password
			}
		}
		c.Peers = append(c.Peers, p)
	}
}

func saveDialPlan(f *form, c *config.Config) {
	d := &c.DialPlan
	d.Rules = []config.DialRule{}
	// A rule is a group of rows: its first row carries the match fields
	// (and its own key as group), the rows after it carry the first row's
	// key and one forward-to destination each. Deleting a rule's first row
	// deletes the whole rule.
	_ = f.r.ParseForm()
	del := f.r.PostForm["dp.del"]
	group := ""
	var groups []string // the form key of each rule, for moving it
	for _, row := range f.rows("dp", "!group", "name", "!match", "pattern", "tail", "from_uri", "source", "time_class", "to", "rewrite", "timeout") {
		if slices.Contains(del, row["group"]) {
			continue
		}
		if row["group"] != group || len(d.Rules) == 0 {
			group = row["group"]
			groups = append(groups, group)
			rule := config.DialRule{Name: row["name"], Tail: row["tail"], FromURI: row["from_uri"], Source: row["source"], TimeClass: row["time_class"]}
			i := len(d.Rules)
			// "Every number" is a choice of its own: an empty pattern with
			// prefix, head or regex is a mistake, not a catch-all.
			switch pat := row["pattern"]; row["match"] {
			case "all":
				if pat != "" {
					f.fail(path("dial_plan.rules[%d].prefix", i), "Match \"all\" takes no pattern: clear it, or choose prefix, head or regex")
				}
			case "head":
				rule.Head = pat
			case "regex":
				rule.Regex = pat
			default:
				rule.Prefix = pat
			}
			if row["match"] != "all" && row["pattern"] == "" {
				f.fail(path("dial_plan.rules[%d].prefix", i), "give the %s to match, or choose Match \"all\" for a rule that takes every number", orDefault(row["match"], "prefix"))
			}
			d.Rules = append(d.Rules, rule)
		}
		i := len(d.Rules) - 1
		rule := &d.Rules[i]
		if row["to"] == "" && row["rewrite"] == "" && row["timeout"] == "" {
			continue
		}
		fw := config.Forward{Rewrite: row["rewrite"],
			Timeout: f.parseDur(row["timeout"], path("dial_plan.rules[%d].forward_to[%d].timeout", i, len(rule.ForwardTo)))}
		if strings.Contains(row["to"], ":") {
			fw.URI = row["to"]
		} else {
			fw.Peer = row["to"]
		}
		rule.ForwardTo = append(rule.ForwardTo, fw)
	}
	for i, rule := range d.Rules {
		if len(rule.ForwardTo) == 0 {
			f.fail(path("dial_plan.rules[%d].forward_to", i), "name at least one peer or URI to forward to")
		}
	}
	// ↑/↓ on a rule save the page with the rule moved one place.
	if dir, key, ok := strings.Cut(f.str("move"), ":"); ok && len(f.errs) == 0 {
		if i := slices.Index(groups, key); i >= 0 {
			switch {
			case dir == "up" && i > 0:
				d.Rules[i-1], d.Rules[i] = d.Rules[i], d.Rules[i-1]
			case dir == "down" && i < len(d.Rules)-1:
				d.Rules[i+1], d.Rules[i] = d.Rules[i], d.Rules[i+1]
			}
		}
	}
	d.TimeClasses = []config.TimeClass{}
	for _, row := range f.rows("tc", "name", "time_zone", "days", "start", "end") {
		w := config.TimeWindow{Days: lines(strings.ToLower(strings.ReplaceAll(row["days"], " ", ","))), Start: row["start"], End: row["end"]}
		i := slices.IndexFunc(d.TimeClasses, func(t config.TimeClass) bool { return t.Name == row["name"] })
		if i < 0 {
			d.TimeClasses = append(d.TimeClasses, config.TimeClass{Name: row["name"], TimeZone: row["time_zone"]})
			i = len(d.TimeClasses) - 1
		}
		d.TimeClasses[i].Windows = append(d.TimeClasses[i].Windows, w)
	}
}

// ruleMatch returns which kind of match a rule uses and its pattern ("all"
// for a rule without prefix, head or regex: it takes every number).
func ruleMatch(r config.DialRule) (string, string) {
	switch {
	case r.Regex != "":
		return "regex", r.Regex
	case r.Head != "":
		return "head", r.Head
	case r.Prefix != "":
		return "prefix", r.Prefix
	}
	return "all", ""
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// dpRow is one row of the dial plan table: a rule's destination, the
// first row of a rule also showing the rule's match fields.
type dpRow struct {
	R, F  int
	First bool
	Rule  config.DialRule
	config.Forward
}

// Key is the row's form key; Group is the key of its rule's first row.
func (r dpRow) Key() string   { return fmt.Sprintf("r%d-%d", r.R, r.F) }
func (r dpRow) Group() string { return fmt.Sprintf("r%d-0", r.R) }

// To is the destination as typed: a peer name or a URI.
func (r dpRow) To() string {
	if r.Peer != "" {
		return r.Peer
	}
	return r.URI
}

func dpRows(c *config.Config) []dpRow {
	var out []dpRow
	for ri, rule := range c.DialPlan.Rules {
		out = append(out, dpRow{R: ri, First: true, Rule: rule})
		for fi, fw := range rule.ForwardTo {
			if fi == 0 {
				out[len(out)-1].Forward = fw
				continue
			}
			out = append(out, dpRow{R: ri, F: fi, Rule: rule, Forward: fw})
		}
	}
	return out
}

func saveRouting(f *form, c *config.Config) {
	rt := &c.Routing
	rt.DNSOverride = []config.DNSOverride{}
	for _, row := range f.rows("dns", "domain", "host", "port", "!transport", "priority", "weight") {
		d := slices.IndexFunc(rt.DNSOverride, func(o config.DNSOverride) bool { return o.Domain == row["domain"] })
		if d < 0 {
			rt.DNSOverride = append(rt.DNSOverride, config.DNSOverride{Domain: row["domain"]})
			d = len(rt.DNSOverride) - 1
		}
		t := len(rt.DNSOverride[d].Targets)
		p := func(field string) string { return path("routing.dns_override[%d].targets[%d].%s", d, t, field) }
		rt.DNSOverride[d].Targets = append(rt.DNSOverride[d].Targets, config.Target{
			Host: row["host"], Port: f.atoi(row["port"], p("port")), Transport: row["transport"],
			Priority: f.atoi(row["priority"], p("priority")), Weight: f.atoi(row["weight"], p("weight")),
		})
	}
	f.r.ParseForm()
	rt.Order = []string{}
	for _, o := range f.r.PostForm["order"] {
		if o != "" {
			rt.Order = append(rt.Order, o)
		}
	}
	rt.Redirects = f.str("redirects")
	rt.StaticRegistrations = []config.StaticRegistration{}
	for _, row := range f.rows("static", "user", "forward_to", "!transport") {
		rt.StaticRegistrations = append(rt.StaticRegistrations, config.StaticRegistration{User: row["user"], ForwardTo: row["forward_to"], Transport: row["transport"]})
	}
	rt.Refer = config.Refer{
		Always: f.bool("refer_always"), NoReferSupport: f.bool("refer_no_refer"),
		NoReplacesSupport: f.bool("refer_no_replaces"), FromURIs: []string{}, UserAgents: []string{},
	}
	for _, row := range f.rows("refer_from", "uri") {
		rt.Refer.FromURIs = append(rt.Refer.FromURIs, row["uri"])
	}
	for _, row := range f.rows("refer_ua", "ua") {
		rt.Refer.UserAgents = append(rt.Refer.UserAgents, row["ua"])
	}
}

// dnsRow is one row of the DNS override table (a target with its domain).
type dnsRow struct {
	D, T   int
	Domain string
	config.Target
}

func dnsRows(c *config.Config) []dnsRow {
	var out []dnsRow
	for d, o := range c.Routing.DNSOverride {
		for t, tg := range o.Targets {
			out = append(out, dnsRow{D: d, T: t, Domain: o.Domain, Target: tg})
		}
		if len(o.Targets) == 0 {
			out = append(out, dnsRow{D: d, T: 0, Domain: o.Domain})
		}
	}
	return out
}

// suiteRow is one row of the crypto suite groups table.
type suiteRow struct {
	G, S  int
	Group string
	Suite string
}

func suiteRows(c *config.Config) []suiteRow {
	var out []suiteRow
	for g, grp := range c.Media.CryptoSuiteGroups {
		for s, su := range grp.Suites {
			out = append(out, suiteRow{G: g, S: s, Group: grp.Name, Suite: su})
		}
	}
	return out
}

// tcRow is one row of the time classes table (a window with its class).
type tcRow struct {
	C, W     int
	Name     string
	TimeZone string
	config.TimeWindow
}

func tcRows(c *config.Config) []tcRow {
	var out []tcRow
	for ci, tc := range c.DialPlan.TimeClasses {
		for wi, w := range tc.Windows {
			out = append(out, tcRow{C: ci, W: wi, Name: tc.Name, TimeZone: tc.TimeZone, TimeWindow: w})
		}
	}
	return out
}

// applyProfile applies an ITSP profile to the preliminary configuration.
func (s *server) applyProfile(w http.ResponseWriter, r *http.Request) {
	if r.PostFormValue("confirm") != "1" {
		s.previewProfile(w, r) // first the list of changes, then Apply
		return
	}
	ctx := r.Context()
	cfg, etag, err := s.env.Config.Preliminary(ctx)
	if err == nil {
		cfg, err = profileResult(r, cfg)
	}
	if err == nil {
		_, err = s.env.Config.SetPreliminary(ctx, cfg, etag, admin.Author(r))
	}
	if err == nil {
		redirectDone(w, r, "/traffic/accounts", "profile")
		return
	}
	v := s.failedChange(r, tab("SIP Traffic"), "SIP Accounts", err)
	s.render(w, http.StatusUnprocessableEntity, "accounts", v)
}

// parseHeaders reads "Name: value; Name2: value2".
func parseHeaders(f *form, s, p string) map[string]string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	out := map[string]string{}
	for _, part := range strings.Split(s, ";") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		k, v, ok := strings.Cut(part, ":")
		if !ok || strings.TrimSpace(k) == "" {
			f.fail(p, "write headers as Name: value; Name2: value2")
			return nil
		}
		out[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return out
}

// headerList shows a peer's extra headers in the form parseHeaders reads.
func headerList(h map[string]string) string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out []string
	for _, k := range keys {
		out = append(out, k+": "+h[k])
	}
	return strings.Join(out, "; ")
}
