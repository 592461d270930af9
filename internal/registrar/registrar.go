// Package registrar is the local registrar for inside phones: digest
// authenticated REGISTER (RFC 3261 §10), bindings with expiry and q values
// kept in the store under registrar/<aor> so that they survive an apply and
// a restart, and the lookup the routing table uses to reach a registered
// phone. Static registrations (routing.static_registrations) are served
// through the same lookup.
package registrar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/observe"
	"github.com/palisade-sbc/palisade/internal/routing"
	"github.com/palisade-sbc/palisade/internal/sip/digest"
	"github.com/palisade-sbc/palisade/internal/store"
)

// SubsystemName is the registrar's name in the unit.
const SubsystemName = "registrar"

// keyPrefix is the store prefix of the bindings, one key per address of
// record ("registrar/alice@example.com").
const keyPrefix = "registrar/"

const (
	// defaultExpires is used when a REGISTER names no expiry (RFC 3261
	// §10.2.1.1 leaves it to the registrar).
	defaultExpires = 3600
	// maxContacts bounds the bindings of one address of record.
	maxContacts = 10
	// nonceLifetime is how long a challenge's nonce may be answered.
	nonceLifetime = 5 * time.Minute
	// pruneEvery is how often expired bindings leave memory and the store.
	pruneEvery = 30 * time.Second
	// storeRetry is how long REGISTERs are refused (503) after the store
	// could not take a write.
	storeRetry = 5 * time.Second
)

// Binding is one registered contact of an address of record, as stored.
type Binding struct {
	Contact   string    `json:"contact"` // the Contact URI as registered
	Expires   time.Time `json:"expires"`
	Q         int       `json:"q"` // thousandths, 0-1000
	CallID    string    `json:"call_id"`
	CSeq      uint32    `json:"cseq"`
	Source    string    `json:"source"` // address:port the REGISTER came from
	Transport string    `json:"transport"`
	Interface string    `json:"interface,omitempty"`
	UserAgent string    `json:"user_agent,omitempty"`
	Updated   time.Time `json:"updated"`
	// Unit is the unit of a cluster that took the REGISTER and so holds
	// the phone's flow (its TCP/TLS connection, its NAT binding).
	Unit string `json:"unit,omitempty"`
}

// Source is where a REGISTER came from.
type Source struct {
	Addr      netip.AddrPort
	Transport string // udp | tcp | tls
	Interface string // the unit's interface it arrived on
}

// Registrar is the local registrar (a unit.Subsystem and a
// routing.RegistrarLookup). Create it with New; it serves nothing until
// the first Apply.
type Registrar struct {
	st      store.Store
	log     *slog.Logger
	limited *observe.LimitedLogger
	auth    *digest.Server
	guard   *guard
	algs    *algMemo
	now     func() time.Time

	set atomic.Pointer[settings]

	mu       sync.Mutex // guards bindings
	bindings map[string][]Binding
	loaded   bool
	// wmu serialises changes of bindings with their store writes.
	wmu sync.Mutex
	// downUntil: after the store failed to take a write, REGISTERs are
	// answered 503 at once until then (wmu).
	downUntil time.Time

	stop, done chan struct{}
	closed     bool

	failures AuthFailures // nil: nobody else hears of wrong passwords

	// unit names this unit in a cluster (SetCluster): bindings are then
	// shared with the other units through the store's watch.
	unit      string
	stopWatch context.CancelFunc
	watchDone chan struct{}
	// flowKey signs the tokens of calls relayed between units (the shared
	// nonce secret; nil outside a cluster).
	flowKey atomic.Pointer[[]byte]
}

// AuthFailures hears of every wrong password or unknown user, by source
// (internal/guard blocks sources that fail too often).
type AuthFailures interface {
	AuthFailed(source netip.Addr)
}

// settings is what one configuration says.
type settings struct {
	enabled    bool
	domains    []string        // lower case, in configured order
	isDomain   map[string]bool // lower case
	localHosts map[string]bool // the unit's own addresses and names
	users      map[string]string
	minExp     int
	maxExp     int
	static     map[string][]routing.Hop // request user → static forwards
	// relays: unit → interface → where that unit takes relayed calls
	relays map[string]map[string]relayTarget
}

