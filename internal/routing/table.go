package routing

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/config"
)

// Table is the routing state built from one configuration. It is immutable
// after NewTable and safe for concurrent use.
type Table struct {
	order      []string
	overrides  map[string][]config.Target // lower-case domain → targets
	rules      []rule
	peers      []config.Peer
	peerByName map[string]int
	// peerIPs maps a peer's literal IP address to the peers there, to find
	// the source peer of a request.
	peerIPs   map[netip.Addr][]PeerAddr
	ifaces    []string
	noAnswer  time.Duration
	registrar RegistrarLookup
}

type rule struct {
	cfg  config.DialRule
	tcs  *TimeClasses   // dial_plan.time_classes, for cfg.TimeClass
	re   *regexp.Regexp // Regex, anchored
	tail *regexp.Regexp // Tail character set, anchored, nil = any
	rows []row
}

type row struct {
	peer    string
	uri     *sip.Uri
	rewrite string
	timeout time.Duration
}

// NewTable builds the routing table from cfg. reg may be nil.
func NewTable(cfg *config.Config, reg RegistrarLookup) (*Table, error) {
	t := &Table{
		order:      slices.Clone(cfg.Routing.Order),
		overrides:  make(map[string][]config.Target),
		peers:      slices.Clone(cfg.Peers),
		peerByName: make(map[string]int),
		peerIPs:    make(map[netip.Addr][]PeerAddr),
		noAnswer:   cfg.SIP.NoAnswerTimeout.D(),
		registrar:  reg,
	}
	if len(t.order) == 0 {
		t.order = []string{"dns_override", "registrar", "dial_plan"}
	}
	for _, ifc := range cfg.Network.Interfaces {
		t.ifaces = append(t.ifaces, ifc.Name)
	}
	for _, o := range cfg.Routing.DNSOverride {
		t.overrides[strings.ToLower(o.Domain)] = slices.Clone(o.Targets)
	}
	for i, p := range t.peers {
		t.peerByName[p.Name] = i
		host, port := splitHostPort(p.Address)
		if a, err := netip.ParseAddr(host); err == nil {
			t.peerIPs[a.Unmap()] = append(t.peerIPs[a.Unmap()], PeerAddr{Name: p.Name, Interface: p.Interface, Port: port})
		}
	}
	tcs, err := NewTimeClasses(cfg.DialPlan.TimeClasses)
	if err != nil {
		return nil, err
	}
	for i, rc := range cfg.DialPlan.Rules {
		r := rule{cfg: rc, tcs: tcs}
		where := fmt.Sprintf("dial_plan.rules[%d]", i)
		if rc.Regex != "" {
			re, err := regexp.Compile("^(?:" + rc.Regex + ")$")
			if err != nil {
				return nil, fmt.Errorf("%s.regex: %w", where, err)
			}
			r.re = re
		}
		if rc.Tail != "" {
			re, err := regexp.Compile("^[" + escapeClass(rc.Tail) + "]*$")
			if err != nil {
				return nil, fmt.Errorf("%s.tail: %w", where, err)
			}
			r.tail = re
		}
		for j, f := range rc.ForwardTo {
			rw := row{peer: f.Peer, rewrite: f.Rewrite, timeout: f.Timeout.D()}
			if f.URI != "" {
				u := &sip.Uri{}
				if err := sip.ParseUri(f.URI, u); err != nil {
					return nil, fmt.Errorf("%s.forward_to[%d].uri: %w", where, j, err)
				}
				if u.Host == "" {
					return nil, fmt.Errorf("%s.forward_to[%d].uri: %q has no host", where, j, f.URI)
				}
				rw.uri = u
			} else if _, ok := t.peerByName[f.Peer]; !ok {
				return nil, fmt.Errorf("%s.forward_to[%d].peer: no peer named %q", where, j, f.Peer)
			}
			r.rows = append(r.rows, rw)
		}
		t.rules = append(t.rules, r)
	}
	return t, nil
}

