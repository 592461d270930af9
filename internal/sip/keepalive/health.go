package keepalive

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/observe"
	"github.com/palisade-sbc/palisade/internal/routing"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// ErrAllDown: the peer has targets, but every one is down or kept out by a
// Retry-After; the caller answers 503 at once instead of waiting.
var ErrAllDown = errors.New("keepalive: every target of the peer is down")

// ErrUnknownPeer: the peer is not in the applied list.
var ErrUnknownPeer = errors.New("keepalive: unknown peer")

// Fixed parts of the policy.
const (
	// defaultDownAfter is how many failed keepalives in a row take a target
	// out when trunk.keepalive.down_after is 0.
	defaultDownAfter = 3
	// holdDown puts a target of a peer without keepalive last for this
	// long after a call found it dead: no probe tells when it is back, so
	// it is never refused (a peer with one target would refuse every call),
	// only tried after the others.
	holdDown = 30 * time.Second
	// defaultRecheck: how soon a target a call found dead is probed again.
	defaultRecheck = time.Second
	// resolveTimeout bounds one DNS resolution of a hop.
	resolveTimeout = 5 * time.Second
	// probeTimeout bounds one OPTIONS transaction (Timer F is 32 s; a
	// keepalive needs no more than this to call a target dead).
	probeTimeout = 10 * time.Second
)

var targetUp = promauto.NewGaugeVec(prometheus.GaugeOpts{
	Namespace: "palisade", Subsystem: "keepalive", Name: "target_up",
	Help: "1 while a peer's target (one resolved address of one of its names) may be used, 0 while it is down or kept out by Retry-After.",
}, []string{"peer", "target"})

// Resolver resolves a hop into targets (routing.Resolver is one).
type Resolver interface {
	Resolve(ctx context.Context, h routing.Hop) ([]routing.Target, error)
}

// Sender sends one OPTIONS to a target and returns its final response, or
// an error when none came (transport failure, timeout). The B2BUA's
// outgoing-request engine implements it.
type Sender interface {
	Options(ctx context.Context, req *sip.Request, t Target) (*sip.Response, error)
}

// Peer is what the monitor needs to know of one peer.
type Peer struct {
	Name string
	// Hops in failover order: routing.Table.PeerHops(name, "").
	Hops []routing.Hop
	// Interval of keepalives; 0 = none: targets are resolved when asked
	// for, and only call outcomes (Report) take them out.
	Interval  time.Duration
	Up        string // UpAny | Up2xx
	DownAfter int    // 0 = 3
	Probe     Probe
}

// Target is one resolved target of a peer, in the peer's order.
type Target struct {
	routing.Target
	Peer string
	// Hop is the hop the target was resolved from: its Host is the name
	// for the Request-URI and TLS, its Headers the peer's.
	Hop routing.Hop
}

// Key names the target in states and metrics: "host addr:port/transport".
func (t Target) Key() string {
	return fmt.Sprintf("%s %s/%s", t.Hop.Host, t.Addr, t.Transport)
}

// TargetState is one target's health, for status, the API and the web admin.
type TargetState struct {
	Peer       string    `json:"peer"`
	Target     string    `json:"target"` // Target.Key()
	Host       string    `json:"host"`
	Address    string    `json:"address"`
	Transport  string    `json:"transport"`
	Keepalive  bool      `json:"keepalive"`
	Up         bool      `json:"up"`
	Checked    bool      `json:"checked"` // a keepalive has been answered or timed out
	Failures   int       `json:"failures"`
	LastCheck  time.Time `json:"last_check,omitzero"`
	LastStatus int       `json:"last_status,omitempty"` // 0 = no answer
	LastError  string    `json:"last_error,omitempty"`
	OutUntil   time.Time `json:"out_until,omitzero"` // kept out by Retry-After until then
	// HeldUntil: without keepalive, a call found the target dead; it is
	// tried after the peer's other targets until then.
	HeldUntil time.Time `json:"held_until,omitzero"`
}

// Status is the state as `palisade status peers` shows it.
func (s TargetState) Status() observe.PeerTarget {
	return observe.PeerTarget{Host: s.Host, Address: s.Address, Transport: s.Transport, Up: s.Up,
		LastStatus: s.LastStatus, LastError: s.LastError, OutUntil: s.OutUntil, HeldUntil: s.HeldUntil}
}

// usable reports whether calls may use the target now.
func (s *TargetState) usable(now time.Time) bool { return s.Up && !now.Before(s.OutUntil) }

// Monitor keeps the health of every target of every peer.
type Monitor struct {
	res  Resolver
	send Sender
	log  *slog.Logger
	now  func() time.Time
	// recheck: a target a call found dead is probed again this long after,
	// not at the next interval. A unit under overload sees calls go
	// unanswered while the peer is fine; waiting the interval out turned
	// one such call into 503 for every call until then (bench/sip run 9).
	// 0: no early probe.
	recheck time.Duration

	mu    sync.Mutex
	peers map[string]*peerRun
}

