// Package takeover carries calls on when the unit that had them dies
// (docs/ha.md): the unit elects the owner of the floating addresses
// (internal/ha/vip), keeps the records of its confirmed calls in etcd while
// it owns them (Keeper), and when it wins the addresses after another unit
// reads that unit's records and adopts its calls (b2bua.Service.Adopt).
package takeover

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/ha/vip"
	"github.com/palisade-sbc/palisade/internal/media"
	"github.com/palisade-sbc/palisade/internal/sip/b2bua"
	"github.com/palisade-sbc/palisade/internal/store"
)

// SIP is what the takeover uses of the B2BUA (*b2bua.Service).
type SIP interface {
	// Hold keeps the listeners of ifaces closed (nil: none held).
	Hold(ctx context.Context, ifaces []string) error
	// Abandon forgets the calls on ifaces, sending nothing.
	Abandon(ifaces []string) int
	// Adopt carries a call on from its record.
	Adopt(rec []byte) (string, error)
	// Adopting, while on, refuses new calls (503, Retry-After: 1): they
	// could take a port a record still needs.
	Adopting(on bool)
	// Rehome carries a call on from its record on this unit's own
	// addresses (re-INVITEs).
	Rehome(rec []byte) (string, error)
	// Reconnect opens the TCP/TLS connections of the calls ids towards
	// their peers.
	Reconnect(ctx context.Context, ids []string) []b2bua.Reconnection
	CallCount() int
	// Drain refuses new calls (503) and waits until the calls end or ctx
	// is done; Resume takes new calls again.
	Drain(ctx context.Context) error
	Resume()
}

// Store is what the takeover needs of the cluster's store (*store.Etcd).
type Store interface {
	Writer
	List(ctx context.Context, prefix string) ([]store.KV, error)
	Client() *clientv3.Client
	Namespace() string
}

// Deps are the takeover's parts.
type Deps struct {
	Store  Store
	Unit   string
	SIP    SIP
	Keeper *Keeper
	// Net configures the addresses; nil = rtnetlink in this namespace.
	Net vip.Net
	// Gaps reports the media gaps of the adopted calls' streams
	// (media.Relay.RestoreGaps); nil: not shown.
	Gaps func() media.GapStats
	Log  *slog.Logger
}

// Takeover is a unit.Subsystem: it follows ha in the configuration. The
// keeper writes records only while this unit owns the addresses (the calls
// of a unit that does not are on no floating address).
type Takeover struct {
	d   Deps
	log *slog.Logger

	mu       sync.Mutex
	started  bool
	cancel   context.CancelFunc
	done     chan struct{}
	group    *group
	owner    *vip.Owner
	rehoming bool       // ha.mode rehome: no group, no owner
	ifaces   []string   // rehome: every interface (the calls a fenced unit forgets)
	pref     []string   // rehome: ha.preference (who claims a unit gone)
	moving   sync.Mutex // one planned move at a time

	owned   atomic.Bool
	closing atomic.Bool // Close: the B2BUA has gone already
	stats   struct {
		sync.Mutex
		takeovers  int
		adopted    int
		refused    int
		reconnects int
		reconnFail int
		last       time.Time
	}
}

// New returns the takeover; Apply starts it when ha.floating is set.
func New(d Deps) *Takeover {
	if d.Log == nil {
		d.Log = slog.Default()
	}
	return &Takeover{d: d, log: d.Log.With("subsystem", "ha")}
}

// Name implements unit.Subsystem.
func (t *Takeover) Name() string { return "ha" }

// Floating returns the interfaces of cfg whose address floats.
func Floating(cfg *config.Config) []string {
	var out []string
	for _, f := range cfg.HA.Floating {
		out = append(out, f.Interface)
	}
	return out
}

// Apply starts the election on the first configuration with floating
// addresses; it runs before the B2BUA's Apply, which then leaves the
// listeners on the floating addresses closed until this unit owns them.
// A change of ha takes effect when the unit starts again.
func (t *Takeover) Apply(ctx context.Context, cfg *config.Config) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.started {
		if g := t.group; g == nil && len(cfg.HA.Floating) > 0 || g != nil && !slices.Equal(g.ifaces, Floating(cfg)) {
			t.log.Warn("ha: floating addresses changed; the change takes effect when the unit starts again")
		}
		return nil
	}
	t.started = true
	if cfg.HA.Rehome() {
		t.startRehome(cfg)
		return nil
	}
	if len(cfg.HA.Floating) == 0 {
		return nil
	}
	g, err := t.newGroup(cfg)
	if err != nil {
		return err
	}
	// Held from the B2BUA's first Apply on (it comes after this one).
	if err := t.d.SIP.Hold(ctx, g.ifaces); err != nil {
		return err
	}
	ns := strings.TrimSuffix(t.d.Store.Namespace(), "/")
	o, err := vip.New(vip.Config{Client: t.d.Store.Client(), Prefix: ns + "/ha/floating", Unit: t.d.Unit,
		Preference: cfg.HA.Preference, TTL: cfg.HA.Lease.D(), Address: g.addrs[0], Net: g,
		Busy: busy{t.d.SIP}, Ready: g.ready, Log: t.d.Log})
	if err != nil {
		return err
	}
	t.group, t.owner = g, o
	rctx, cancel := context.WithCancel(context.Background())
	t.cancel, t.done = cancel, make(chan struct{})
	go func() {
		defer close(t.done)
		go t.d.Keeper.Run(rctx)
		o.Run(rctx)
	}()
	t.log.Info("ha: floating addresses", "interfaces", g.ifaces, "lease", cfg.HA.Lease.D().String(), "preference", cfg.HA.Preference)
	return nil
}

