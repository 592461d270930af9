package routing

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var dnsQueries = promauto.NewCounterVec(prometheus.CounterOpts{
	Namespace: "palisade", Subsystem: "routing", Name: "dns_queries_total",
	Help: "DNS queries sent for RFC 3263 resolution, by type and result (ok, nxdomain, error, cached).",
}, []string{"type", "result"})

// Resolver finds the transport targets of a hop: IP addresses are used as
// they are; names go through RFC 3263 (NAPTR → SRV → A/AAAA) with miekg/dns,
// answers cached for their TTL. It is safe for concurrent use.
type Resolver struct {
	servers []string
	client  *dns.Client
	intn    func(int) int

	mu    sync.Mutex
	cache map[cacheKey]cacheEntry
}

type cacheKey struct {
	name  string
	qtype uint16
}

type cacheEntry struct {
	rrs     []dns.RR
	extra   []dns.RR
	expires time.Time
}

// NewResolver returns a resolver asking servers (IP or IP:port). With no
// servers it reads /etc/resolv.conf.
func NewResolver(servers []string) (*Resolver, error) {
	var list []string
	for _, s := range servers {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if ap, err := netip.ParseAddrPort(s); err == nil {
			list = append(list, ap.String())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("dns server %q is not IP or IP:port", s)
		}
		list = append(list, netip.AddrPortFrom(a, 53).String())
	}
	if len(list) == 0 {
		cc, err := dns.ClientConfigFromFile("/etc/resolv.conf")
		if err == nil {
			for _, s := range cc.Servers {
				list = append(list, net.JoinHostPort(s, cc.Port))
			}
		}
	}
	return &Resolver{
		servers: list,
		client:  &dns.Client{Timeout: 2 * time.Second},
		intn:    rand.IntN,
		cache:   make(map[cacheKey]cacheEntry),
	}, nil
}

// Servers returns the DNS servers in use.
func (r *Resolver) Servers() []string { return r.servers }

func defaultPort(transport string) int {
	if transport == "tls" {
		return 5061
	}
	return 5060
}

// Resolve returns the targets of h in the order to try them (RFC 3263 §4).
func (r *Resolver) Resolve(ctx context.Context, h Hop) ([]Target, error) {
	tr := normTransport(h.Transport)
	secure := strings.EqualFold(h.Scheme, "sips")
	if secure && tr == "" {
		tr = "tls"
	}
	host := strings.TrimSuffix(strings.Trim(h.Host, "[]"), ".")
	if host == "" {
		return nil, errors.New("routing: hop without host")
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if tr == "" {
			tr = "udp"
		}
		port := h.Port
		if port == 0 {
			port = defaultPort(tr)
		}
		return []Target{{Addr: netip.AddrPortFrom(a.Unmap(), uint16(port)), Transport: tr}}, nil
	}
	if h.Port != 0 {
		if tr == "" {
			tr = "udp"
		}
		return r.hostTargets(ctx, host, h.Port, tr, host)
	}
	// RFC 3263 §4.1: NAPTR decides the transport when none is given.
	type srvName struct{ name, transport string }
	var srvs []srvName
	if tr == "" {
		// no NAPTR records is normal: fall through to SRV (§4.1)
		naptrs, _ := r.naptr(ctx, host, secure)
		for _, n := range naptrs {
			srvs = append(srvs, srvName{n.Replacement, n.transport})
		}
		if len(srvs) == 0 {
			if secure {
				srvs = []srvName{{"_sips._tcp." + host, "tls"}}
			} else {
				srvs = []srvName{{"_sip._udp." + host, "udp"}, {"_sip._tcp." + host, "tcp"}, {"_sips._tcp." + host, "tls"}}
			}
		}
	} else {
		srvs = []srvName{{srvPrefix(tr) + host, tr}}
	}
	var out []Target
	for _, s := range srvs {
		ts, err := r.srvTargets(ctx, s.name, s.transport, host)
		if err != nil {
			continue
		}
		out = append(out, ts...)
		if tr == "" && len(out) > 0 {
			break // the most preferred transport that has records wins
		}
	}
	if len(out) > 0 {
		return out, nil
	}
	// §4.2: no SRV records: A/AAAA with the default port.
	if tr == "" {
		tr = "udp"
		if secure {
			tr = "tls"
		}
	}
	return r.hostTargets(ctx, host, defaultPort(tr), tr, host)
}

func srvPrefix(tr string) string {
	switch tr {
	case "tls":
		return "_sips._tcp."
	case "tcp":
		return "_sip._tcp."
	default:
		return "_sip._udp."
	}
}

type naptrRec struct {
	*dns.NAPTR
	transport string
}

func (r *Resolver) naptr(ctx context.Context, host string, secure bool) ([]naptrRec, error) {
	rrs, _, err := r.lookup(ctx, host, dns.TypeNAPTR)
	if err != nil {
		return nil, err
	}
	var out []naptrRec
	for _, rr := range rrs {
		n, ok := rr.(*dns.NAPTR)
		if !ok || !strings.EqualFold(n.Flags, "s") {
			continue
		}
		var tr string
		switch strings.ToUpper(n.Service) {
		case "SIP+D2U":
			tr = "udp"
		case "SIP+D2T":
			tr = "tcp"
		case "SIPS+D2T":
			tr = "tls"
		default:
			continue
		}
		if secure && tr != "tls" {
			continue
		}
		out = append(out, naptrRec{n, tr})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Order != out[j].Order {
			return out[i].Order < out[j].Order
		}
		return out[i].Preference < out[j].Preference
	})
	return out, nil
}