type peerRun struct {
	cfg     Peer
	targets []Target // last resolution, in order
	states  map[string]*TargetState
	cancel  context.CancelFunc
	done    chan struct{}
	kick    chan struct{} // a round now (recheck)
}

// New returns a monitor that resolves with res and sends with send.
func New(res Resolver, send Sender, log *slog.Logger) *Monitor {
	if log == nil {
		log = slog.Default()
	}
	return &Monitor{res: res, send: send, log: log.With("subsystem", "keepalive"), now: time.Now, peers: map[string]*peerRun{},
		recheck: defaultRecheck}
}

// Apply starts, keeps or stops the watch of each peer: a peer whose
// settings did not change keeps its states and its running keepalive.
func (m *Monitor) Apply(peers []Peer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[string]bool{}
	for _, p := range peers {
		seen[p.Name] = true
		if old := m.peers[p.Name]; old != nil {
			if reflect.DeepEqual(old.cfg, p) {
				continue
			}
			m.stopLocked(old)
		}
		ctx, cancel := context.WithCancel(context.Background())
		r := &peerRun{cfg: p, states: map[string]*TargetState{}, cancel: cancel, done: make(chan struct{}),
			kick: make(chan struct{}, 1)}
		m.peers[p.Name] = r
		if p.Interval > 0 {
			go m.loop(ctx, r)
		} else {
			close(r.done)
		}
	}
	for n, r := range m.peers {
		if !seen[n] {
			m.stopLocked(r)
			delete(m.peers, n)
		}
	}
}

func (m *Monitor) stopLocked(r *peerRun) {
	r.cancel()
	for k := range r.states {
		targetUp.DeleteLabelValues(r.cfg.Name, k)
	}
}

// Close stops every keepalive and waits for them.
func (m *Monitor) Close() {
	m.mu.Lock()
	var runs []*peerRun
	for n, r := range m.peers {
		m.stopLocked(r)
		runs = append(runs, r)
		delete(m.peers, n)
	}
	m.mu.Unlock()
	for _, r := range runs {
		<-r.done
	}
}

func (m *Monitor) loop(ctx context.Context, r *peerRun) {
	defer close(r.done)
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		m.round(ctx, r)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.kick:
		}
	}
}

// CheckNow runs one keepalive round for peer and returns when every target
// has answered or timed out (status commands, tests).
func (m *Monitor) CheckNow(ctx context.Context, peer string) error {
	m.mu.Lock()
	r := m.peers[peer]
	m.mu.Unlock()
	if r == nil {
		return ErrUnknownPeer
	}
	m.round(ctx, r)
	return nil
}

// round resolves the peer's hops and probes every target at once.
func (m *Monitor) round(ctx context.Context, r *peerRun) {
	targets := m.resolve(ctx, r.cfg)
	m.mu.Lock()
	if len(targets) > 0 || len(r.targets) == 0 {
		r.targets = targets // a failed resolution keeps the last known targets
	}
	targets = r.targets
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.probe(ctx, r, t)
		}()
	}
	wg.Wait()
}

// resolve turns the peer's hops into targets in order; the addresses of
// one name keep the resolver's order (RFC 3263: SRV priority and weight).
func (m *Monitor) resolve(ctx context.Context, p Peer) []Target {
	var out []Target
	seen := map[string]bool{}
	for _, h := range p.Hops {
		rctx, cancel := context.WithTimeout(ctx, resolveTimeout)
		ts, err := m.res.Resolve(rctx, h)
		cancel()
		if err != nil {
			m.log.Warn("peer target not resolved", "peer", p.Name, "host", h.Host, "err", err)
			continue
		}
		for _, t := range ts {
			tg := Target{Target: t, Peer: p.Name, Hop: h}
			if !seen[tg.Key()] {
				seen[tg.Key()] = true
				out = append(out, tg)
			}
		}
	}
	return out
}

func (m *Monitor) probe(ctx context.Context, r *peerRun, t Target) {
	p := r.cfg
	pr := p.Probe
	pr.Headers = MergeHeaders(t.Hop.Headers, pr.Headers)
	host := t.Hop.Host
	if t.ServerName != "" {
		host = t.ServerName
	}
	req := Build(pr, t.Target, host)
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	res, err := m.send.Options(pctx, req, t)
	cancel()
	if ctx.Err() != nil {
		return // stopped: the answer belongs to an old configuration
	}
	status := 0
	if res != nil {
		status = res.StatusCode
	}
	up := err == nil && IsUp(p.Up, status)
	m.mu.Lock()
	defer m.mu.Unlock()
	st := r.state(t)
	st.Keepalive, st.Checked, st.LastCheck, st.LastStatus = true, true, m.now(), status
	switch {
	case err != nil:
		st.LastError = err.Error()
	case !up:
		st.LastError = fmt.Sprintf("%d %s", status, res.Reason)
	default:
		st.LastError = ""
	}
	if ra := RetryAfter(res); ra > 0 {
		st.OutUntil = m.now().Add(ra)
	}
	downAfter := p.DownAfter
	if downAfter <= 0 {
		downAfter = defaultDownAfter
	}
	if up {
		if !st.Up {
			m.log.Info("peer target is up", "peer", p.Name, "target", t.Key())
		}
		st.Up, st.Failures = true, 0
	} else {
		st.Failures++
		if st.Failures >= downAfter && st.Up {
			st.Up = false
			m.log.Warn("peer target marked down", "peer", p.Name, "target", t.Key(), "failures", st.Failures, "last", st.LastError)
		}
	}
	m.publish(r, t.Key(), st)
}

