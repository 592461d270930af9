package media

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/observe"
)

// Relay is the media engine of the unit: it implements Engine for the SIP
// layer and unit.Subsystem for the configuration lifecycle.
type Relay struct {
	log        *slog.Logger
	badTraffic *observe.LimitedLogger
	rand       io.Reader
	ports      *portAllocator
	conf       atomic.Pointer[relayConf]

	// table maps a relay socket's local port to the socket, for the workers
	// (ports are unique across the relay). Written at setup and teardown.
	table   [65536]atomic.Pointer[socket]
	workers []*worker
	nextW   atomic.Uint32
	// batchNs is media.batch_interval, read by batch workers every round;
	// batched is how many of them run, 0 when the workers are the
	// Go-poller kind. A batch worker holds a P while media flows, and
	// GOMAXPROCS is one higher for each that does (procs.go).
	batchNs atomic.Int64
	batched int
	// rtPrio is media.realtime_priority; each batch worker applies it to
	// its thread when it changes (batch_linux.go).
	rtPrio   atomic.Int32
	rtWarned atomic.Bool
	procMu   sync.Mutex

	mu       sync.Mutex // calls registry; setup and teardown only
	calls    map[*call]struct{}
	draining bool
	closed   bool
	idle     chan struct{} // closed when the last call ends while draining

	onCounters func(id string) // snapshot.go: WithCounterHook; nil = none
	gaps       gapLog          // gap.go: media gaps of restored streams
}

// relayConf is the part of the configuration new calls are set up with.
type relayConf struct {
	pol        policies
	ifaces     map[string]config.Interface
	inactivity time.Duration
}

// New builds the relay from cfg (nil: from the first Apply). It opens no
// socket until the first call.
func New(cfg *config.Config, log *slog.Logger, opts ...Option) (*Relay, error) {
	if log == nil {
		log = slog.Default()
	}
	r := &Relay{
		log:        log.With("subsystem", "media"),
		badTraffic: observe.NewLimitedLogger(log, 10*time.Second, 5),
		rand:       rand.Reader,
		calls:      map[*call]struct{}{},
	}
	for _, o := range opts {
		o(r)
	}
	r.ports = newPortAllocator(0, 0)
	var batch time.Duration
	if cfg != nil {
		batch = time.Duration(cfg.Media.BatchInterval)
	}
	if err := r.startWorkers(batch); err != nil {
		return nil, err
	}
	if cfg == nil {
		return r, nil // configured by the first Apply
	}
	if err := r.Apply(context.Background(), cfg); err != nil {
		return nil, err
	}
	return r, nil
}

func compile(cfg *config.Config) (*relayConf, error) {
	if cfg == nil {
		return nil, errors.New("media: no configuration")
	}
	m := cfg.Media
	if m.PortMin < 1 || m.PortMax > 65535 || m.PortMax < m.PortMin+1 {
		return nil, fmt.Errorf("media: port range %d-%d holds no RTP/RTCP pair", m.PortMin, m.PortMax)
	}
	rc := &relayConf{pol: compilePolicies(m, cfg.Peers), ifaces: map[string]config.Interface{},
		inactivity: time.Duration(m.InactivityTimeout)}
	for _, i := range cfg.Network.Interfaces {
		rc.ifaces[i.Name] = i
	}
	return rc, nil
}

