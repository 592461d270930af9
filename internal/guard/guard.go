// Package guard protects the SIP side of the unit from the outside: only
// configured peers may start dialogs on restricted interfaces, sources that
// send too much are ignored for a while (like Kamailio's pike), sources that
// try passwords are blocked, and new calls are refused with 503 when the
// unit is at its call limits or its CPU is saturated. Calls in progress are
// never shed.
//
// Check is on the hot path of every SIP request: it reads an atomic policy
// pointer, a sharded per-source table and atomic counters; no lock is shared
// by all requests.
package guard

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/observe"
)

// SubsystemName is the guard's name in the unit.
const SubsystemName = "guard"

// Fixed parts of the policy; the tunable ones are in config sip.*.
const (
	// rateWindow is the window over which sip.source_rate_limit is averaged.
	rateWindow = 2 * time.Second
	// authAttempts is how many requests with credentials one non-peer source
	// may send per authWindow before it is blocked: a phone refreshing its
	// registration and placing calls stays far below, a password scanner
	// (svcrack) goes over within seconds.
	authAttempts = 30
	authWindow   = time.Minute
	// authFailures is how many failed authentications reported by the
	// registrar (AuthFailed) block a source within authWindow.
	authFailures = 10
	// retryAfter is the Retry-After (seconds) of 503 answers.
	retryAfter = 5
)

// Action is what the B2BUA does with a request.
type Action uint8

const (
	// Allow lets the request through.
	Allow Action = iota
	// Reject answers the request with Verdict.Code (403 or 503).
	Reject
	// Drop ignores the request: no answer at all.
	Drop
)

// Verdict is Check's answer.
type Verdict struct {
	Action     Action
	Code       int    // for Reject
	Reason     string // reason phrase for Reject
	RetryAfter int    // seconds, for 503; 0 = no Retry-After header
	Cause      string // metric label: unknown_source, blocked, rate, auth, max_calls, call_rate, cpu
}

var allow = Verdict{Action: Allow}

// Request is what Check needs to know about one SIP request.
type Request struct {
	Source    netip.AddrPort
	Interface string // interface the request arrived on
	Method    string
	// InDialog is true for requests inside an existing dialog (To tag) and
	// for ACK/CANCEL: they are never refused for overload or access.
	InDialog bool
	// Peer is the configured peer the source belongs to as the routing
	// layer sees it ("" = none); Check also matches literal peer addresses.
	Peer string
	// TLSNames are the DNS names and common name of the verified TLS client
	// certificate, when the request came over mutual TLS.
	TLSNames []string
	// HasCredentials: the request carries Authorization or
	// Proxy-Authorization.
	HasCredentials bool
	// Calls is the number of calls in progress.
	Calls int
	// Malformed is the status for a request with defects the parser let
	// through (400, 505); 0 = none found.
	Malformed       int
	MalformedReason string
}

// policy is everything derived from one configuration; swapped as a whole.
type policy struct {
	mode       string          // reject | drop | accept
	restricted map[string]bool // interface names
	maxCalls   int
	maxRate    int64
	srcLimit   int // requests per rateWindow; 0 = off
	blockTime  time.Duration
	peers      map[string]peerInfo     // by name
	peerAddrs  map[netip.Addr][]string // literal peer addresses -> peer names
	certPeers  *CertPeers              // peers by the names of their certificates
	ranges     *PeerRanges             // peers by trunk.ranges
}

type peerInfo struct{ iface string }

// Guard is the SIP access control and overload guard (a unit.Subsystem).
type Guard struct {
	log     *slog.Logger
	limited *observe.LimitedLogger
	pol     atomic.Pointer[policy]
	sources sourceTable

	rateSec atomic.Int64 // unix second of the call-rate window
	rateN   atomic.Int64 // new calls in that second

	cpu  cpuMonitor
	mu   sync.Mutex    // guards stop
	stop chan struct{} // closes the sampler; nil while none runs
	now  func() time.Time
}