// state returns t's state, making it (up until found otherwise).
func (r *peerRun) state(t Target) *TargetState {
	k := t.Key()
	st := r.states[k]
	if st == nil {
		st = &TargetState{Peer: r.cfg.Name, Target: k, Host: t.Hop.Host, Address: t.Addr.String(), Transport: t.Transport,
			Keepalive: r.cfg.Interval > 0, Up: true}
		r.states[k] = st
	}
	return st
}

func (m *Monitor) publish(r *peerRun, key string, st *TargetState) {
	v := 0.0
	if st.usable(m.now()) {
		v = 1
	}
	targetUp.WithLabelValues(r.cfg.Name, key).Set(v)
}

// NextTargets returns the targets a new request to peer may use now, in
// the order to try them: every target that is up and not kept out by a
// Retry-After, those held after a dead call (no keepalive) last. Targets
// never checked count as up. A peer without keepalive is resolved now. ErrAllDown when there are targets but none usable (the
// caller answers 503 at once); the resolver's error when none resolved.
func (m *Monitor) NextTargets(ctx context.Context, peer string) ([]Target, error) {
	m.mu.Lock()
	r := m.peers[peer]
	if r == nil {
		m.mu.Unlock()
		return nil, ErrUnknownPeer
	}
	targets := r.targets
	cfg := r.cfg
	m.mu.Unlock()
	if cfg.Interval <= 0 || len(targets) == 0 {
		targets = m.resolve(ctx, cfg)
		if len(targets) == 0 {
			return nil, fmt.Errorf("keepalive: no target of peer %q resolved", peer)
		}
		m.mu.Lock()
		r.targets = targets
		m.mu.Unlock()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	var out, held []Target
	for _, t := range targets {
		st := r.states[t.Key()]
		switch {
		case st == nil:
			out = append(out, t)
		case !st.usable(now):
		case now.Before(st.HeldUntil):
			held = append(held, t)
		default:
			out = append(out, t)
		}
	}
	out = append(out, held...)
	if len(out) == 0 {
		return nil, ErrAllDown
	}
	return out, nil
}

// Report tells the monitor what a target answered to a request of a call
// (status 0 = no answer or transport failure; retryAfter from RetryAfter):
// a 503 with Retry-After keeps the target out for that long; no answer or
// 408 marks it down until a keepalive succeeds, the first probed recheck
// after (without keepalive: tried after the others for 30 s). Other answers say the target lives.
func (m *Monitor) Report(t Target, status int, retryAfter time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.peers[t.Peer]
	if r == nil {
		return
	}
	st := r.state(t)
	now := m.now()
	if retryAfter > 0 {
		st.OutUntil = now.Add(min(retryAfter, maxRetryAfter))
	}
	if status == 0 || status == 408 {
		st.LastError = fmt.Sprintf("a call got no answer (%d)", status)
		if r.cfg.Interval > 0 {
			if st.Up {
				// Once: every call in flight to a target that went away
				// reports it (thousands of lines a second under load).
				m.log.Warn("peer target marked down after a call got no answer", "peer", t.Peer, "target", t.Key())
				if m.recheck > 0 {
					time.AfterFunc(m.recheck, func() {
						select {
						case r.kick <- struct{}{}:
						default: // a round is due anyway
						}
					})
				}
			}
			st.Up = false
		} else {
			st.HeldUntil = now.Add(holdDown)
		}
	} else {
		st.HeldUntil = time.Time{} // it answered: no longer last
	}
	m.publish(r, t.Key(), st)
}

// PeerUp reports whether any target of peer may be used now (true for a
// peer not watched or not resolved yet): the "up" function routing.Table.Route
// takes.
func (m *Monitor) PeerUp(peer string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.peers[peer]
	if r == nil || len(r.targets) == 0 {
		return true
	}
	now := m.now()
	for _, t := range r.targets {
		if st := r.states[t.Key()]; st == nil || st.usable(now) {
			return true
		}
	}
	return false
}

// States returns every target's state, by peer and then in target order.
func (m *Monitor) States() []TargetState {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []TargetState
	names := make([]string, 0, len(m.peers))
	for n := range m.peers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		r := m.peers[n]
		for _, t := range r.targets {
			if st := r.states[t.Key()]; st != nil {
				out = append(out, *st)
			} else {
				out = append(out, TargetState{Peer: n, Target: t.Key(), Host: t.Hop.Host, Address: t.Addr.String(),
					Transport: t.Transport, Keepalive: r.cfg.Interval > 0, Up: true})
			}
		}
	}
	return out
}