// Drain implements unit.Subsystem: the addresses stay until Close (calls
// in progress still use them).
func (t *Takeover) Drain(context.Context) error { return nil }

// Close gives the addresses up (another unit takes them at once) and
// writes what the keeper still has: the B2BUA, closed before, ended its
// calls, and their records must go now rather than be adopted by the next
// owner.
func (t *Takeover) Close() error {
	t.mu.Lock()
	cancel, done := t.cancel, t.done
	t.cancel = nil
	t.mu.Unlock()
	if cancel == nil {
		return nil
	}
	t.closing.Store(true)
	ctx, stop := context.WithTimeout(context.Background(), 2*time.Second)
	defer stop()
	if t.rehoming {
		// The records of the calls ended go before the unit's key: no
		// other unit may move calls that have ended.
		t.d.Keeper.flush(ctx)
	}
	cancel()
	<-done
	t.d.Keeper.flush(ctx)
	return nil
}

type busy struct{ s SIP }

func (b busy) Busy() bool { return b.s.CallCount() > 0 }

// group is the floating addresses, which move together: a call's two
// legs need theirs on the same unit. It is the vip.Net of the election:
// adding the addresses is taking the calls over, removing them giving them
// up.
type group struct {
	t       *Takeover
	net     vip.Net
	ifaces  []string
	addrs   []vip.Address
	records []store.KV // read by ready, adopted by Add
	owned   bool
	mu      sync.Mutex
}

func (t *Takeover) newGroup(cfg *config.Config) (*group, error) {
	g := &group{t: t, net: t.d.Net}
	for i, f := range cfg.HA.Floating {
		p, err := cfg.FloatingPrefix(f)
		if err != nil {
			return nil, fmt.Errorf("ha.floating[%d]: %w", i, err)
		}
		g.ifaces = append(g.ifaces, f.Interface)
		g.addrs = append(g.addrs, vip.Address{Prefix: p, Link: f.Link})
	}
	if g.net == nil {
		n, err := newNetlink()
		if err != nil {
			return nil, err
		}
		g.net = n
	}
	return g, nil
}

// ready reads the records of the calls this unit is to carry: the
// addresses are not taken while they cannot be read.
func (g *group) ready(ctx context.Context) error {
	kvs, err := g.t.d.Store.List(ctx, RecordPrefix)
	if err != nil {
		return fmt.Errorf("ha: reading the call records: %w", err)
	}
	g.mu.Lock()
	g.records = kvs
	g.mu.Unlock()
	return nil
}

