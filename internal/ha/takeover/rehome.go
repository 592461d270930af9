package takeover

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/ha/vip"
	"github.com/palisade-sbc/palisade/internal/store"
)

// Rehome mode (ha.mode "rehome", docs/ha.md): no address moves. Every unit
// writes the records of its calls, and keeps a key under its lease
// (NAMESPACE/ha/rehome/units/<unit>). When a unit's key goes (its lease
// ran out: the unit died or lost etcd), the live unit ranked first by
// ha.preference claims it (NAMESPACE/ha/rehome/claims/<unit>/<rev>, under
// the claimer's lease; claim) and moves that unit's calls to its own
// addresses with re-INVITEs (b2bua.Service.Rehome).

// rehome runs the registration and the watch until ctx ends; it retries
// with a new lease while etcd cannot be reached.
func (t *Takeover) rehome(ctx context.Context, lease time.Duration) {
	for ctx.Err() == nil {
		err := t.rehomeTerm(ctx, lease)
		if ctx.Err() != nil {
			return
		}
		t.log.Warn("ha: rehome: out of the cluster's watch; trying again", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (t *Takeover) rehomePrefix() string {
	return strings.TrimSuffix(t.d.Store.Namespace(), "/") + "/ha/rehome/"
}

// rehomeTerm is one lease: the unit's key, and the watch of the others'.
func (t *Takeover) rehomeTerm(ctx context.Context, lease time.Duration) error {
	cli, pfx := t.d.Store.Client(), t.rehomePrefix()
	gctx, cancel := context.WithTimeout(ctx, lease)
	g, err := cli.Grant(gctx, int64((lease+time.Second-1)/time.Second))
	cancel()
	if err != nil {
		return fmt.Errorf("lease: %w", err)
	}
	tctx, stop := context.WithCancel(ctx)
	defer stop()
	defer func() {
		rctx, cancel := context.WithTimeout(context.Background(), time.Second)
		cli.Revoke(rctx, g.ID)
		cancel()
	}()
	ttl := time.Duration(g.TTL) * time.Second
	ka := vip.KeepAlive(tctx, cli, g.ID, ttl)
	put, err := cli.Put(tctx, pfx+"units/"+t.d.Unit, t.d.Unit, clientv3.WithLease(g.ID))
	if err != nil {
		return fmt.Errorf("registering the unit: %w", err)
	}
	t.owned.Store(true)
	owner.Set(1)
	defer func() { t.owned.Store(false); owner.Set(0) }()
	t.log.Info("ha: rehome: watching the other units", "lease", lease.String())
	wch := cli.Watch(tctx, pfx+"units/", clientv3.WithPrefix(), clientv3.WithRev(put.Header.Revision+1))
	// Fencing: a quarter of the lease before it can run out at etcd (and
	// another unit move this unit's calls), the calls here are forgotten,
	// without a BYE: a unit cut off from etcd must not end, by its media
	// timeout, the calls another unit carries on.
	fence := time.NewTimer(ttl - ttl/4)
	defer fence.Stop()
	for {
		select {
		case <-tctx.Done():
			return tctx.Err()
		case <-fence.C:
			n := t.d.SIP.Abandon(t.ifaces)
			t.log.Warn("ha: rehome: lease not renewed in time; the calls here are left to the other units", "calls", n)
			return errors.New("the lease was not renewed in time")
		case sent, ok := <-ka:
			if !ok {
				if tctx.Err() != nil {
					return tctx.Err()
				}
				n := t.d.SIP.Abandon(t.ifaces)
				t.log.Warn("ha: rehome: lease lost; the calls here are left to the other units", "calls", n)
				return errors.New("the lease was lost")
			}
			fence.Reset(time.Until(sent.Add(ttl - ttl/4)))
		case resp, ok := <-wch:
			if !ok || resp.Err() != nil {
				return fmt.Errorf("watch: %v", resp.Err())
			}
			for _, ev := range resp.Events {
				u := strings.TrimPrefix(string(ev.Kv.Key), pfx+"units/")
				if ev.Type == clientv3.EventTypeDelete && u != t.d.Unit {
					// Off the loop: the claim waits its turn, and the
					// fencing and the renewals must go on meanwhile.
					go t.claim(tctx, g.ID, ttl, u, ev.Kv.ModRevision)
				}
			}
		}
	}
}

// claimStep is how long a unit waits per better-ranked live unit before
// it claims the calls of a unit gone: the preferred unit claims first.
const claimStep = 300 * time.Millisecond

// claim moves the calls of the unit gone (its key deleted at revision rev)
// here, by preference: the units alive rank by ha.preference (units not
// listed after those listed, by name); this unit waits claimStep per unit
// ranked before it, then claims in one transaction that succeeds only if
// nobody claimed yet and no unit ranked before it is alive. While such a
// unit is alive and has not claimed, this one waits a lease more (that
// unit may be stuck) and then claims if nobody has. Exactly one unit wins
// either way: the claim key is created once.
func (t *Takeover) claim(ctx context.Context, lease clientv3.LeaseID, ttl time.Duration, gone string, rev int64) {
	cli, pfx := t.d.Store.Client(), t.rehomePrefix()
	// One key per death (its revision): a unit that comes back and dies
	// again is claimed afresh, and a late claimer never finds the key of a
	// claim that is done gone.
	key := fmt.Sprintf("%sclaims/%s/%d", pfx, gone, rev)
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	resp, err := cli.Get(cctx, pfx+"units/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	cancel()
	if err != nil {
		t.log.Warn("ha: rehome: unit gone; the other units could not be listed", "unit", gone, "err", err)
		return
	}
	var live []string
	for _, kv := range resp.Kvs {
		if u := strings.TrimPrefix(string(kv.Key), pfx+"units/"); u != gone {
			live = append(live, u)
		}
	}
	better := t.rankedBefore(live)
	won, err := t.claimAfter(ctx, time.Duration(len(better))*claimStep, key, lease, better)
	if err == nil && !won && len(better) > 0 {
		if taken, _ := t.claimed(ctx, key); !taken {
			t.log.Info("ha: rehome: unit gone; a preferred unit is to move its calls", "unit", gone, "preferred", better)
			won, err = t.claimAfter(ctx, ttl, key, lease, nil)
		}
	}
	if err != nil || !won {
		t.log.Info("ha: rehome: unit gone; its calls are another unit's to move", "unit", gone, "err", err)
		return
	}
	t.moveCalls(ctx, gone)
}

// rankedBefore returns the units of live ranked before this one.
func (t *Takeover) rankedBefore(live []string) []string {
	rank := func(u string) int {
		if i := slices.Index(t.pref, u); i >= 0 {
			return i
		}
		return len(t.pref)
	}
	me := rank(t.d.Unit)
	var out []string
	for _, u := range live {
		if r := rank(u); u != t.d.Unit && (r < me || r == me && u < t.d.Unit) {
			out = append(out, u)
		}
	}
	slices.Sort(out)
	return out
}

// claimAfter waits wait, then creates the claim key under lease if nobody
// has and none of the units absent is alive.
func (t *Takeover) claimAfter(ctx context.Context, wait time.Duration, key string, lease clientv3.LeaseID, absent []string) (bool, error) {
	select {
	case <-ctx.Done():
		return false, ctx.Err()
	case <-time.After(wait):
	}
	cmps := []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), "=", 0)}
	for _, u := range absent {
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(t.rehomePrefix()+"units/"+u), "=", 0))
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := t.d.Store.Client().Txn(cctx).If(cmps...).Then(clientv3.OpPut(key, t.d.Unit, clientv3.WithLease(lease))).Commit()
	if err != nil {
		return false, err
	}
	return resp.Succeeded, nil
}

