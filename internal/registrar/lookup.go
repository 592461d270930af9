package registrar

import (
	"cmp"
	"context"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/observe"
	"github.com/palisade-sbc/palisade/internal/routing"
)

// Lookup implements routing.RegistrarLookup: the live contacts registered
// for user at host, highest q first (the most recent first among equal q),
// followed by the user's static registrations. host must be a registrar
// domain or one of the unit's own addresses or names (then every domain is
// searched); bindings of users no longer configured are not used.
func (r *Registrar) Lookup(user, host string) []routing.Hop {
	s := r.set.Load()
	var hops []routing.Hop
	if s.enabled && user != "" {
		if _, ok := s.users[user]; ok {
			for _, aor := range s.aors(user, host) {
				hops = append(hops, r.contacts(s, aor)...)
			}
		}
	}
	for _, h := range s.static[user] {
		if h.User == "" {
			h.User = user
		}
		hops = append(hops, h)
	}
	return hops
}

// StaticLookup returns only the static registrations of a Request-URI
// user (routing.static_registrations), for a caller that forwards to them
// in addition to the normal route.
func (r *Registrar) StaticLookup(user string) []routing.Hop {
	var hops []routing.Hop
	for _, h := range r.set.Load().static[user] {
		if h.User == "" {
			h.User = user
		}
		hops = append(hops, h)
	}
	return hops
}

// aors lists the addresses of record user@host may mean.
func (s *settings) aors(user, host string) []string {
	host = strings.ToLower(strings.Trim(host, "[]"))
	if s.isDomain[host] {
		return []string{user + "@" + host}
	}
	if host == "" || s.localHosts[host] {
		out := make([]string, len(s.domains))
		for i, d := range s.domains {
			out[i] = user + "@" + d
		}
		return out
	}
	return nil
}

func (r *Registrar) contacts(s *settings, aor string) []routing.Hop {
	now := r.now()
	r.mu.Lock()
	bs := slices.Clone(r.bindings[aor])
	r.mu.Unlock()
	bs = live(bs, now)
	slices.SortStableFunc(bs, func(a, b Binding) int {
		if c := cmp.Compare(b.Q, a.Q); c != 0 {
			return c
		}
		return b.Updated.Compare(a.Updated)
	})
	hops := make([]routing.Hop, 0, len(bs))
	for _, b := range bs {
		if r.relayed(b) {
			if h, ok := r.relayHop(s, aor, b); ok {
				hops = append(hops, h)
				continue
			}
		}
		if h, ok := b.hop(); ok {
			hops = append(hops, h)
		}
	}
	return hops
}

// hop is where a request for the binding goes. A phone behind NAT
// registers a Contact address that cannot be reached; the unit then sends
// to the address the REGISTER came from, which the NAT keeps open (and
// which is the connection itself over TCP and TLS). The Contact's own
// address is used only over UDP when it is the address the REGISTER came
// from.
func (b Binding) hop() (routing.Hop, bool) {
	var u sip.Uri
	if err := sip.ParseUri(b.Contact, &u); err != nil {
		return routing.Hop{}, false
	}
	h := routing.Hop{Step: "registrar", Rule: "registered", Interface: b.Interface,
		Scheme: strings.ToLower(u.Scheme), User: u.User, Host: u.Host, Port: u.Port, Transport: b.Transport}
	src, err := netip.ParseAddrPort(b.Source)
	if err != nil {
		return h, true
	}
	ca, err := netip.ParseAddr(strings.Trim(u.Host, "[]"))
	sameAddr := err == nil && ca.Unmap() == src.Addr().Unmap()
	if !(b.Transport == "udp" && sameAddr) {
		h.Host, h.Port = src.Addr().Unmap().String(), int(src.Port())
	}
	return h, true
}

// Registration is one line of `palisade status registrations`: a phone's
// binding at the local registrar (kind local) or the unit's registration
// at a trunk (kind trunk, filled by the accounts package).
type Registration struct {
	Kind      string    `json:"kind"` // local | trunk
	AOR       string    `json:"aor"`
	Peer      string    `json:"peer,omitempty"`
	State     string    `json:"state"` // registered | registering | failed | disabled
	Contact   string    `json:"contact,omitempty"`
	Source    string    `json:"source,omitempty"`
	Transport string    `json:"transport,omitempty"`
	Interface string    `json:"interface,omitempty"`
	Q         float64   `json:"q,omitempty"`
	Expires   time.Time `json:"expires,omitzero"`
	ExpiresIn int       `json:"expires_in"` // seconds left
	UserAgent string    `json:"user_agent,omitempty"`
	LastError string    `json:"last_error,omitempty"`
}

// Registrations returns the live bindings, by address of record.
func (r *Registrar) Registrations() []Registration {
	now := r.now()
	r.mu.Lock()
	var out []Registration
	for aor, bs := range r.bindings {
		for _, b := range live(bs, now) {
			out = append(out, Registration{
				Kind: "local", AOR: aor, State: "registered", Contact: b.Contact, Source: b.Source,
				Transport: b.Transport, Interface: b.Interface, Q: float64(b.Q) / 1000,
				Expires: b.Expires, ExpiresIn: int(b.Expires.Sub(now).Seconds()), UserAgent: b.UserAgent,
			})
		}
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b Registration) int {
		return cmp.Or(cmp.Compare(a.AOR, b.AOR), cmp.Compare(b.Q, a.Q), cmp.Compare(a.Contact, b.Contact))
	})
	return out
}

// StatusSource is the "registrations" status: the local bindings followed
// by what more returns (the trunk registrations of the accounts package).
func (r *Registrar) StatusSource(more ...func() []Registration) observe.StatusSource {
	return observe.StatusSource{Kind: observe.StatusRegistrations, Status: func(context.Context) (any, error) {
		out := r.Registrations()
		for _, f := range more {
			out = append(out, f()...)
		}
		if out == nil {
			out = []Registration{}
		}
		return out, nil
	}}
}
