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
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
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
	rejoin    chan struct{} // Rejoin: the hold ends now
	// standby ranks the unit after every unit not on standby (keepalived
	// made its box VRRP backup); lease is the current term's (0: none),
	// under which the unit's key says so.
	standby atomic.Bool
	lease   atomic.Int64
}

// standbyValue is the value of a unit's key while it is on standby.
const standbyValue = "standby"

// SetStandby puts the unit on standby (or takes it off): on standby it
// ranks after every unit that is not, whatever the preference, so it takes
// the address only when no such unit takes part; an owner on standby
// hands the address to such a unit once it carries no call (Release hands
// it over at once). It reports whether the state changed.
func (o *Owner) SetStandby(ctx context.Context, on bool) (bool, error) {
	if o.standby.Swap(on) == on {
		return false, nil
	}
	o.log.Info("vip: standby", "on", on)
	if id := o.lease.Load(); id != 0 {
		pctx, cancel := context.WithTimeout(ctx, o.cfg.TTL)
		defer cancel()
		if _, err := o.cfg.Client.Put(pctx, o.cfg.Prefix+"/units/"+o.cfg.Unit, o.keyValue(), clientv3.WithLease(clientv3.LeaseID(id))); err != nil {
			return true, fmt.Errorf("vip: announcing the standby: %w", err)
		}
	}
	return true, nil
}

// Standby reports whether the unit is on standby.
func (o *Owner) Standby() bool { return o.standby.Load() }

func (o *Owner) keyValue() string {
	if o.standby.Load() {
		return standbyValue
	}
	return o.cfg.Unit
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
		release: make(chan struct{}, 1), rejoin: make(chan struct{}, 1)}, nil
}

// Release gives the address up now (a planned move: removed, the lease
// revoked so that another unit takes it at once) and keeps this unit out
// of the election for hold, so that it does not take the address back. It
// reports whether this unit owned the address.
func (o *Owner) Release(hold time.Duration) bool {
	if !o.owned.Load() {
		return false
	}
	select {
	case <-o.rejoin: // an earlier Rejoin's wake-up must not end this hold
	default:
	}
	o.holdUntil.Store(time.Now().Add(hold).UnixNano())
	select {
	case o.release <- struct{}{}:
	default:
	}
	return true
}

