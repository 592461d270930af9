package takeover

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
// ran out: the unit died or lost etcd), the first unit to claim it
// (NAMESPACE/ha/rehome/claims/<unit>, under the claimer's lease) moves
// that unit's calls to its own addresses with re-INVITEs
// (b2bua.Service.Rehome), then removes the claim.

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
					t.claim(tctx, g.ID, u)
				}
			}
		}
	}
}

// claim moves the calls of the unit gone here, unless another unit
// claimed them first.
func (t *Takeover) claim(ctx context.Context, lease clientv3.LeaseID, gone string) {
	cli, key := t.d.Store.Client(), t.rehomePrefix()+"claims/"+gone
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := cli.Txn(cctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, t.d.Unit, clientv3.WithLease(lease))).Commit()
	if err != nil || !resp.Succeeded {
		t.log.Info("ha: rehome: unit gone; its calls are another unit's to move", "unit", gone, "err", err)
		return
	}
	defer cli.Delete(context.Background(), key)
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
	n, bad := t.carryOn(cctx, theirs, t.d.SIP.Rehome)
	t.log.Info("ha: rehome: calls of a unit gone moved here", "unit", gone, "calls_adopted", n, "calls_refused", bad,
		"took", time.Since(start).String())
}

// startRehome starts rehome mode (Apply, t.mu held).
func (t *Takeover) startRehome(cfg *config.Config) {
	t.d.Keeper.SetActive(true) // every unit keeps its own calls' records
	t.rehoming = true
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