// claimed reports whether the claim key exists.
func (t *Takeover) claimed(ctx context.Context, key string) (bool, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := t.d.Store.Client().Get(cctx, key, clientv3.WithCountOnly())
	if err != nil {
		return false, err
	}
	return resp.Count > 0, nil
}

// moveCalls moves the calls of the unit gone here (its claim won).
func (t *Takeover) moveCalls(ctx context.Context, gone string) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	start := time.Now()
	kvs, err := t.d.Store.List(cctx, RecordPrefix)
	if err != nil {
		t.log.Error("ha: rehome: reading the call records", "unit", gone, "err", err)
		return
	}
	var theirs []store.KV
	for _, kv := range kvs {
		var who struct {
			Unit string `json:"unit"`
		}
		if json.Unmarshal(kv.Value, &who) != nil || who.Unit == gone {
			theirs = append(theirs, kv) // (a corrupt record is refused and removed)
		}
	}
	takeovers.Inc()
	ids, bad := t.carryOn(cctx, theirs, t.d.SIP.Rehome)
	t.log.Info("ha: rehome: calls of a unit gone moved here", "unit", gone, "calls_adopted", len(ids), "calls_refused", bad,
		"took", time.Since(start).String())
	go t.reconnect(ids)
}

// startRehome starts rehome mode (Apply, t.mu held).
func (t *Takeover) startRehome(cfg *config.Config) {
	t.d.Keeper.SetActive(true) // every unit keeps its own calls' records
	t.rehoming = true
	t.pref = slices.Clone(cfg.HA.Preference)
	for _, in := range cfg.Network.Interfaces {
		t.ifaces = append(t.ifaces, in.Name)
	}
	rctx, cancel := context.WithCancel(context.Background())
	t.cancel, t.done = cancel, make(chan struct{})
	go func() {
		defer close(t.done)
		go t.d.Keeper.Run(rctx)
		t.rehome(rctx, cfg.HA.Lease.D())
	}()
	t.log.Info("ha: rehome mode", "lease", cfg.HA.Lease.D().String())
}
