// Package vip keeps a floating address on exactly one unit of a cluster at a
// time. The units elect the owner through etcd (a lease with a short time to
// live); the owner puts the address on its interface and announces it
// (gratuitous ARP), and a unit that cannot renew its lease removes the
// address at once, before the lease runs out on the etcd side and another
// unit may take it (fencing).
package vip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Address is a floating address and the interface it goes on.
type Address struct {
	Prefix netip.Prefix // e.g. 192.0.2.10/24
	Link   string       // interface name
}

func (a Address) String() string { return a.Prefix.String() + " on " + a.Link }

// Net configures the address on this unit (see Netlink).
type Net interface {
	// Add puts the address on its interface, valid for lifetime (the kernel
	// removes it by itself after that unless Add is called again: a unit
	// killed outright does not keep it).
	Add(a Address, lifetime time.Duration) error
	// Remove takes the address off; no error when it is not there.
	Remove(a Address) error
	// Announce tells the link the address moved here (gratuitous ARP).
	Announce(a Address) error
}

// Busy is implemented by the caller: while the address carries calls the
// owner keeps it even when a unit it prefers comes back.
type Busy interface {
	Busy() bool
}

// Config is one unit's part in one floating address.
type Config struct {
	Client *clientv3.Client
	Prefix string // etcd key prefix of this address, e.g. /palisade/vip/outside
	Unit   string // this unit's name
	// Preference lists units in the order they should own the address; a
	// unit not listed comes after those listed. Empty: first come.
	Preference []string
	TTL        time.Duration // of the lease; etcd raises it to its minimum (2 s by default)
	Address    Address
	Net        Net
	Busy       Busy // nil: never busy
	// Ready is called when this unit has won, before the address is added
	// (the takeover reads the calls it will carry here). While it fails the
	// address is not added; it is called again until it succeeds or the
	// lease is lost. Nil: always ready.
	Ready func(ctx context.Context) error
	Log   *slog.Logger
}

// Owner runs the election for one address on one unit.
type Owner struct {
	cfg   Config
	log   *slog.Logger
	owned atomic.Bool
	// Release: a request to give the address up now, and the time
	// (UnixNano) until which this unit stays out of the election after.
	release   chan struct{}
	holdUntil atomic.Int64
}

