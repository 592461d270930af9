package registrar

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/palisade-sbc/palisade/internal/store"
	"github.com/palisade-sbc/palisade/internal/testkit/etcdtest"
)

// clusterRegistrar is the registrar of unit name on its own etcd client.
func clusterRegistrar(t *testing.T, c *etcdtest.Cluster, ns, name string) (*Registrar, *store.Etcd) {
	t.Helper()
	et, err := store.OpenEtcd(context.Background(), store.EtcdOptions{Endpoints: c.Endpoints(), Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { et.Close() })
	r := New(et, nil, nil)
	r.SetCluster(name)
	if err := r.Apply(context.Background(), testConfig()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, et
}

func waitLookup(t *testing.T, r *Registrar, want int) []Binding {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); ; {
		if hops := r.Lookup("alice", "example.com"); len(hops) == want {
			r.mu.Lock()
			defer r.mu.Unlock()
			return append([]Binding(nil), r.bindings["alice@example.com"]...)
		}
		if time.Now().After(deadline) {
			t.Fatalf("lookup of alice does not show %d binding(s) within 60 s", want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestClusterSharedRegistrations: two units' registrars on one etcd: a
// challenge from unit a is answered through unit b (shared nonce secret),
// the binding is seen by a and names b as the unit holding the phone's
// flow, and an unregister through b is seen by a; the binding's key in
// etcd carries a lease.
func TestClusterSharedRegistrations(t *testing.T) {
	c := etcdtest.Start(t, 3)
	ns := fmt.Sprintf("reg-%d/", os.Getpid())
	ra, ea := clusterRegistrar(t, c, ns, "a")
	rb, _ := clusterRegistrar(t, c, ns, "b")
	srvA, srvB := serve(t, ra), serve(t, rb)

	p := newPhone(t, srvA, "alice", "wonderland")
	res := p.do(p.build([]string{p.contact("")}, "60"))
	if res.StatusCode != 401 {
		t.Fatalf("first REGISTER through a: %d", res.StatusCode)
	}
	p.srv = srvB
	if res = p.answer(res); res.StatusCode != 200 {
		t.Fatalf("answer to a's challenge through b: %d %s", res.StatusCode, res.Reason)
	}
	bs := waitLookup(t, ra, 1)
	if bs[0].Unit != "b" {
		t.Fatalf("binding seen by a: %+v, want unit b", bs[0])
	}
	resp, err := ea.Client().Get(context.Background(), ea.Key(keyPrefix+"alice@example.com"))
	if err != nil || len(resp.Kvs) != 1 || resp.Kvs[0].Lease == 0 {
		t.Fatalf("binding key in etcd: %+v %v, want one key with a lease", resp, err)
	}
	ttl, err := ea.Client().TimeToLive(context.Background(), clientLease(resp.Kvs[0].Lease))
	if err != nil || ttl.TTL <= 0 || ttl.TTL > 62 {
		t.Fatalf("lease of the binding: %+v %v, want about 60 s", ttl, err)
	}

	if res = p.register([]string{p.contact("")}, "0"); res.StatusCode != 200 {
		t.Fatalf("unregister through b: %d", res.StatusCode)
	}
	waitLookup(t, ra, 0)
}

func clientLease(id int64) clientv3.LeaseID { return clientv3.LeaseID(id) }

// downStore is a store whose writes fail as with etcd out of reach.
type downStore struct {
	store.Store
	mu     sync.Mutex
	writes int
}

func (d *downStore) PutTTL(context.Context, string, []byte, time.Duration) error {
	d.mu.Lock()
	d.writes++
	d.mu.Unlock()
	return fmt.Errorf("store: put: %w", store.ErrUnavailable)
}

// TestStoreUnavailable: a REGISTER whose binding cannot be stored fails,
// and for a while later REGISTERs get 503 without waiting for the store
// again; the bindings known before keep being found.
func TestStoreUnavailable(t *testing.T) {
	clk := &clock{t: time.Now()}
	mem := store.NewMemory()
	ds := &downStore{Store: mem}
	r := newRegistrar(t, ds, clk)
	r.mu.Lock()
	r.bindings["bob@example.com"] = []Binding{{Contact: "sip:bob@127.0.0.1:5099", Expires: clk.Now().Add(time.Hour), Q: 1000, Transport: "udp", Interface: "inside"}}
	r.mu.Unlock()
	p := newPhone(t, serve(t, r), "alice", "wonderland")
	if res := p.register([]string{p.contact("")}, "60"); res.StatusCode < 500 {
		t.Fatalf("REGISTER with the store down: %d", res.StatusCode)
	}
	if res := p.register([]string{p.contact("")}, "60"); res.StatusCode != 503 {
		t.Fatalf("second REGISTER: %d, want 503", res.StatusCode)
	}
	ds.mu.Lock()
	writes := ds.writes
	ds.mu.Unlock()
	if writes != 1 {
		t.Fatalf("%d store writes, want 1 (the second REGISTER must not wait for the store)", writes)
	}
	if hops := r.Lookup("bob", "example.com"); len(hops) != 1 {
		t.Fatalf("known binding during the outage: %+v", hops)
	}
}
