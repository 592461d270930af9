package takeover

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/store"
	"github.com/palisade-sbc/palisade/internal/testkit"
	"github.com/palisade-sbc/palisade/internal/testkit/etcdtest"
)

// rehomeUnit is one unit in rehome mode on a real etcd, its B2BUA faked.
type rehomeUnit struct {
	tk  *Takeover
	sip *fakeSIP
	log *testkit.SyncBuffer
}

func startRehomeUnit(t *testing.T, endpoints []string, ns, name string, pref []string) *rehomeUnit {
	t.Helper()
	st, err := store.OpenEtcd(context.Background(), store.EtcdOptions{Endpoints: endpoints, Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	u := &rehomeUnit{sip: &fakeSIP{}, log: &testkit.SyncBuffer{}}
	log := slog.New(slog.NewTextHandler(u.log, nil))
	u.tk = New(Deps{Store: st, Unit: name, SIP: u.sip, Keeper: NewKeeper(st, log), Log: log})
	cfg := config.Default()
	cfg.HA.Mode, cfg.HA.Lease, cfg.HA.Preference = config.HAModeRehome, config.Duration(2*time.Second), pref
	if err := u.tk.Apply(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.tk.Close() })
	waitFor(t, name+" registered", func() bool { s := u.tk.Status(); return s != nil && s.Owner })
	return u
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !ok(); {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30 s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (u *rehomeUnit) moved() []string {
	u.sip.mu.Lock()
	defer u.sip.mu.Unlock()
	return append([]string(nil), u.sip.adopted...)
}

// In rehome mode the calls of a unit gone are moved by the live unit
// ranked first in ha.preference, whoever hears of the death first: the
// other unit does not claim them, then or later. Units not listed rank
// after those listed.
func TestRehomeClaimByPreference(t *testing.T) {
	etcd := etcdtest.Start(t, 1)
	for i, pref := range [][]string{{"c", "b"}, {"b", "c"}, {"c"}} {
		t.Run(strings.Join(pref, ","), func(t *testing.T) {
			ns := fmt.Sprintf("claim-%d-%d/", os.Getpid(), i)
			// The unit ranked last starts first: it hears of the death no
			// later than the others.
			a := startRehomeUnit(t, etcd.Endpoints(), ns, "a", pref)
			b := startRehomeUnit(t, etcd.Endpoints(), ns, "b", pref)
			c := startRehomeUnit(t, etcd.Endpoints(), ns, "c", pref)
			st := a.tk.d.Store
			for _, id := range []string{"c1", "c2"} {
				if err := st.PutTTL(context.Background(), RecordPrefix+id, fmt.Appendf(nil, `{"unit":"a","id":"good-%s"}`, id), time.Hour); err != nil {
					t.Fatal(err)
				}
			}
			winner, loser := c, b
			if pref[0] == "b" {
				winner, loser = b, c
			}
			a.tk.Close() // its key goes with its lease
			waitFor(t, "the preferred unit moves a's calls", func() bool { return len(winner.moved()) == 2 })
			waitFor(t, "the other unit leaves them", func() bool { return strings.Contains(loser.log.String(), "its calls are another unit's to move") })
			if m := loser.moved(); len(m) != 0 {
				t.Fatalf("the unit ranked second moved %v too", m)
			}
		})
	}
}

// A unit ranked first that is alive but does not claim (stuck) holds the
// claim up for a lease only: then the next unit moves the calls.
func TestRehomeClaimFallsBack(t *testing.T) {
	etcd := etcdtest.Start(t, 1)
	ns := fmt.Sprintf("fallback-%d/", os.Getpid())
	pref := []string{"stuck", "b"}
	a := startRehomeUnit(t, etcd.Endpoints(), ns, "a", pref)
	b := startRehomeUnit(t, etcd.Endpoints(), ns, "b", pref)
	cli := a.tk.d.Store.Client()
	// "stuck" is registered (its key under a live lease) but watches nothing.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g, err := cli.Grant(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.KeepAlive(ctx, g.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, strings.TrimSuffix(ns, "/")+"/ha/rehome/units/stuck", "stuck", clientv3.WithLease(g.ID)); err != nil {
		t.Fatal(err)
	}
	if err := a.tk.d.Store.PutTTL(ctx, RecordPrefix+"c1", []byte(`{"unit":"a","id":"good-1"}`), time.Hour); err != nil {
		t.Fatal(err)
	}
	gone := time.Now()
	a.tk.Close()
	waitFor(t, "b moves a's call after the preferred unit did not", func() bool { return len(b.moved()) == 1 })
	if !strings.Contains(b.log.String(), "a preferred unit is to move its calls") {
		t.Error("b did not wait for the preferred unit")
	}
	t.Logf("b moved the call %v after a went", time.Since(gone).Round(10*time.Millisecond))
}