// escapeClass makes a tail specification like "0-9*#" safe inside [...]:
// ranges with '-' keep their meaning, everything else is literal.
func escapeClass(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch c {
		case '\\', ']', '[', '^':
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Peers returns the configured peers.
func (t *Table) Peers() []config.Peer { return t.peers }

// Peer returns the named peer.
func (t *Table) Peer(name string) (config.Peer, bool) {
	i, ok := t.peerByName[name]
	if !ok {
		return config.Peer{}, false
	}
	return t.peers[i], true
}

// SourcePeer returns the name of the peer whose literal address is ip, on
// any interface and port (see SourcePeerOn).
func (t *Table) SourcePeer(ip netip.Addr) string {
	if ps := t.peerIPs[ip.Unmap()]; len(ps) > 0 {
		return ps[0].Name
	}
	return ""
}

// SourcePeerOn returns the peer a request from src that arrived on
// interface iface comes from (literal addresses only).
func (t *Table) SourcePeerOn(iface string, src netip.AddrPort) string {
	return PickSourcePeer(t.peerIPs[src.Addr().Unmap()], iface, src.Port())
}

// PeerAddr is one peer at an IP address: where requests from it arrive.
type PeerAddr struct {
	Name      string
	Interface string // "" = any interface
	Port      int    // 0 = any port
}

// PickSourcePeer chooses among the peers at a request's source address. A
// peer of another interface never matches. A peer whose port is given wins
// on that port; otherwise a peer given without port matches; otherwise
// the one peer left at the address (a PBX sending from another port than
// it listens on, TCP and TLS from ephemeral ports). Several peers may
// share an address (a PBX and a trunk on one host) when their interface
// or port tells them apart; "" when nothing does.
func PickSourcePeer(cands []PeerAddr, iface string, port uint16) string {
	var anyPort, other []string
	for _, c := range cands {
		if c.Interface != "" && iface != "" && c.Interface != iface {
			continue
		}
		switch c.Port {
		case int(port):
			return c.Name
		case 0:
			anyPort = append(anyPort, c.Name)
		default:
			other = append(other, c.Name)
		}
	}
	if len(anyPort) > 0 {
		return anyPort[0]
	}
	if len(other) == 1 {
		return other[0]
	}
	return ""
}

// NoAnswerTimeout is the default ring time before the next hop.
func (t *Table) NoAnswerTimeout() time.Duration { return t.noAnswer }

// Route returns the hops for r in the order they are to be tried. up reports
// whether a peer is reachable (OPTIONS keepalive); hops to peers that are down
// are left out. It returns ErrNoRoute when nothing matches.
func (t *Table) Route(r Request, up func(peer string) bool) ([]Hop, error) {
	return t.RouteAt(r, up, time.Now())
}

// RouteAt is Route with the time classes evaluated at at (the dial-plan
// tester asks "where would this call go on Monday 09:00").
func (t *Table) RouteAt(r Request, up func(peer string) bool, at time.Time) ([]Hop, error) {
	if up == nil {
		up = func(string) bool { return true }
	}
	for _, step := range t.order {
		var hops []Hop
		switch step {
		case "dns_override":
			hops = t.override(r)
		case "registrar":
			if t.registrar != nil {
				hops = t.registrar.Lookup(r.User, r.Host)
			}
		case "dial_plan":
			var matched bool
			hops, matched = t.dialPlan(r, up, at)
			if matched && len(hops) == 0 {
				return nil, ErrAllDown
			}
		}
		if len(hops) > 0 {
			return hops, nil
		}
	}
	if hops := t.defaultRoute(r, up); len(hops) > 0 {
		return hops, nil
	}
	if down := t.defaultRoute(r, func(string) bool { return true }); len(down) > 0 {
		return nil, ErrAllDown // the default peer is there but down: 503, not 404
	}
	return nil, ErrNoRoute
}

// override orders the DNS override targets of the Request-URI domain by
// priority, and by weighted random choice within a priority (RFC 2782).
func (t *Table) override(r Request) []Hop {
	targets := t.overrides[strings.ToLower(r.Host)]
	if len(targets) == 0 {
		return nil
	}
	ts := make([]Target, len(targets))
	for i, tg := range targets {
		ts[i] = Target{Priority: tg.Priority, Weight: tg.Weight}
	}
	idx := OrderByPriorityWeight(ts, rand.IntN)
	hops := make([]Hop, 0, len(targets))
	for _, i := range idx {
		tg := targets[i]
		hops = append(hops, Hop{
			Step: "dns_override", Scheme: "sip", User: r.User, Host: tg.Host, Port: tg.Port,
			Transport: normTransport(tg.Transport),
		})
	}
	return hops
}

func (t *Table) dialPlan(r Request, up func(string) bool, at time.Time) ([]Hop, bool) {
	for _, ru := range t.rules {
		user, groups, ok := ru.match(r, at)
		if !ok {
			continue
		}
		var hops []Hop
		for _, rw := range ru.rows {
			newUser := user
			if rw.rewrite != "" {
				newUser = expand(rw.rewrite, user, r.User, groups)
			}
			var h Hop
			if rw.uri != nil {
				h = Hop{Scheme: strings.ToLower(rw.uri.Scheme), User: rw.uri.User, Host: rw.uri.Host, Port: rw.uri.Port}
				if h.User == "" || rw.rewrite != "" {
					h.User = newUser
				}
				if rw.uri.UriParams != nil {
					if tp, ok := rw.uri.UriParams.Get("transport"); ok {
						h.Transport = normTransport(tp)
					}
				}
			} else {
				if !up(rw.peer) {
					continue
				}
				h = t.peerHop(t.peers[t.peerByName[rw.peer]], newUser)
			}
			h.Step, h.Rule, h.Timeout = "dial_plan", ru.cfg.Name, rw.timeout
			hops = append(hops, h)
		}
		return hops, true // the first matching rule decides, even when all its peers are down
	}
	return nil, false
}

// match checks r against the rule. It returns the number to forward (prefix
// stripped, head kept) and the regex groups.
func (ru *rule) match(r Request, at time.Time) (string, []string, bool) {
	c := ru.cfg
	if c.TimeClass != "" && !ru.tcs.Active(c.TimeClass, at) {
		return "", nil, false
	}
	if c.Source != "" && c.Source != r.SourcePeer && c.Source != r.SourceInterface {
		return "", nil, false
	}
	if c.FromURI != "" && !matchURI(c.FromURI, r.FromURI) {
		return "", nil, false
	}
	user, rest := r.User, r.User
	var groups []string
	switch {
	case c.Prefix != "":
		if !strings.HasPrefix(r.User, c.Prefix) {
			return "", nil, false
		}
		rest = r.User[len(c.Prefix):]
		user = rest
	case c.Head != "":
		if !strings.HasPrefix(r.User, c.Head) {
			return "", nil, false
		}
		rest = r.User[len(c.Head):]
	case ru.re != nil:
		groups = ru.re.FindStringSubmatch(r.User)
		if groups == nil {
			return "", nil, false
		}
		rest = ""
	}
	if ru.tail != nil && !ru.tail.MatchString(rest) {
		return "", nil, false
	}
	return user, groups, true
}

// matchURI compares a configured From URI pattern with the request's From
// URI: exact (case-insensitive, "sip:" optional), or a prefix when the
// pattern ends in '*'.
func matchURI(pattern, uri string) bool {
	p := strings.ToLower(strings.TrimPrefix(strings.TrimPrefix(pattern, "sip:"), "sips:"))
	u := strings.ToLower(strings.TrimPrefix(strings.TrimPrefix(uri, "sip:"), "sips:"))
	if strings.HasSuffix(p, "*") {
		return strings.HasPrefix(u, p[:len(p)-1])
	}
	return p == u
}

// expand replaces $1..$9 with regex groups, ${user} with the matched number
// (prefix stripped) and ${ruri_user} with the original Request-URI user.
func expand(tmpl, user, orig string, groups []string) string {
	s := strings.ReplaceAll(tmpl, "${user}", user)
	s = strings.ReplaceAll(s, "${ruri_user}", orig)
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '$' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9' {
			n := int(s[i+1] - '0')
			if n < len(groups) {
				b.WriteString(groups[n])
			}
			i++
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// PeerHop is the hop for an out-of-dialog request to the named peer itself
// (OPTIONS keepalive).
func (t *Table) PeerHop(name string) (Hop, bool) {
	p, ok := t.Peer(name)
	if !ok {
		return Hop{}, false
	}
	return t.peerHop(p, ""), true
}

// peerHop is the hop that sends user to peer p.
func (t *Table) peerHop(p config.Peer, user string) Hop {
	h := Hop{Peer: p.Name, Interface: p.Interface, Scheme: "sip", User: user, Transport: normTransport(p.Transport), Headers: p.Headers}
	if p.Address != "" {
		h.Host, h.Port = splitHostPort(p.Address)
	} else {
		h.Host = p.Domain
	}
	return h
}

// defaultRoute is used when no step matched: requests from a PBX (by source
// peer, else by the interface its PBX peers use) go to the first ITSP peer
// that is up, requests from an ITSP to the first PBX peer that is up. An ITSP
// peer with a prefix only takes numbers starting with it (prefix stripped).
func (t *Table) defaultRoute(r Request, up func(string) bool) []Hop {
	fromKind := ""
	if r.SourcePeer != "" {
		if p, ok := t.Peer(r.SourcePeer); ok {
			fromKind = p.Kind
		}
	}
	if fromKind == "" {
		for _, p := range t.peers {
			if p.Interface == r.SourceInterface {
				fromKind = p.Kind
				break
			}
		}
	}
	want := ""
	switch fromKind {
	case "pbx":
		want = "itsp"
	case "itsp":
		want = "pbx"
	default:
		return nil
	}
	var hops []Hop
	for _, p := range t.peers {
		if p.Kind != want || !up(p.Name) {
			continue
		}
		user := r.User
		if want == "itsp" && p.Prefix != "" {
			if !strings.HasPrefix(user, p.Prefix) {
				continue
			}
			user = user[len(p.Prefix):]
		}
		h := t.peerHop(p, user)
		h.Step = "default"
		hops = append(hops, h)
		break
	}
	return hops
}

// splitHostPort splits "host[:port]" (IPv6 in brackets) without failing on a
// missing port.
func splitHostPort(s string) (string, int) {
	if s == "" {
		return "", 0
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().String(), int(ap.Port())
	}
	if strings.HasPrefix(s, "[") {
		if i := strings.Index(s, "]"); i > 0 {
			host := s[1:i]
			if p, err := strconv.ParseUint(strings.TrimPrefix(s[i+1:], ":"), 10, 16); err == nil {
				return host, int(p)
			}
			return host, 0
		}
	}
	if i := strings.LastIndexByte(s, ':'); i > 0 && strings.Count(s, ":") == 1 {
		// A port is 0-65535: "h:-1" or "h:70000" is no port (FuzzSplitHostPort).
		if p, err := strconv.ParseUint(s[i+1:], 10, 16); err == nil {
			return s[:i], int(p)
		}
	}
	return s, 0
}