func (r *Resolver) srvTargets(ctx context.Context, name, tr, domain string) ([]Target, error) {
	rrs, extra, err := r.lookup(ctx, name, dns.TypeSRV)
	if err != nil {
		return nil, err
	}
	var srvs []*dns.SRV
	var ts []Target
	for _, rr := range rrs {
		if s, ok := rr.(*dns.SRV); ok && s.Target != "." {
			srvs = append(srvs, s)
			ts = append(ts, Target{Priority: int(s.Priority), Weight: int(s.Weight)})
		}
	}
	if len(srvs) == 0 {
		return nil, errors.New("no SRV records")
	}
	var out []Target
	for _, i := range OrderByPriorityWeight(ts, r.intn) {
		s := srvs[i]
		addrs := addrsFrom(extra, s.Target)
		if len(addrs) == 0 {
			addrs, _ = r.addrs(ctx, s.Target)
		}
		for _, a := range addrs {
			out = append(out, Target{
				Addr: netip.AddrPortFrom(a, s.Port), Transport: tr,
				ServerName: domain, Priority: int(s.Priority), Weight: int(s.Weight),
			})
		}
	}
	return out, nil
}

func (r *Resolver) hostTargets(ctx context.Context, host string, port int, tr, serverName string) ([]Target, error) {
	addrs, err := r.addrs(ctx, host)
	if err != nil {
		return nil, err
	}
	out := make([]Target, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, Target{Addr: netip.AddrPortFrom(a, uint16(port)), Transport: tr, ServerName: serverName})
	}
	return out, nil
}

// addrs returns A then AAAA addresses of name.
func (r *Resolver) addrs(ctx context.Context, name string) ([]netip.Addr, error) {
	var out []netip.Addr
	var firstErr error
	for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
		rrs, _, err := r.lookup(ctx, name, qt)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		out = append(out, addrsFrom(rrs, "")...)
	}
	if len(out) == 0 {
		if firstErr == nil {
			firstErr = fmt.Errorf("no address records for %s", name)
		}
		return nil, firstErr
	}
	return out, nil
}

func addrsFrom(rrs []dns.RR, name string) []netip.Addr {
	var out []netip.Addr
	fq := dns.Fqdn(name)
	for _, rr := range rrs {
		if name != "" && !strings.EqualFold(rr.Header().Name, fq) {
			continue
		}
		switch v := rr.(type) {
		case *dns.A:
			if a, ok := netip.AddrFromSlice(v.A.To4()); ok {
				out = append(out, a)
			}
		case *dns.AAAA:
			if a, ok := netip.AddrFromSlice(v.AAAA); ok {
				out = append(out, a)
			}
		}
	}
	return out
}

// lookup asks the servers in turn and caches the answer for its lowest TTL
// (negative answers for 30 s).
func (r *Resolver) lookup(ctx context.Context, name string, qtype uint16) ([]dns.RR, []dns.RR, error) {
	name = dns.Fqdn(name)
	key := cacheKey{strings.ToLower(name), qtype}
	tname := dns.TypeToString[qtype]
	r.mu.Lock()
	if e, ok := r.cache[key]; ok && time.Now().Before(e.expires) {
		r.mu.Unlock()
		dnsQueries.WithLabelValues(tname, "cached").Inc()
		if e.rrs == nil {
			return nil, nil, fmt.Errorf("%s %s: no records (cached)", tname, name)
		}
		return e.rrs, e.extra, nil
	}
	r.mu.Unlock()
	if len(r.servers) == 0 {
		return nil, nil, errors.New("no DNS servers configured")
	}
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = true
	var lastErr error
	for _, srv := range r.servers {
		in, _, err := r.client.ExchangeContext(ctx, m, srv)
		if err == nil && in.Truncated {
			tcp := &dns.Client{Net: "tcp", Timeout: r.client.Timeout}
			in, _, err = tcp.ExchangeContext(ctx, m, srv)
		}
		if err != nil {
			lastErr = err
			dnsQueries.WithLabelValues(tname, "error").Inc()
			continue
		}
		var rrs []dns.RR
		ttl := uint32(3600)
		for _, rr := range in.Answer {
			if rr.Header().Rrtype == qtype || qtype == dns.TypeA || qtype == dns.TypeAAAA {
				rrs = append(rrs, rr)
				ttl = min(ttl, rr.Header().Ttl)
			}
		}
		exp := time.Now().Add(time.Duration(ttl) * time.Second)
		if len(rrs) == 0 {
			exp = time.Now().Add(30 * time.Second)
			dnsQueries.WithLabelValues(tname, "nxdomain").Inc()
		} else {
			dnsQueries.WithLabelValues(tname, "ok").Inc()
		}
		r.mu.Lock()
		if len(r.cache) > 10000 {
			clear(r.cache)
		}
		r.cache[key] = cacheEntry{rrs: rrs, extra: in.Extra, expires: exp}
		r.mu.Unlock()
		if len(rrs) == 0 {
			return nil, nil, fmt.Errorf("%s %s: no records", tname, name)
		}
		return rrs, in.Extra, nil
	}
	return nil, nil, fmt.Errorf("%s %s: %w", tname, name, lastErr)
}