// New returns a registrar keeping its bindings in st and reporting wrong
// passwords to failures (nil = to nobody).
func New(st store.Store, log *slog.Logger, failures AuthFailures) *Registrar {
	if log == nil {
		log = slog.Default()
	}
	log = log.With("subsystem", SubsystemName)
	r := &Registrar{
		st: st, log: log, failures: failures,
		limited:  observe.NewLimitedLogger(log, 10*time.Second, 5),
		auth:     digest.NewServer(nonceLifetime),
		now:      time.Now,
		bindings: make(map[string][]Binding),
	}
	r.guard = newGuard(func() time.Time { return r.now() })
	r.algs = newAlgMemo(func() time.Time { return r.now() })
	r.set.Store(&settings{})
	return r
}

// Name implements unit.Subsystem.
func (r *Registrar) Name() string { return SubsystemName }

// Apply takes the registrar and static registration settings of cfg.
// Bindings are kept: an apply changes who may register, not who is
// registered (bindings of users or domains no longer configured are not
// used in routing and expire on their own).
func (r *Registrar) Apply(ctx context.Context, cfg *config.Config) error {
	s, err := newSettings(cfg)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errors.New("registrar: closed")
	}
	if !r.loaded {
		if r.unit != "" {
			if err := r.joinCluster(ctx); err != nil {
				return err
			}
		}
		if err := r.load(ctx); err != nil {
			return err
		}
		r.loaded = true
		r.stop, r.done = make(chan struct{}), make(chan struct{})
		go r.pruneLoop(r.stop, r.done)
	}
	r.set.Store(s)
	return nil
}

func newSettings(cfg *config.Config) (*settings, error) {
	rc := cfg.Registrar
	s := &settings{
		enabled: rc.Enabled, isDomain: map[string]bool{}, localHosts: map[string]bool{},
		users: map[string]string{}, minExp: rc.MinExpires, maxExp: rc.MaxExpires,
		static: map[string][]routing.Hop{}, relays: unitRelays(cfg),
	}
	if s.minExp < 1 {
		s.minExp = 1
	}
	if s.maxExp < s.minExp {
		s.maxExp = max(s.minExp, defaultExpires)
	}
	for _, d := range rc.Domains {
		d = strings.ToLower(strings.TrimSpace(d))
		if d != "" && !s.isDomain[d] {
			s.isDomain[d] = true
			s.domains = append(s.domains, d)
		}
	}
	for _, u := range rc.Users {
		s.users[u.Username] = u.Password
	}
	for _, ifc := range cfg.Network.Interfaces {
		for _, h := range []string{ifc.Address, ifc.AdvertisedAddress, ifc.FQDN} {
			if h != "" {
				s.localHosts[strings.ToLower(h)] = true
			}
		}
	}
	for i, sr := range cfg.Routing.StaticRegistrations {
		h, err := staticHop(sr)
		if err != nil {
			return nil, fmt.Errorf("routing.static_registrations[%d].forward_to: %w", i, err)
		}
		s.static[sr.User] = append(s.static[sr.User], h)
	}
	return s, nil
}

// load reads the stored bindings, dropping expired ones.
func (r *Registrar) load(ctx context.Context) error {
	kvs, err := r.st.List(ctx, keyPrefix)
	if err != nil {
		return fmt.Errorf("registrar: reading bindings: %w", err)
	}
	now := r.now()
	for _, kv := range kvs {
		var bs []Binding
		if err := json.Unmarshal(kv.Value, &bs); err != nil {
			r.log.Warn("dropping unreadable bindings", "key", kv.Key, "err", err)
			continue
		}
		bs = live(bs, now)
		if len(bs) > 0 {
			r.bindings[strings.TrimPrefix(kv.Key, keyPrefix)] = bs
		}
	}
	bindingsGauge.Set(float64(r.countLocked()))
	return nil
}

func live(bs []Binding, now time.Time) []Binding {
	out := bs[:0:0]
	for _, b := range bs {
		if b.Expires.After(now) {
			out = append(out, b)
		}
	}
	return out
}

