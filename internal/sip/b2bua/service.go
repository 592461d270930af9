// Package b2bua is Palisade's SIP back-to-back user agent: it terminates
// every call on one leg and originates it again on the other, so that
// nothing of one side's topology reaches the other. sipgo provides parsing,
// transports and transactions; dialogs, routing and relaying are ours.
package b2bua

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"github.com/emiago/sipgo/sip"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/guard"
	"github.com/palisade-sbc/palisade/internal/media"
	"github.com/palisade-sbc/palisade/internal/observe"
	"github.com/palisade-sbc/palisade/internal/pki"
	"github.com/palisade-sbc/palisade/internal/routing"
	"github.com/palisade-sbc/palisade/internal/sip/digest"
	"github.com/palisade-sbc/palisade/internal/sip/transport"
)

// Deps are what the SIP subsystem needs from the rest of the unit.
type Deps struct {
	Logger *slog.Logger
	// Media anchors media; media.Passthrough relays SDP unchanged.
	Media  media.Engine
	Tracer observe.Tracer
	// TLS gives listener and client TLS configurations; nil is allowed when
	// no TLS listener or target is configured.
	TLS pki.Provider
	// Registrar is the local registrar: a routing step and the answer to
	// REGISTER; nil = none (REGISTER gets 501).
	Registrar Registrar
	// Handshakes explains failed TLS handshakes (the PKI subsystem: cause,
	// bounded log, counter); nil = they are logged here at a bounded rate.
	Handshakes pki.HandshakeReporter
	// Guard filters requests before anything else looks at them; nil = none.
	Guard Guard
	// Calls receives each call's start, answer and end for its record
	// (observe's Recorder); nil = none.
	Calls observe.CallRecorder
	// Keeper keeps confirmed calls' records for a unit taking them over
	// (adopt.go); nil = none. Unit names this unit in the records.
	Keeper Keeper
	Unit   string
}

// Registrar is what the B2BUA uses of the local registrar
// (internal/registrar): its bindings as a routing step, and REGISTER, which
// Serve answers when it is for the registrar (false: not handled), and
// FlowHops, where a call another unit of the cluster relayed here goes
// (the phone whose flow this unit holds; routing.FlowHeader's token).
type Registrar interface {
	routing.RegistrarLookup
	Serve(req *sip.Request, tx sip.ServerTransaction, iface string) bool
	FlowHops(token string) ([]routing.Hop, error)
}

// Guard is what the B2BUA uses of the request guard (internal/guard): a
// verdict on each request before anything else looks at it, and the peer
// whose address ranges hold a source no peer address matched.
type Guard interface {
	Check(guard.Request) guard.Verdict
	RangePeer(addr netip.Addr, iface string) string
}

// Service is the SIP subsystem (a unit.Subsystem).
type Service struct {
	deps    Deps
	log     *slog.Logger
	limited *observe.LimitedLogger
	rt      atomic.Pointer[runtime]
	calls   callMap

	draining atomic.Bool
	adopting atomic.Pointer[chan struct{}] // hold.go: Adopting; closed when done
	adoptMu  sync.Mutex
	peers    *peerSet
	auth     *digest.Client // nonce counts of the challenges we answer
	// INVITEs given up after sip.invite_timeout, by client transaction key:
	// a 2xx that still comes for one is acknowledged and ended (dialog.go).
	abandoned  sync.Map
	abandonedN atomic.Int64

	// base is the parent of every call's context; Close cancels it.
	base    context.Context
	stopAll context.CancelFunc

	mu        sync.Mutex // serialises Apply and Close
	endpoints map[string]*endpoint
	listeners map[listenerKey]*listener
	closed    bool
	held      map[string]bool // interfaces whose listeners stay closed (hold.go)
	last      *config.Config  // of the last Apply, for Hold
}

// runtime is everything derived from one configuration. It is replaced as
// a whole on apply (atomic pointer): calls in progress keep the pointer
// they started with where it matters and never see a half-applied state.
type runtime struct {
	table            *routing.Table
	resolver         *routing.Resolver
	endpoints        map[string]*endpoint
	ifaceOrder       []string
	allowed          map[string]bool
	allowHdr         string
	userAgent        string
	maxForwards      int
	noAnswer         time.Duration
	inviteTimeout    time.Duration // no response at all from a target: next target (invite.go)
	followRedirects  bool
	handshakeTimeout time.Duration
	traceOn          bool
	ownHostPorts     map[string]bool               // Via sent-by values of the unit (loop detection)
	refer            config.Refer                  // when REFER is handled locally (refer.go)
	creds            map[string]digest.Credentials // peer name → auth (auth.go)
	numbers          map[string]peerNumbers        // peer name → number rules (numbers.go)
	ownAllow         map[string]bool               // peer name → trunk.own_allow
	history          map[string]string             // peer name → trunk.history_info
	offers           map[string][]string           // peer name → codecs of made offers (offer.go)
}

