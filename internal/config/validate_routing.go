package config

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Validation of the routing sections: routing, peers, dial_plan.

func (v *validator) routing() {
	r := v.c.Routing
	if len(r.Order) == 0 {
		v.add("routing.order", "is empty; list at least one of %s", strings.Join(RoutingSteps, ", "))
	}
	v.enumSet("routing.order", r.Order, RoutingSteps)
	domains := make([]string, len(r.DNSOverride))
	for i, o := range r.DNSOverride {
		p := fmt.Sprintf("routing.dns_override[%d]", i)
		domains[i] = strings.ToLower(o.Domain)
		if o.Domain != "" && !hostname(o.Domain) {
			v.add(p+".domain", "%q is not a domain name", o.Domain)
		}
		if len(o.Targets) == 0 {
			v.add(p+".targets", "is empty; list at least one target")
		}
		for j, t := range o.Targets {
			tp := fmt.Sprintf("%s.targets[%d]", p, j)
			v.host(tp+".host", t.Host, true)
			if t.Port != 0 {
				v.port(tp+".port", t.Port)
			}
			v.enum(tp+".transport", t.Transport, ListenerTransport)
			if t.Priority < 0 || t.Priority > 65535 {
				v.add(tp+".priority", "%d is outside 0-65535", t.Priority)
			}
			if t.Weight < 0 || t.Weight > 65535 {
				v.add(tp+".weight", "%d is outside 0-65535", t.Weight)
			}
		}
	}
	v.unique("routing.dns_override", "domain", domains)
	v.enum("routing.redirects", r.Redirects, RedirectModes)
	for i, s := range r.StaticRegistrations {
		p := fmt.Sprintf("routing.static_registrations[%d]", i)
		if s.User == "" {
			v.add(p+".user", "is empty")
		}
		v.sipURI(p+".forward_to", s.ForwardTo)
		if s.Transport != "" {
			v.enum(p+".transport", s.Transport, ListenerTransport)
		}
	}
	for i, u := range r.Refer.FromURIs {
		if strings.TrimSpace(u) == "" {
			v.add(fmt.Sprintf("routing.refer.from_uris[%d]", i), "is empty")
		}
	}
	for i, u := range r.Refer.UserAgents {
		if strings.TrimSpace(u) == "" {
			v.add(fmt.Sprintf("routing.refer.user_agents[%d]", i), "is empty")
		}
	}
}

var (
	prefixRE     = regexp.MustCompile(`^[0-9A-Za-z+*#._-]*$`)
	headerNameRE = regexp.MustCompile(`^[A-Za-z0-9!%'*+._~-]+$`)
)

func (v *validator) peerList() {
	names := make([]string, len(v.c.Peers))
	for i, pe := range v.c.Peers {
		p := fmt.Sprintf("peers[%d]", i)
		names[i] = pe.Name
		v.name(p+".name", pe.Name)
		if v.interfaces[pe.Name] {
			v.add(p+".name", "%q is also an interface name; dial plan sources would be ambiguous", pe.Name)
		}
		v.enum(p+".kind", pe.Kind, PeerKinds)
		if pe.Profile != "" {
			v.enum(p+".profile", pe.Profile, PeerProfiles)
		}
		if pe.Type != "" {
			v.enum(p+".type", pe.Type, PBXTypes)
		}
		v.ref(p+".interface", pe.Interface, v.interfaces, "network.interfaces")
		switch {
		case pe.Address == "" && pe.Domain == "":
			v.add(p, "needs an address or a domain")
		case pe.Address != "" && pe.Domain != "":
			v.add(p+".domain", "give an address or a domain, not both")
		case pe.Address != "":
			v.hostPort(p+".address", pe.Address, false)
		default:
			if !hostname(pe.Domain) {
				v.add(p+".domain", "%q is not a domain name", pe.Domain)
			}
		}
		v.enum(p+".transport", pe.Transport, PeerTransports)
		if !prefixRE.MatchString(pe.Prefix) {
			v.add(p+".prefix", "%q may hold only digits, letters and + * # . _ -", pe.Prefix)
		}
		a := pe.Auth
		if a.Register && a.Username == "" {
			v.add(p+".auth.username", "is empty, but auth.register is true")
		}
		if a.Password != "" && a.Username == "" {
			v.add(p+".auth.username", "is empty, but a password is set")
		}
		v.noNewline(p+".auth.username", a.Username)
		v.noNewline(p+".auth.realm", a.Realm)
		v.duration(p+".auth.expires", a.Expires)
		v.duration(p+".options_interval", pe.OptionsInterval)
		v.headerMap(p+".headers", pe.Headers)
		v.peerTrunk(p+".trunk", pe.Trunk)
		v.peerMedia(p+".media", pe)
	}
	v.unique("peers", "name", names)
}

// headerMap checks extra headers: SIP token names, values on one line.
func (v *validator) headerMap(path string, m map[string]string) {
	for _, h := range sortedKeys(m) {
		hp := joinKey(path, h)
		if !headerNameRE.MatchString(h) {
			v.add(hp, "%q is not a SIP header name", h)
		}
		v.noNewline(hp, m[h])
	}
}

var groupRefRE = regexp.MustCompile(`\$(\d+)|\$\{(\d+)\}`)