// New checks cfg.
func New(cfg Config) (*Owner, error) {
	switch {
	case cfg.Client == nil || cfg.Net == nil:
		return nil, errors.New("vip: no etcd client or no network configurator")
	case cfg.Unit == "" || strings.Contains(cfg.Unit, "/"):
		return nil, fmt.Errorf("vip: unit name %q", cfg.Unit)
	case !cfg.Address.Prefix.IsValid() || cfg.Address.Link == "":
		return nil, fmt.Errorf("vip: address %v", cfg.Address)
	case cfg.TTL < time.Second:
		return nil, fmt.Errorf("vip: lease of %v (at least 1 s)", cfg.TTL)
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	cfg.Prefix = strings.TrimSuffix(cfg.Prefix, "/")
	return &Owner{cfg: cfg, log: cfg.Log.With("vip", cfg.Address.String(), "unit", cfg.Unit),
		release: make(chan struct{}, 1)}, nil
}

// Release gives the address up now (a planned move: removed, the lease
// revoked so that another unit takes it at once) and keeps this unit out
// of the election for hold, so that it does not take the address back. It
// reports whether this unit owned the address.
func (o *Owner) Release(hold time.Duration) bool {
	if !o.owned.Load() {
		return false
	}
	o.holdUntil.Store(time.Now().Add(hold).UnixNano())
	select {
	case o.release <- struct{}{}:
	default:
	}
	return true
}

// Owned reports whether the address is on this unit now.
func (o *Owner) Owned() bool { return o.owned.Load() }

// errLeaseLost ends a term whose lease was not renewed in time.
var errLeaseLost = errors.New("vip: the lease was not renewed in time")

// Run takes part in the election until ctx ends, then gives the address
// up (removing it and resigning, so another unit takes it at once).
func (o *Owner) Run(ctx context.Context) error {
	// An address left behind by an earlier run of this unit (killed
	// outright) is not ours until we win again.
	if err := o.cfg.Net.Remove(o.cfg.Address); err != nil {
		return fmt.Errorf("vip: removing a stale %v: %w", o.cfg.Address, err)
	}
	for ctx.Err() == nil {
		if wait := time.Until(time.Unix(0, o.holdUntil.Load())); wait > 0 {
			o.log.Info("vip: out of the election after a release", "for", wait.Round(time.Second).String())
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
		}
		err := o.term(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			o.log.Warn("vip: out of the election; trying again", "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
	return nil
}

// term is one lease: wait for our turn, own the address while the lease is
// renewed, give it up when the lease is lost or a preferred unit may have it.
func (o *Owner) term(ctx context.Context) error {
	cli := o.cfg.Client
	start := time.Now()
	gctx, cancel := context.WithTimeout(ctx, o.cfg.TTL)
	g, err := cli.Grant(gctx, int64((o.cfg.TTL+time.Second-1)/time.Second))
	cancel()
	if err != nil {
		return fmt.Errorf("vip: lease: %w", err)
	}
	ttl := time.Duration(g.TTL) * time.Second
	tctx, stop := context.WithCancel(ctx)
	defer stop()
	ka, err := cli.KeepAlive(tctx, g.ID)
	if err != nil {
		return fmt.Errorf("vip: keepalive: %w", err)
	}
	ren := &renewals{ttl: ttl}
	ren.last.Store(start.UnixNano())
	go ren.follow(ka, stop)

	sess, err := concurrency.NewSession(cli, concurrency.WithLease(g.ID), concurrency.WithContext(tctx))
	if err != nil {
		return fmt.Errorf("vip: session: %w", err)
	}
	defer func() {
		// On a clean stop the lease is revoked so that another unit takes
		// over now rather than after the TTL; a lost lease is gone anyway.
		rctx, cancel := context.WithTimeout(context.Background(), time.Second)
		cli.Revoke(rctx, g.ID)
		cancel()
		sess.Close()
	}()
	if _, err := cli.Put(tctx, o.cfg.Prefix+"/units/"+o.cfg.Unit, o.cfg.Unit, clientv3.WithLease(g.ID)); err != nil {
		return fmt.Errorf("vip: announcing the unit: %w", err)
	}
	el := concurrency.NewElection(sess, o.cfg.Prefix+"/owner")
	if err := o.waitTurn(tctx, ren); err != nil {
		return err
	}
	if err := el.Campaign(tctx, o.cfg.Unit); err != nil {
		if ren.lost() {
			return errLeaseLost
		}
		return fmt.Errorf("vip: campaign: %w", err)
	}
	if err := o.ready(tctx, ren); err != nil {
		return err
	}
	err = o.own(tctx, ren)
	o.drop()
	if errors.Is(err, errLeaseLost) {
		return err
	}
	rctx, cancel := context.WithTimeout(context.Background(), time.Second)
	el.Resign(rctx)
	cancel()
	return err
}

// renewals follows the lease's keepalive answers. The lease ends on the
// etcd side ttl after its last renewal there, which is a little before the
// answer arrived here (by the answer's travel time). The fencing deadline
// is a quarter of the TTL before last + ttl: as long as an answer takes
// less than that to arrive, the address is nobody's for a moment rather
// than two units'.
type renewals struct {
	ttl    time.Duration
	last   atomic.Int64 // UnixNano of the last answer (or the grant)
	closed atomic.Bool
}

func (r *renewals) follow(ka <-chan *clientv3.LeaseKeepAliveResponse, stop func()) {
	for resp := range ka {
		if resp.TTL > 0 { // (the client closes the channel on an expired lease)
			r.last.Store(time.Now().UnixNano())
		}
	}
	r.closed.Store(true)
	stop()
}

func (r *renewals) deadline() time.Time {
	return time.Unix(0, r.last.Load()).Add(r.ttl - r.ttl/4)
}

func (r *renewals) lost() bool { return r.closed.Load() || time.Now().After(r.deadline()) }

// waitTurn returns when no unit ranked before this one takes part: while
// a preferred unit is in the election, this one stays out of it. It
// follows the units' keys with a watch, so that it campaigns as soon as
// the preferred unit's lease ends in etcd.
func (o *Owner) waitTurn(ctx context.Context, ren *renewals) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wch clientv3.WatchChan
	for {
		pref, rev, err := o.preferredAlive(ctx)
		if err != nil {
			return err
		}
		if !pref {
			return nil
		}
		if wch == nil {
			wch = o.cfg.Client.Watch(wctx, o.cfg.Prefix+"/units/", clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		}
		select {
		case <-ctx.Done():
			if ren.lost() {
				return errLeaseLost
			}
			return ctx.Err()
		case <-wch:
		case <-time.After(o.cfg.TTL):
		}
	}
}

// preferredAlive reports whether a unit ranked before this one takes part.
func (o *Owner) preferredAlive(ctx context.Context) (bool, int64, error) {
	if len(o.cfg.Preference) == 0 {
		return false, 0, nil
	}
	gctx, cancel := context.WithTimeout(ctx, o.cfg.TTL)
	defer cancel()
	resp, err := o.cfg.Client.Get(gctx, o.cfg.Prefix+"/units/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return false, 0, fmt.Errorf("vip: reading the units: %w", err)
	}
	me := o.rank(o.cfg.Unit)
	for _, kv := range resp.Kvs {
		u := strings.TrimPrefix(string(kv.Key), o.cfg.Prefix+"/units/")
		if u != o.cfg.Unit && o.rank(u) < me {
			return true, resp.Header.Revision, nil
		}
	}
	return false, resp.Header.Revision, nil
}

func (o *Owner) rank(unit string) int {
	if i := slices.Index(o.cfg.Preference, unit); i >= 0 {
		return i
	}
	return len(o.cfg.Preference)
}

// ready waits until cfg.Ready succeeds, bounded by the fencing deadline.
func (o *Owner) ready(ctx context.Context, ren *renewals) error {
	if o.cfg.Ready == nil {
		return nil
	}
	for {
		rctx, cancel := context.WithDeadline(ctx, ren.deadline())
		err := o.cfg.Ready(rctx)
		cancel()
		switch {
		case ren.lost():
			return errLeaseLost
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		}
		o.log.Warn("vip: elected but not ready; the address stays off", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(o.cfg.TTL / 6):
		}
	}
}

// own holds the address: it is configured with a lifetime of the TTL and
// refreshed after each renewal; it is removed at the fencing deadline, or
// given to a preferred unit when no call uses it.
func (o *Owner) own(ctx context.Context, ren *renewals) error {
	a := o.cfg.Address
	if ren.lost() {
		return errLeaseLost
	}
	if err := o.cfg.Net.Add(a, ren.ttl); err != nil {
		return fmt.Errorf("vip: adding %v: %w", a, err)
	}
	o.owned.Store(true)
	ownedGauge.WithLabelValues(o.label()).Set(1)
	takenTotal.WithLabelValues(o.label()).Inc()
	o.log.Info("vip: address taken")
	o.announce()
	// Announced again at the next renewals, as keepalived repeats its
	// gratuitous ARPs: a neighbour that missed one frame would go on
	// sending to the dead unit until its cache entry went stale.
	repeats := announceRepeats
	refreshed := ren.last.Load()
	select {
	case <-o.release: // a request of an earlier term
	default:
	}
	for {
		wait := time.Until(ren.deadline())
		if wait > ren.ttl/6 {
			wait = ren.ttl / 6
		}
		select {
		case <-ctx.Done():
			if ren.lost() {
				o.fenced()
				return errLeaseLost
			}
			return nil
		case <-o.release:
			o.log.Info("vip: address released on request (planned move)")
			return nil
		case <-time.After(max(wait, 0)):
		}
		if ren.lost() {
			o.fenced()
			return errLeaseLost
		}
		if last := ren.last.Load(); last != refreshed {
			refreshed = last
			if err := o.cfg.Net.Add(a, ren.ttl); err != nil {
				o.log.Warn("vip: refreshing the address", "err", err)
			}
			if repeats > 0 {
				repeats--
				o.announce()
			}
		}
		if o.cfg.Busy != nil && o.cfg.Busy.Busy() {
			continue
		}
		// No etcd request may hold the fencing up: this one ends at the
		// deadline.
		fctx, cancel := context.WithDeadline(ctx, ren.deadline())
		pref, _, err := o.preferredAlive(fctx)
		cancel()
		if ren.lost() {
			o.fenced()
			return errLeaseLost
		}
		if err == nil && pref {
			o.log.Info("vip: a preferred unit is back and the address carries no call; handing it over")
			return nil
		}
	}
}

// announceRepeats is how many times the owner announces the address again
// after taking it, one at each of the following renewals (a third of the
// lease apart).
const announceRepeats = 2

func (o *Owner) announce() {
	if err := o.cfg.Net.Announce(o.cfg.Address); err != nil {
		o.log.Warn("vip: announcing the address", "err", err)
	}
}

func (o *Owner) label() string { return o.cfg.Address.Prefix.Addr().String() }

// fenced counts and logs a removal for a lease not renewed in time.
func (o *Owner) fenced() {
	fencedTotal.WithLabelValues(o.label()).Inc()
	o.log.Warn("vip: lease not renewed; address removed (fencing)")
}

// drop removes the address (again: a lost lease must never leave it).
func (o *Owner) drop() {
	if !o.owned.Load() {
		return
	}
	for i := 0; ; i++ {
		err := o.cfg.Net.Remove(o.cfg.Address)
		if err == nil {
			break
		}
		o.log.Error("vip: removing the address failed", "err", err)
		if i == 4 {
			break // the kernel drops it when its lifetime ends
		}
		time.Sleep(50 * time.Millisecond)
	}
	o.owned.Store(false)
	ownedGauge.WithLabelValues(o.label()).Set(0)
	o.log.Info("vip: address released")
}