// New returns the SIP subsystem. Call Apply to start listening.
func New(d Deps) *Service {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Media == nil {
		d.Media = media.Passthrough{}
	}
	if d.Tracer == nil {
		d.Tracer = observe.NopTracer{}
	}
	if d.Calls == nil {
		d.Calls = observe.NopRecorder{}
	}
	s := &Service{
		deps:      d,
		log:       d.Logger.With("subsystem", "sip"),
		endpoints: make(map[string]*endpoint),
		listeners: make(map[listenerKey]*listener),
		auth:      digest.NewClient(),
	}
	s.base, s.stopAll = context.WithCancel(context.Background())
	s.limited = observe.NewLimitedLogger(s.log, 10*time.Second, 5)
	// sipgo logs some events through its package-level logger; they go
	// through the first service's bounded handler (trace.go).
	stackSvc.CompareAndSwap(nil, s)
	s.calls.init()
	s.peers = newPeerSet(s)
	s.rt.Store(&runtime{endpoints: map[string]*endpoint{}, allowed: map[string]bool{}})
	return s
}

// Name implements unit.Subsystem.
func (s *Service) Name() string { return "sip" }

// Apply builds listeners and routing for cfg beside the running ones and
// swaps them in. Unchanged listeners are handed over; on error nothing
// changes.
func (s *Service) Apply(ctx context.Context, cfg *config.Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applyLocked(ctx, cfg)
}

// applyLocked is Apply with s.mu held (hold.go re-applies under the same lock).
func (s *Service) applyLocked(ctx context.Context, cfg *config.Config) error {
	if s.closed {
		return errors.New("sip: closed")
	}
	rt, err := s.buildRuntime(cfg)
	if err != nil {
		return err
	}
	ifaces := make(map[string]config.Interface)
	for _, ifc := range cfg.Network.Interfaces {
		ifaces[ifc.Name] = ifc
	}
	// endpoints: one per interface, kept across applies
	eps := make(map[string]*endpoint, len(ifaces))
	var created []*endpoint
	for _, ifc := range cfg.Network.Interfaces {
		ep := s.endpoints[ifc.Name]
		if ep == nil {
			ep = newEndpoint(s, ifc.Name)
			created = append(created, ep)
		}
		eps[ifc.Name] = ep
	}
	want := make(map[listenerKey]config.Listener)
	for i, l := range cfg.SIP.Listeners {
		ifc, ok := ifaces[l.Interface]
		if !ok {
			return fmt.Errorf("sip.listeners[%d].interface: no interface named %q", i, l.Interface)
		}
		if s.held[l.Interface] { // hold.go: a floating address owned elsewhere
			continue
		}
		k := listenerKey{iface: l.Interface, transport: strings.ToLower(l.Transport), addr: ifc.Address, port: l.Port}
		want[k] = l
	}
	next := make(map[listenerKey]*listener, len(want))
	var opened []*listener
	type keptListener struct {
		l  *listener
		lc config.Listener
	}
	var kept []keptListener
	for k, lc := range want {
		if old := s.listeners[k]; old != nil {
			kept = append(kept, keptListener{old, lc})
			next[k] = old
			continue
		}
		l, err := openListener(eps[k.iface], k, lc, s, rt.handshakeTimeout, cfg.TLS.IdleTimeout.D())
		if err != nil {
			for _, o := range opened {
				o.close()
			}
			for _, ep := range created {
				ep.close()
			}
			return err
		}
		opened = append(opened, l)
		next[k] = l
	}
	// TLS settings of kept listeners: prepared before the swap so that an
	// error leaves everything as it was.
	type tlsSwap struct {
		l   *listener
		lc  config.Listener
		cfg *tls.Config
	}
	var swaps []tlsSwap
	for _, kl := range kept {
		if kl.l.hs == nil || (kl.lc.Certificate == kl.l.cfg.Certificate && kl.lc.RequireClientCert == kl.l.cfg.RequireClientCert) {
			continue
		}
		cfg, err := s.deps.TLS.ServerConfig(kl.lc)
		if err != nil {
			for _, o := range opened {
				o.close()
			}
			for _, ep := range created {
				ep.close()
			}
			return fmt.Errorf("sip.listeners %s tls: %w", kl.l.key.iface, err)
		}
		swaps = append(swaps, tlsSwap{kl.l, kl.lc, cfg})
	}
	// interface facts for Via/Contact
	for name, ep := range eps {
		ifc := ifaces[name]
		info := &ifaceInfo{Local: transport.Local{Ports: map[string]int{}}, userAgent: rt.userAgent, hide: cfg.SIP.TopologyHiding}
		info.addr, _ = netip.ParseAddr(ifc.Address)
		info.Host = ifc.FQDN
		if info.Host == "" {
			info.Host = ifc.AdvertisedAddress
		}
		if info.Host == "" {
			info.Host = ifc.Address
		}
		for k, l := range next {
			if k.iface == name {
				if _, dup := info.Ports[k.transport]; !dup {
					info.Ports[k.transport] = int(l.bound.Port())
				}
				rt.ownHostPorts[info.HostPort(k.transport)] = true
				rt.ownHostPorts[l.bound.String()] = true
			}
		}
		ep.info.Store(info)
	}
	rt.endpoints = eps
	// swap
	for _, sw := range swaps {
		sw.l.hs.SetConfig(sw.cfg)
	}
	for _, kl := range kept {
		kl.l.cfg = kl.lc
	}
	for k, l := range s.listeners {
		if _, keep := next[k]; !keep {
			l.close()
		}
	}
	s.listeners = next
	for n, ep := range eps {
		s.endpoints[n] = ep
	}
	s.rt.Store(rt)
	s.peers.apply(rt, cfg.Peers)
	s.last = cfg
	return nil
}