// New returns a guard following cfg (nil = defaults). The CPU monitor
// starts with the first Apply.
func New(cfg *config.Config, log *slog.Logger) *Guard {
	if log == nil {
		log = slog.Default()
	}
	g := &Guard{log: log.With("subsystem", SubsystemName), now: time.Now}
	g.limited = observe.NewLimitedLogger(g.log, 10*time.Second, 5)
	g.sources.init()
	g.cpu.init()
	if cfg == nil {
		cfg = config.Default()
	}
	g.pol.Store(buildPolicy(cfg))
	return g
}

func buildPolicy(cfg *config.Config) *policy {
	s := cfg.SIP
	p := &policy{
		mode: s.UnknownSource, restricted: map[string]bool{}, maxCalls: s.MaxCalls,
		maxRate: int64(s.MaxCallRate), srcLimit: s.SourceRateLimit * int(rateWindow/time.Second),
		blockTime: s.SourceBlockTime.D(), peers: map[string]peerInfo{},
		peerAddrs: map[netip.Addr][]string{}, certPeers: NewCertPeers(cfg.Peers),
		ranges: NewPeerRanges(cfg.Peers),
	}
	if p.mode == "" {
		p.mode = "reject"
	}
	if p.blockTime <= 0 {
		p.blockTime = time.Minute
	}
	for _, n := range s.RestrictedInterfaces {
		p.restricted[n] = true
	}
	for _, peer := range cfg.Peers {
		p.peers[peer.Name] = peerInfo{iface: peer.Interface}
		host := peer.Address
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.Trim(host, "[]")
		if a, err := netip.ParseAddr(host); err == nil {
			p.peerAddrs[a.Unmap()] = append(p.peerAddrs[a.Unmap()], peer.Name)
		}
	}
	return p
}

// Name implements unit.Subsystem.
func (g *Guard) Name() string { return SubsystemName }

// Apply implements unit.Subsystem: the new policy replaces the old one at
// once; the per-source state (blocks in force) is kept.
func (g *Guard) Apply(_ context.Context, cfg *config.Config) error {
	g.pol.Store(buildPolicy(cfg))
	g.mu.Lock()
	if g.stop == nil { // first Apply, or the first after a Close
		g.stop = make(chan struct{})
		go g.run(g.stop)
	}
	g.mu.Unlock()
	return nil
}

// Drain implements unit.Subsystem; the guard has no work in progress.
func (g *Guard) Drain(context.Context) error { return nil }

// Close implements unit.Subsystem.
func (g *Guard) Close() error {
	g.mu.Lock()
	if g.stop != nil {
		close(g.stop)
		g.stop = nil
	}
	g.mu.Unlock()
	return nil
}

// run samples the CPU and prunes the source table until Close.
func (g *Guard) run(stop chan struct{}) {
	t := time.NewTicker(cpuSampleEvery)
	defer t.Stop()
	prune := 0
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if on, changed := g.cpu.sample(); changed {
			if on {
				g.log.Warn("CPU overloaded: new calls are refused with 503 until it recovers", "cpu", g.cpu.last())
			} else {
				g.log.Info("CPU load back to normal; new calls accepted", "cpu", g.cpu.last())
			}
		}
		if on, changed := g.cpu.sampleFDs(); changed {
			if on {
				g.log.Warn("file descriptors nearly used up: new calls are refused with 503 until calls end")
			} else {
				g.log.Info("file descriptor use back to normal; new calls accepted")
			}
		}
		if prune++; prune >= 20 {
			prune = 0
			blockedSources.Set(float64(g.sources.prune(g.now())))
		}
	}
}