// Add implements vip.Net for the whole group; the first Add of a term
// takes the calls over.
func (g *group) Add(_ vip.Address, lifetime time.Duration) error {
	for _, a := range g.addrs {
		if err := g.net.Add(a, lifetime); err != nil {
			return err
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.owned {
		return nil
	}
	g.owned = true
	// The neighbours learn the move before the calls are adopted, not
	// after: each call's media comes back as soon as its ports are bound
	// here (the owner announces once more when Add returns).
	if err := g.Announce(vip.Address{}); err != nil {
		g.t.log.Warn("ha: announcing the floating addresses", "err", err)
	}
	g.t.takeOver(g.records)
	g.records = nil
	return nil
}

// Remove implements vip.Net: the calls on the addresses are another
// unit's from now on.
func (g *group) Remove(_ vip.Address) error {
	var errs []error
	for _, a := range g.addrs {
		errs = append(errs, g.net.Remove(a))
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.owned {
		g.owned = false
		g.t.giveUp(g.ifaces)
	}
	return errors.Join(errs...)
}

// Announce implements vip.Net.
func (g *group) Announce(_ vip.Address) error {
	var errs []error
	for _, a := range g.addrs {
		errs = append(errs, g.net.Announce(a))
	}
	return errors.Join(errs...)
}

// takeOver opens the listeners on the addresses (now this unit's) and
// adopts the calls of the records. New calls get 503 and in-dialog requests
// wait while it adopts: a new call could take a media port a record needs,
// and a request for a call not adopted yet would get 481. g.mu is held.
func (t *Takeover) takeOver(records []store.KV) {
	start := time.Now()
	t.owned.Store(true)
	owner.Set(1)
	takeovers.Inc()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The listeners open before the calls are adopted (the dialogs need
	// them), but new calls wait until they are.
	t.d.SIP.Adopting(true)
	defer t.d.SIP.Adopting(false)
	if err := t.d.SIP.Hold(ctx, nil); err != nil {
		t.log.Error("ha: opening the listeners on the floating addresses", "err", err)
	}
	t.d.Keeper.SetActive(true) // the adopted calls' records are this unit's now
	ids, bad := t.carryOn(ctx, records, t.d.SIP.Adopt)
	t.log.Info("ha: floating addresses taken", "calls_adopted", len(ids), "calls_refused", bad, "took", time.Since(start).String())
	go t.reconnect(ids)
}

// reconnect opens the TCP/TLS connections of the calls ids towards their
// peers (off the election's path: a peer that does not answer holds it up
// for the handshake timeout).
func (t *Takeover) reconnect(ids []string) {
	if len(ids) == 0 || t.closing.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rs := t.d.SIP.Reconnect(ctx, ids)
	ok, failed := 0, 0
	for _, r := range rs {
		if r.Err == "" {
			ok++
		} else {
			failed++
		}
	}
	t.stats.Lock()
	t.stats.reconnects += ok
	t.stats.reconnFail += failed
	t.stats.Unlock()
	if len(rs) > 0 {
		t.log.Info("ha: connections towards the peers of the calls carried on", "opened", ok, "failed", failed)
	}
}

// carryOn carries the calls of records on with carry (Adopt or Rehome);
// a record that cannot be used is removed, one of a call carried here
// already left alone. It counts the calls carried and refused and returns
// the ids of those carried and the number refused.
func (t *Takeover) carryOn(ctx context.Context, records []store.KV, carry func([]byte) (string, error)) (ids []string, bad int) {
	for _, kv := range records {
		id, err := carry(kv.Value)
		if errors.Is(err, b2bua.ErrCarried) {
			continue // its own record: a call that stayed here
		}
		if err != nil {
			bad++
			refused.Inc()
			t.log.Warn("ha: call not carried on; its record is removed", "key", kv.Key, "err", err)
			if err := t.d.Store.Delete(ctx, kv.Key); err != nil {
				t.log.Warn("ha: removing a call record", "key", kv.Key, "err", err)
			}
			continue
		}
		ids = append(ids, id)
		adopted.Inc()
		t.log.Debug("ha: call carried on", "call_id", id)
	}
	n := len(ids)
	t.stats.Lock()
	t.stats.takeovers++
	t.stats.adopted += n
	t.stats.refused += bad
	t.stats.last = time.Now()
	t.stats.Unlock()
	return ids, bad
}

// giveUp closes the listeners and forgets the calls (no BYE: the new owner
// carries them on). g.mu is held.
func (t *Takeover) giveUp(ifaces []string) {
	t.owned.Store(false)
	owner.Set(0)
	t.d.Keeper.SetActive(false) // records are written by the owner only
	if t.closing.Load() {
		t.log.Info("ha: floating addresses released")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n := t.d.SIP.Abandon(ifaces)
	if err := t.d.SIP.Hold(ctx, ifaces); err != nil {
		t.log.Error("ha: closing the listeners on the floating addresses", "err", err)
	}
	t.log.Warn("ha: floating addresses given up", "calls_left_to_the_new_owner", n)
}

// Status is what status shows of the takeover.
type Status struct {
	Mode         string    `json:"mode"` // move | rehome
	Interfaces   []string  `json:"interfaces"`
	Owner        bool      `json:"owner"`
	Takeovers    int       `json:"takeovers"`
	CallsAdopted int       `json:"calls_adopted"`
	CallsRefused int       `json:"calls_refused"`
	LastTakeover time.Time `json:"last_takeover,omitzero"`
	// Reconnects: TCP/TLS connections opened towards the peers of the
	// calls carried on (ReconnectsFailed: could not be opened).
	Reconnects       int `json:"reconnects"`
	ReconnectsFailed int `json:"reconnects_failed"`
	// Standby: keepalived made this box VRRP backup (docs/ha.md); the unit
	// ranks after the units that are not.
	Standby bool `json:"standby,omitempty"`
	// MediaGap: per direction of the adopted calls' streams, the time from
	// their restore to the first packet relayed.
	MediaGap media.GapStats `json:"media_gap"`
}

// Status reports the takeover's state (nil: no floating addresses).
func (t *Takeover) Status() *Status {
	t.mu.Lock()
	g, rehoming := t.group, t.rehoming
	t.mu.Unlock()
	if g == nil && !rehoming {
		return nil
	}
	t.mu.Lock()
	o := t.owner
	t.mu.Unlock()
	standby := o != nil && o.Standby()
	var ifaces []string
	mode := config.HAModeMove
	if g != nil {
		ifaces = g.ifaces
	} else {
		mode = config.HAModeRehome
	}
	var gaps media.GapStats
	if t.d.Gaps != nil {
		gaps = t.d.Gaps()
	}
	t.stats.Lock()
	defer t.stats.Unlock()
	return &Status{Mode: mode, Interfaces: ifaces, Owner: t.owned.Load(), Takeovers: t.stats.takeovers,
		CallsAdopted: t.stats.adopted, CallsRefused: t.stats.refused, LastTakeover: t.stats.last, MediaGap: gaps,
		Reconnects: t.stats.reconnects, ReconnectsFailed: t.stats.reconnFail, Standby: standby}
}