func (s *Service) buildRuntime(cfg *config.Config) (*runtime, error) {
	table, err := routing.NewTable(cfg, s.registrarLookup())
	if err != nil {
		return nil, err
	}
	res, err := routing.NewResolver(cfg.Network.DNSServers)
	if err != nil {
		return nil, fmt.Errorf("network.dns_servers: %w", err)
	}
	rt := &runtime{
		table:            table,
		resolver:         res,
		allowed:          make(map[string]bool),
		userAgent:        cfg.SIP.UserAgent,
		maxForwards:      cfg.SIP.MaxForwards,
		noAnswer:         cfg.SIP.NoAnswerTimeout.D(),
		inviteTimeout:    cfg.SIP.InviteTimeout.D(),
		followRedirects:  cfg.Routing.Redirects == "follow",
		handshakeTimeout: cfg.TLS.HandshakeTimeout.D(),
		traceOn:          cfg.Observe.TraceCalls,
		ownHostPorts:     make(map[string]bool),
		refer:            cfg.Routing.Refer,
		creds:            peerCreds(cfg.Peers),
	}
	if rt.numbers, err = compileNumbers(cfg.Peers); err != nil {
		return nil, err
	}
	rt.trunkSettings(cfg.Peers)
	rt.offers = offerSettings(cfg.Peers)
	if rt.maxForwards <= 0 {
		rt.maxForwards = 70
	}
	if rt.handshakeTimeout <= 0 {
		rt.handshakeTimeout = 10 * time.Second
	}
	var allow []string
	for _, m := range cfg.SIP.AllowedMethods {
		m = strings.ToUpper(strings.TrimSpace(m))
		if m != "" && !rt.allowed[m] {
			rt.allowed[m] = true
			allow = append(allow, m)
		}
	}
	// ACK and CANCEL belong to INVITE transactions: they are allowed
	// whenever INVITE is.
	if rt.allowed["INVITE"] {
		rt.allowed["ACK"], rt.allowed["CANCEL"] = true, true
	}
	rt.allowHdr = strings.Join(allow, ", ")
	for _, ifc := range cfg.Network.Interfaces {
		rt.ifaceOrder = append(rt.ifaceOrder, ifc.Name)
	}
	return rt, nil
}

// Drain answers new INVITEs with 503 and waits until the calls in progress
// have ended or ctx is done.
func (s *Service) Drain(ctx context.Context) error {
	s.draining.Store(true)
	for {
		idle := s.calls.idleCh() // taken before the count: no wake-up is missed
		if s.calls.count() == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sip: %d calls still in progress: %w", s.calls.count(), ctx.Err())
		case <-idle:
		}
	}
}

// Close stops everything at once: listeners, keepalives, calls.
func (s *Service) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.peers.stop()
	for _, l := range s.listeners {
		l.close()
	}
	s.listeners = map[listenerKey]*listener{}
	for _, c := range s.calls.all() {
		c.terminate("unit closing")
	}
	s.stopAll()
	for _, ep := range s.endpoints {
		ep.close()
	}
	return nil
}

func (e *endpoint) close() {
	e.Endpoint.Close()
}

// ListenAddr returns the bound address of the listener of iface and
// transport (tests and status use it with port 0 listeners).
func (s *Service) ListenAddr(iface, transport string) netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]listenerKey, 0, len(s.listeners))
	for k := range s.listeners {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b listenerKey) int { return a.port - b.port })
	for _, k := range keys {
		if k.iface == iface && k.transport == transport {
			return s.listeners[k].bound
		}
	}
	return netip.AddrPort{}
}

// CallCount returns how many calls are in progress.
func (s *Service) CallCount() int { return s.calls.count() }

// ActiveCalls returns the state of the calls in progress.
func (s *Service) ActiveCalls() []CallState {
	var out []CallState
	for _, c := range s.calls.all() {
		c.mu.Lock()
		out = append(out, c.state())
		c.mu.Unlock()
	}
	return out
}

// registrarLookup is the registrar as a routing step; a nil interface when
// there is none (routing checks for nil).
func (s *Service) registrarLookup() routing.RegistrarLookup {
	if s.deps.Registrar == nil {
		return nil
	}
	return s.deps.Registrar
}