// isPeer reports whether r comes from a configured peer allowed on its
// interface.
func (p *policy) isPeer(r *Request) bool {
	onIface := func(name string) bool {
		pi, ok := p.peers[name]
		return ok && (pi.iface == "" || pi.iface == r.Interface)
	}
	if r.Peer != "" && onIface(r.Peer) {
		return true
	}
	for _, n := range p.peerAddrs[r.Source.Addr().Unmap()] {
		if onIface(n) {
			return true
		}
	}
	return p.certPeers.Lookup(r.TLSNames, r.Interface) != "" || p.ranges.Lookup(r.Source.Addr(), r.Interface) != ""
}

// Check decides what happens to one request.
func (g *Guard) Check(r Request) Verdict {
	p := g.pol.Load()
	peer := p.isPeer(&r)
	src := r.Source.Addr().Unmap()
	now := g.now()
	if !peer {
		// Per-source limits (pike): peers are trusted and exempt, so that a
		// trunk's busy hour never blocks the trunk.
		if v, blocked := g.sources.hit(src, now, p, r.HasCredentials); blocked {
			return g.refuse(v, r, src)
		}
	}
	if r.Malformed != 0 && r.Method != "ACK" {
		return g.refuse(Verdict{Action: Reject, Code: r.Malformed, Reason: r.MalformedReason, Cause: "malformed"}, r, src)
	}
	if r.InDialog {
		return allow
	}
	if !peer && p.restricted[r.Interface] && p.mode != "accept" {
		if p.mode == "drop" {
			return g.refuse(Verdict{Action: Drop, Cause: "unknown_source"}, r, src)
		}
		return g.refuse(Verdict{Action: Reject, Code: 403, Reason: "Forbidden", Cause: "unknown_source"}, r, src)
	}
	if r.Method != "INVITE" {
		return allow
	}
	switch {
	case p.maxCalls > 0 && r.Calls >= p.maxCalls:
		return g.refuse(overloaded("max_calls"), r, src)
	case g.cpu.overloaded.Load():
		return g.refuse(overloaded("cpu"), r, src)
	case g.cpu.fdsHigh.Load():
		return g.refuse(overloaded("fds"), r, src)
	case p.maxRate > 0 && g.overRate(now, p.maxRate):
		return g.refuse(overloaded("call_rate"), r, src)
	}
	return allow
}

func overloaded(cause string) Verdict {
	return Verdict{Action: Reject, Code: 503, Reason: "Service Unavailable", RetryAfter: retryAfter, Cause: cause}
}

// overRate counts one new call in the current second and reports whether
// the call rate is over max. The window switch races benignly: at worst a
// few calls more or less are counted in a second.
func (g *Guard) overRate(now time.Time, max int64) bool {
	sec := now.Unix()
	if old := g.rateSec.Load(); old != sec && g.rateSec.CompareAndSwap(old, sec) {
		g.rateN.Store(0)
	}
	return g.rateN.Add(1) > max
}

// refuse counts and logs (at a bounded rate) a refused request.
func (g *Guard) refuse(v Verdict, r Request, src netip.Addr) Verdict {
	action := "rejected"
	if v.Action == Drop {
		action = "dropped"
	}
	refused.WithLabelValues(action, v.Cause).Inc()
	g.limited.Warn("guard-"+v.Cause, "SIP request refused by the guard", "cause", v.Cause, "action", action,
		"method", r.Method, "source", src, "interface", r.Interface, "status", v.Code)
	return v
}

// AuthFailed records a failed authentication from addr (called by the
// registrar or digest checks); too many block the source.
func (g *Guard) AuthFailed(addr netip.Addr) {
	if g.sources.authFailed(addr.Unmap(), g.now(), g.pol.Load()) {
		blocks.WithLabelValues("auth").Inc()
		g.limited.Warn("guard-block-auth", "source blocked after repeated authentication failures", "source", addr)
	}
}

// Blocked reports whether addr is blocked now (status and tests).
func (g *Guard) Blocked(addr netip.Addr) bool { return g.sources.blocked(addr.Unmap(), g.now()) }

// Overloaded reports whether the CPU monitor sheds new calls.
func (g *Guard) Overloaded() bool { return g.cpu.overloaded.Load() }