// Rejoin ends the hold of a release now: the unit takes part in the
// election again (and, if preferred, gets the address once its owner
// carries no call). It reports whether the unit was held out.
func (o *Owner) Rejoin() bool {
	held := time.Now().UnixNano() < o.holdUntil.Swap(0)
	if held {
		o.log.Info("vip: the hold after a release ended early; back in the election")
	}
	select {
	case o.rejoin <- struct{}{}:
	default:
	}
	return held
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
			case <-o.rejoin:
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
	ren := &renewals{ttl: ttl}
	ren.last.Store(start.UnixNano())
	go ren.keep(tctx, cli, g.ID, stop)

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
	o.lease.Store(int64(g.ID))
	defer o.lease.Store(0)
	if _, err := cli.Put(tctx, o.cfg.Prefix+"/units/"+o.cfg.Unit, o.keyValue(), clientv3.WithLease(g.ID)); err != nil {
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

// renewals renews the lease and follows the renewals. The lease ends on
// the etcd side ttl after its last renewal there, which is after the
// renewal was sent from here: last is the sending time of the last renewal
// etcd answered. The fencing deadline is an eighth of the TTL before
// last + ttl (125 ms with 1 s), so the address is nobody's for a moment
// rather than two units': another unit adds it only after etcd revoked the
// lease and it won the election and read the call records, and the
// removal here takes a few milliseconds. (It was a quarter while the
// renewals were counted from their answers, which come later.)
type renewals struct {
	ttl    time.Duration
	last   atomic.Int64 // UnixNano of the last renewal answered (or the grant)
	closed atomic.Bool
}

// keep follows KeepAlive's renewals until the lease is gone or ctx ends,
// then stops the term.
func (r *renewals) keep(ctx context.Context, cli *clientv3.Client, id clientv3.LeaseID, stop func()) {
	for sent := range KeepAlive(ctx, cli, id, r.ttl) {
		r.last.Store(sent.UnixNano())
	}
	r.closed.Store(true)
	stop()
}

// KeepAlive renews lease id of ttl every quarter of ttl until ctx ends or
// etcd says the lease is gone; it sends on the channel the time the latest
// renewal that etcd answered was sent (the lease runs until at least that
// time + ttl), and closes it at the end. Why not clientv3's KeepAlive: it
// sends at most every 500 ms, and after an answer slower than a sixth of
// the TTL it waits a whole second period, which with a 1 s lease leaves
// renewals a second apart: past the fencing deadline, and at the lease's
// end in etcd. Here a renewal goes every 250 ms (1 s lease), each on a
// stream of its own (the client spreads them over the members) and without
// waiting for the one before: a slow member or a lost answer delays none
// of the next ones.
func KeepAlive(ctx context.Context, cli *clientv3.Client, id clientv3.LeaseID, ttl time.Duration) <-chan time.Time {
	const inFlight = 4
	ch := make(chan time.Time, 1)
	kctx, cancel := context.WithCancel(ctx)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		latest time.Time
	)
	slots := make(chan struct{}, inFlight)
	renew := func(sent time.Time) {
		defer wg.Done()
		defer func() { <-slots }()
		rctx, stop := context.WithTimeout(kctx, ttl)
		_, err := cli.KeepAliveOnce(rctx, id)
		stop()
		switch {
		case errors.Is(err, rpctypes.ErrLeaseNotFound):
			cancel() // gone in etcd: the end
		case err == nil:
			mu.Lock()
			if sent.After(latest) {
				latest = sent
				select { // the receiver wants the latest only
				case <-ch:
				default:
				}
				ch <- sent
			}
			mu.Unlock()
		}
	}
	go func() {
		defer close(ch)
		defer wg.Wait()
		defer cancel()
		tick := time.NewTicker(ttl / 4)
		defer tick.Stop()
		for {
			select {
			case <-kctx.Done():
				return
			case <-tick.C:
			}
			select {
			case slots <- struct{}{}:
				wg.Add(1)
				go renew(time.Now())
			default: // as many renewals wait already
			}
		}
	}()
	return ch
}

func (r *renewals) deadline() time.Time {
	return time.Unix(0, r.last.Load()).Add(r.ttl - r.ttl/8)
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

// preferredAlive reports whether a unit ranked before this one takes part:
// units on standby rank after the others, then by preference.
func (o *Owner) preferredAlive(ctx context.Context) (bool, int64, error) {
	gctx, cancel := context.WithTimeout(ctx, o.cfg.TTL)
	defer cancel()
	resp, err := o.cfg.Client.Get(gctx, o.cfg.Prefix+"/units/", clientv3.WithPrefix())
	if err != nil {
		return false, 0, fmt.Errorf("vip: reading the units: %w", err)
	}
	me := [2]int{0, o.rank(o.cfg.Unit)}
	if o.standby.Load() {
		me[0] = 1
	}
	for _, kv := range resp.Kvs {
		u := strings.TrimPrefix(string(kv.Key), o.cfg.Prefix+"/units/")
		r := [2]int{0, o.rank(u)}
		if string(kv.Value) == standbyValue {
			r[0] = 1
		}
		if u != o.cfg.Unit && (r[0] < me[0] || r[0] == me[0] && r[1] < me[1]) {
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
				o.fenced(ren)
				return errLeaseLost
			}
			return nil
		case <-o.release:
			o.log.Info("vip: address released on request (planned move)")
			return nil
		case <-time.After(max(wait, 0)):
		}
		if ren.lost() {
			o.fenced(ren)
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
			o.fenced(ren)
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
func (o *Owner) fenced(ren *renewals) {
	fencedTotal.WithLabelValues(o.label()).Inc()
	o.log.Warn("vip: lease not renewed; address removed (fencing)", "lease_lost", ren.closed.Load(),
		"last_renewal_sent", time.Since(time.Unix(0, ren.last.Load())).Round(time.Millisecond).String())
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