// storeDown reports whether the store failed recently (r.wmu held).
func (r *Registrar) storeDown(now time.Time) bool { return now.Before(r.downUntil) }

// save writes the bindings of aor to the store, then to memory (r.wmu
// held, r.mu not). The key expires with the last of its bindings (in a
// cluster: an etcd lease).
func (r *Registrar) save(ctx context.Context, aor string, bs []Binding) error {
	err := r.saveStore(ctx, aor, bs)
	if errors.Is(err, store.ErrUnavailable) {
		r.downUntil = r.now().Add(storeRetry)
	}
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(bs) == 0 {
		delete(r.bindings, aor)
	} else {
		r.bindings[aor] = bs
	}
	bindingsGauge.Set(float64(r.countLocked()))
	return nil
}

func (r *Registrar) saveStore(ctx context.Context, aor string, bs []Binding) error {
	key := keyPrefix + aor
	var last time.Time
	for _, b := range bs {
		if b.Expires.After(last) {
			last = b.Expires
		}
	}
	ttl := last.Sub(r.now())
	if len(bs) == 0 || ttl <= 0 {
		if err := r.st.Delete(ctx, key); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("registrar: deleting %s: %w", key, err)
		}
	} else {
		b, err := json.Marshal(bs)
		if err != nil {
			return err
		}
		// A second more than the last binding: the store must not
		// forget a binding the registrar still counts as live.
		if err := r.st.PutTTL(ctx, key, b, ttl+time.Second); err != nil {
			return fmt.Errorf("registrar: writing %s: %w", key, err)
		}
	}
	return nil
}

func (r *Registrar) countLocked() int {
	n := 0
	for _, bs := range r.bindings {
		n += len(bs)
	}
	return n
}

func (r *Registrar) pruneLoop(stop, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(pruneEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			r.Prune(context.Background())
		}
	}
}

// Prune removes expired bindings from memory and the store, and forgets
// old authentication failures and nonce counts.
func (r *Registrar) Prune(ctx context.Context) {
	now := r.now()
	r.wmu.Lock()
	r.mu.Lock()
	pruned := map[string][]Binding{}
	for aor, bs := range r.bindings {
		if l := live(bs, now); len(l) != len(bs) {
			pruned[aor] = l
		}
	}
	r.mu.Unlock()
	for aor, l := range pruned {
		if r.storeDown(now) {
			break // the expired bindings are not routed to; the next prune writes
		}
		if err := r.save(ctx, aor, l); err != nil {
			r.limited.Warn("prune", "pruning bindings failed", "aor", aor, "err", err)
		}
	}
	r.wmu.Unlock()
	r.auth.Prune()
	r.guard.prune()
	r.algs.prune()
}

// Drain implements unit.Subsystem: REGISTERs are short transactions.
func (r *Registrar) Drain(context.Context) error { return nil }

// Close stops the pruning; bindings stay in the store.
func (r *Registrar) Close() error {
	r.mu.Lock()
	stop, done := r.stop, r.done
	r.stop, r.closed = nil, true
	stopWatch, watchDone := r.stopWatch, r.watchDone
	r.stopWatch = nil
	r.mu.Unlock()
	if stopWatch != nil {
		stopWatch()
		<-watchDone
	}
	if stop != nil {
		close(stop)
		<-done
	}
	return nil
}

// staticHop turns a static registration into a hop.
func staticHop(sr config.StaticRegistration) (routing.Hop, error) {
	var u sip.Uri
	if err := sip.ParseUri(sr.ForwardTo, &u); err != nil {
		return routing.Hop{}, err
	}
	if u.Host == "" {
		return routing.Hop{}, fmt.Errorf("%q has no host", sr.ForwardTo)
	}
	h := routing.Hop{Step: "registrar", Rule: "static", Scheme: strings.ToLower(u.Scheme), User: u.User,
		Host: u.Host, Port: u.Port, Transport: strings.ToLower(sr.Transport)}
	if h.Transport == "" && u.UriParams != nil {
		if tp, ok := u.UriParams.Get("transport"); ok {
			h.Transport = strings.ToLower(tp)
		}
	}
	if h.Transport == "any" {
		h.Transport = ""
	}
	return h, nil
}