func (v *validator) dialPlan() {
	d := v.c.DialPlan
	names := make([]string, len(d.Rules))
	for i, r := range d.Rules {
		p := fmt.Sprintf("dial_plan.rules[%d]", i)
		names[i] = r.Name
		v.name(p+".name", r.Name)
		set := 0
		for _, s := range []string{r.Prefix, r.Head, r.Regex} {
			if s != "" {
				set++
			}
		}
		if set > 1 {
			v.add(p, "sets more than one of prefix, head and regex")
		}
		if !prefixRE.MatchString(r.Prefix) {
			v.add(p+".prefix", "%q may hold only digits, letters and + * # . _ -", r.Prefix)
		}
		if !prefixRE.MatchString(r.Head) {
			v.add(p+".head", "%q may hold only digits, letters and + * # . _ -", r.Head)
		}
		if r.Tail != "" {
			if r.Regex != "" {
				v.add(p+".tail", "applies to prefix or head, not to regex")
			} else if _, err := regexp.Compile("^[" + r.Tail + "]*$"); err != nil || strings.Contains(r.Tail, "]") {
				v.add(p+".tail", "%q is not a character set such as \"0-9\"", r.Tail)
			}
		}
		groups := 0
		if r.Regex != "" {
			re, err := regexp.Compile(r.Regex)
			if err != nil {
				v.add(p+".regex", "does not compile: %s", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
			} else {
				groups = re.NumSubexp()
			}
		}
		if r.Source != "" && !v.peers[r.Source] && !v.interfaces[r.Source] {
			v.add(p+".source", "%q is neither a peer nor an interface", r.Source)
		}
		if r.TimeClass != "" {
			v.ref(p+".time_class", r.TimeClass, v.timeClasses, "dial_plan.time_classes")
		}
		if len(r.ForwardTo) == 0 {
			v.add(p+".forward_to", "is empty; list at least one destination")
		}
		for j, f := range r.ForwardTo {
			fp := fmt.Sprintf("%s.forward_to[%d]", p, j)
			switch {
			case f.Peer == "" && f.URI == "":
				v.add(fp, "needs a peer or a uri")
			case f.Peer != "" && f.URI != "":
				v.add(fp, "give a peer or a uri, not both")
			case f.Peer != "":
				v.ref(fp+".peer", f.Peer, v.peers, "peers")
			default:
				v.sipURI(fp+".uri", f.URI)
			}
			for _, m := range groupRefRE.FindAllStringSubmatch(f.Rewrite, -1) {
				n, _ := strconv.Atoi(m[1] + m[2])
				if n > groups {
					if r.Regex == "" {
						v.add(fp+".rewrite", "refers to $%d but the rule has no regex", n)
					} else {
						v.add(fp+".rewrite", "refers to $%d but the regex has only %d capturing group(s)", n, groups)
					}
				}
			}
			v.noNewline(fp+".rewrite", f.Rewrite)
			v.duration(fp+".timeout", f.Timeout)
		}
	}
	v.unique("dial_plan.rules", "name", names)
	tcNames := make([]string, len(d.TimeClasses))
	for i, tc := range d.TimeClasses {
		p := fmt.Sprintf("dial_plan.time_classes[%d]", i)
		tcNames[i] = tc.Name
		v.name(p+".name", tc.Name)
		if tc.TimeZone != "" {
			if _, err := loadZone(tc.TimeZone); err != nil {
				v.add(p+".time_zone", "%q is not a known time zone (e.g. Europe/Stockholm)", tc.TimeZone)
			}
		}
		if len(tc.Windows) == 0 {
			v.add(p+".windows", "is empty; list at least one window")
		}
		for j, w := range tc.Windows {
			wp := fmt.Sprintf("%s.windows[%d]", p, j)
			if len(w.Days) == 0 {
				v.add(wp+".days", "is empty; list days such as mon, tue")
			}
			v.enumSet(wp+".days", w.Days, Weekdays)
			s, okS := clock(w.Start)
			e, okE := clock(w.End)
			if !okS {
				v.add(wp+".start", "%q is not a time of day (HH:MM, 00:00-24:00)", w.Start)
			}
			if !okE {
				v.add(wp+".end", "%q is not a time of day (HH:MM, 00:00-24:00)", w.End)
			}
			if okS && okE && s == e {
				v.add(wp+".end", "equals start; the window would be empty")
			}
		}
	}
	v.unique("dial_plan.time_classes", "name", tcNames)
}

// ParseClock parses "HH:MM" (00:00-24:00) into minutes after midnight.
func ParseClock(s string) (int, bool) { return clock(s) }

func clock(s string) (int, bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	h, err1 := strconv.Atoi(s[:2])
	m, err2 := strconv.Atoi(s[3:])
	if err1 != nil || err2 != nil || h < 0 || h > 24 || m < 0 || m > 59 || (h == 24 && m != 0) {
		return 0, false
	}
	return h*60 + m, true
}

var zoneCache sync.Map // name → *time.Location or error

// loadZone caches time zone lookups so that validation stays fast.
func loadZone(name string) (*time.Location, error) {
	if v, ok := zoneCache.Load(name); ok {
		if err, isErr := v.(error); isErr {
			return nil, err
		}
		return v.(*time.Location), nil
	}
	// LoadLocation accepts paths; names with ".." or a leading "/" are no zone.
	if strings.Contains(name, "..") || strings.HasPrefix(name, "/") || len(name) > 64 {
		return nil, fmt.Errorf("bad zone name")
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		zoneCache.Store(name, err)
		return nil, err
	}
	zoneCache.Store(name, loc)
	return loc, nil
}