// startWorkers starts one packet worker per CPU unless they run. batch
// (media.batch_interval) picks the kind: > 0 batched wake-ups
// (batch_linux.go), 0 the Go-poller worker. Running workers of the other
// kind are replaced while no call uses them (the first Apply after New);
// with calls up, the kind changes at the next start and only the interval
// changes now.
func (r *Relay) startWorkers(batch time.Duration) error {
	if !batchSupported {
		batch = 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = false
	r.batchNs.Store(int64(batch))
	if len(r.workers) > 0 {
		if (r.batched > 0) == (batch > 0) || len(r.calls) > 0 {
			return nil
		}
		r.stopWorkersLocked()
	}
	n := max(runtime.GOMAXPROCS(0), 1)
	if batch > 0 {
		r.batched = n
	}
	for range n {
		w, err := newWorker(r, batch > 0)
		if err != nil {
			r.stopWorkersLocked()
			return err
		}
		r.workers = append(r.workers, w)
		go w.run()
	}
	return nil
}

// stopWorkersLocked stops the workers and gives back the Ps batch workers
// held. r.mu is held.
func (r *Relay) stopWorkersLocked() {
	for _, w := range r.workers {
		w.close()
		r.holdP(w, false)
	}
	r.workers = nil
	r.batched = 0
}

// Name is the subsystem name.
func (r *Relay) Name() string { return "media" }

// Apply switches policies, port range and timeout for new calls at once.
// Calls in progress keep their sockets, keys and policy.
func (r *Relay) Apply(_ context.Context, cfg *config.Config) error {
	rc, err := compile(cfg)
	if err != nil {
		return err
	}
	// The unit may Close a subsystem after a failed first apply and apply
	// again later: the workers come back.
	if err := r.startWorkers(time.Duration(cfg.Media.BatchInterval)); err != nil {
		return err
	}
	r.ports.setRange(cfg.Media.PortMin, cfg.Media.PortMax)
	r.conf.Store(rc)
	if p := int32(cfg.Media.RealtimePriority); r.rtPrio.Swap(p) != p {
		r.mu.Lock()
		for _, w := range r.workers {
			w.wake() // an idle batch worker applies the change now
		}
		r.mu.Unlock()
	}
	return nil
}

// Drain refuses new calls and waits until the calls in progress end or ctx ends.
func (r *Relay) Drain(ctx context.Context) error {
	r.mu.Lock()
	r.draining = true
	if len(r.calls) == 0 {
		r.mu.Unlock()
		return nil
	}
	if r.idle == nil {
		r.idle = make(chan struct{})
	}
	idle := r.idle
	r.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close ends the media of every call.
func (r *Relay) Close() error {
	r.mu.Lock()
	r.closed = true
	calls := make([]*call, 0, len(r.calls))
	for c := range r.calls {
		calls = append(calls, c)
	}
	r.mu.Unlock()
	for _, c := range calls {
		c.Close()
	}
	r.mu.Lock()
	r.stopWorkersLocked()
	r.mu.Unlock()
	return nil
}

// PolicyFor returns the media encryption policy new calls get on interface iface.
func (r *Relay) PolicyFor(iface string) Policy { return r.PolicyForPeer(iface, "") }

// PolicyForPeer returns the media encryption policy new calls get on a leg
// on interface iface that faces peer (peers[].media over the interface's).
func (r *Relay) PolicyForPeer(iface, peer string) Policy {
	rc := r.conf.Load()
	if rc == nil {
		return Policy{Interface: iface, Requirement: RequireRTP}
	}
	return rc.pol.forLeg(iface, peer)
}

// ActiveCalls is the number of calls with anchored media.
func (r *Relay) ActiveCalls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

// resolve fills a leg's bind and advertised addresses from its interface
// when the SIP layer left them empty.
func (rc *relayConf) resolve(l Leg) (Leg, error) {
	ifc, ok := rc.ifaces[l.Interface]
	if !l.Bind.IsValid() && ok {
		l.Bind, _ = netip.ParseAddr(ifc.Address)
	}
	if !l.Bind.IsValid() {
		return l, fmt.Errorf("media: leg on interface %q has no address to bind", l.Interface)
	}
	// The interface's advertised_address (NAT in front of the unit) wins
	// over an Advertised that merely repeats the bind address.
	if (!l.Advertised.IsValid() || l.Advertised == l.Bind) && ok && ifc.AdvertisedAddress != "" {
		if a, err := netip.ParseAddr(ifc.AdvertisedAddress); err == nil {
			l.Advertised = a
		}
	}
	if !l.Advertised.IsValid() {
		l.Advertised = l.Bind
	}
	l.Bind, l.Advertised = l.Bind.Unmap(), l.Advertised.Unmap()
	return l, nil
}

// NewCall anchors a call: it takes an RTP/RTCP port pair on each leg's
// address for its first media stream and starts their readers (further
// streams get theirs when an offer names them). ErrNoPorts when the range
// is used up.
func (r *Relay) NewCall(id string, a, b Leg) (Call, error) {
	r.mu.Lock()
	stopping := r.draining || r.closed
	r.mu.Unlock()
	if stopping {
		return nil, fmt.Errorf("%w: the unit is draining", ErrNoPorts)
	}
	rc := r.conf.Load()
	if rc == nil {
		return nil, errors.New("media: the relay has no configuration yet")
	}
	r.mu.Lock()
	ws := r.workers
	r.mu.Unlock()
	if len(ws) == 0 {
		return nil, errors.New("media: the relay is closed")
	}
	c := &call{id: id, relay: r, log: r.log.With("call_id", id), timeout: rc.inactivity,
		wk: ws[int(r.nextW.Add(1))%len(ws)]}
	for i, spec := range [2]Leg{a, b} {
		spec, err := rc.resolve(spec)
		if err != nil {
			return nil, err
		}
		c.sides[i] = side{spec: spec, pol: rc.pol.forLeg(spec.Interface, spec.Peer)}
	}
	// The first stream's ports are taken now, so that a full range refuses
	// the call (503) before it rings; more streams get theirs with the offer.
	st, err := c.newStream()
	if err != nil {
		return nil, err
	}
	c.spare = st
	r.mu.Lock()
	r.calls[c] = struct{}{}
	r.mu.Unlock()
	callsActive.Inc()
	c.log.Debug("media: call anchored", "a_port", st.legs[0].port, "b_port", st.legs[1].port)
	return c, nil
}

func (r *Relay) forget(c *call) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.calls[c]; !ok {
		return
	}
	delete(r.calls, c)
	callsActive.Dec()
	if r.draining && len(r.calls) == 0 && r.idle != nil {
		close(r.idle)
		r.idle = nil
	}
}
