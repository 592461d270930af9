package vip

import (
	"context"
	"errors"
	"net/netip"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/palisade-sbc/palisade/internal/testkit/etcdtest"
)

// fakeNet records what an owner does to its address, with times.
type fakeNet struct {
	mu      sync.Mutex
	has     bool
	added   time.Time // first Add
	removed time.Time // last Remove of an address that was there
	adds    int
	// announced counts the announcements.
	announced int
}

func (f *fakeNet) Add(Address, time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.has && f.added.IsZero() {
		f.added = time.Now()
	}
	f.has = true
	f.adds++
	return nil
}

func (f *fakeNet) Remove(Address) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.has {
		f.removed = time.Now()
	}
	f.has = false
	return nil
}

func (f *fakeNet) Announce(Address) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.announced++
	return nil
}

func (f *fakeNet) announcements() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.announced
}

func (f *fakeNet) state() (has bool, added, removed time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.has, f.added, f.removed
}

func startOwner(t *testing.T, endpoint, unit string, n Net, ready func(context.Context) error) (*Owner, context.CancelFunc, <-chan struct{}) {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	o, err := New(Config{Client: cli, Prefix: "/test/owner", Unit: unit, Preference: []string{"a", "b"}, TTL: 2 * time.Second,
		Address: Address{Prefix: netip.MustParsePrefix("192.0.2.10/24"), Link: "eth0"}, Net: n, Ready: ready})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { o.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return o, cancel, done
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestOwnerInProcess runs the election without namespaces (no root
// needed): the address is added only once Ready succeeds; a unit cut off
// from etcd removes it before the other unit adds it; a unit that stops
// cleanly removes it and the other takes over without waiting for a lease.
func TestOwnerInProcess(t *testing.T) {
	if _, err := exec.LookPath("etcd"); err != nil {
		t.Skip("install Debian package etcd-server")
	}
	ec := etcdtest.Start(t, 1)
	etcd := ec.Endpoints()[0]

	fenced0 := testutil.ToFloat64(fencedTotal.WithLabelValues("192.0.2.10"))
	taken0 := testutil.ToFloat64(takenTotal.WithLabelValues("192.0.2.10"))
	var readyCalls atomic.Int32
	na := &fakeNet{}
	px := etcdtest.NewProxy(t, etcd)
	a, _, _ := startOwner(t, px.Addr, "a", na, func(context.Context) error {
		if readyCalls.Add(1) < 3 {
			return errors.New("calls not readable yet")
		}
		return nil
	})
	waitUntil(t, "a to own the address", func() bool { return a.Owned() })
	if has, _, _ := na.state(); !has {
		t.Fatal("a says it owns the address but did not add it")
	}
	if readyAtAdd := readyCalls.Load(); readyAtAdd != 3 {
		t.Fatalf("the address was added after %d calls of Ready, want 3 (two failed)", readyAtAdd)
	}
	// Announced when taken and again at the next renewals, then no more.
	waitUntil(t, "a to announce the address 1+announceRepeats times", func() bool { return na.announcements() == 1+announceRepeats })
	time.Sleep(2 * time.Second) // three more renewals (a bound, not a timing)
	if n := na.announcements(); n != 1+announceRepeats {
		t.Fatalf("a announced the address %d times, want %d", n, 1+announceRepeats)
	}

	nb := &fakeNet{}
	b, stopB, doneB := startOwner(t, etcd, "b", nb, nil)
	time.Sleep(3 * time.Second) // b must stay out while a is up (a bound, not a timing)
	if b.Owned() {
		t.Fatal("b took the address from the preferred unit a")
	}

	cut := time.Now()
	px.Cut()
	waitUntil(t, "b to own the address after a was cut off", func() bool { return b.Owned() })
	hasA, _, removedA := na.state()
	_, addedB, _ := nb.state()
	if hasA || a.Owned() {
		t.Fatal("a still has the address after b took it")
	}
	t.Logf("a removed the address %v after the cut, b added it %v after the cut",
		removedA.Sub(cut).Round(10*time.Millisecond), addedB.Sub(cut).Round(10*time.Millisecond))
	if !removedA.Before(addedB) {
		t.Fatalf("b added the address %v before a removed it", removedA.Sub(addedB))
	}
	if n := testutil.ToFloat64(fencedTotal.WithLabelValues("192.0.2.10")) - fenced0; n != 1 {
		t.Fatalf("palisade_vip_fenced_total grew by %v, want 1", n)
	}
	if n := testutil.ToFloat64(takenTotal.WithLabelValues("192.0.2.10")) - taken0; n != 2 {
		t.Fatalf("palisade_vip_taken_total grew by %v, want 2 (a, then b)", n)
	}

	// A clean stop of b: the address is removed and the lease revoked.
	nc := &fakeNet{}
	c, _, _ := startOwner(t, etcd, "c", nc, nil)
	stopB()
	<-doneB
	if has, _, _ := nb.state(); has {
		t.Fatal("b kept the address after a clean stop")
	}
	waitUntil(t, "c to own the address after b stopped", func() bool { return c.Owned() })
}

// TestOwnerRelease: a planned move. The owner a releases the address: it
// removes it before b adds it, stays out of the election for the hold
// (b keeps the address although a is preferred), and comes back after it
// (b, carrying no call, hands the address back).
func TestOwnerRelease(t *testing.T) {
	if _, err := exec.LookPath("etcd"); err != nil {
		t.Skip("install Debian package etcd-server")
	}
	etcd := etcdtest.Start(t, 1).Endpoints()[0]
	na, nb := &fakeNet{}, &fakeNet{}
	a, _, _ := startOwner(t, etcd, "a", na, nil)
	waitUntil(t, "a to own the address", func() bool { return a.Owned() })
	b, _, _ := startOwner(t, etcd, "b", nb, nil)
	if b.Release(time.Second) {
		t.Fatal("b released an address it does not own")
	}
	const hold = 4 * time.Second
	released := time.Now()
	if !a.Release(hold) {
		t.Fatal("a did not release the address it owns")
	}
	waitUntil(t, "b to own the address after a released it", func() bool { return b.Owned() })
	_, addedB, _ := nb.state()
	hasA, _, removedA := na.state()
	t.Logf("b added the address %v after the release", addedB.Sub(released).Round(10*time.Millisecond))
	if hasA || !removedA.Before(addedB) {
		t.Fatalf("a removed the address at %v, b added it at %v (a has it: %v)", removedA, addedB, hasA)
	}
	for time.Since(released) < hold-time.Second {
		if a.Owned() || !b.Owned() {
			t.Fatal("a took the address back during its hold")
		}
		time.Sleep(100 * time.Millisecond)
	}
	waitUntil(t, "a to own the address again after its hold", func() bool { return a.Owned() })
}

// TestOwnerStandby: keepalived's advice (docs/ha.md). The preferred owner
// a put on standby hands the address to b (it carries no call) and stays in
// the election: when b stops, a takes the address back at once (standby
// never holds a failover up). Taken off standby a is preferred again. A
// unit held out after a release takes part again on Rejoin, and a later
// release holds it out again (the earlier Rejoin does not cut that hold).
func TestOwnerStandby(t *testing.T) {
	if _, err := exec.LookPath("etcd"); err != nil {
		t.Skip("install Debian package etcd-server")
	}
	etcd := etcdtest.Start(t, 1).Endpoints()[0]
	ctx := context.Background()
	a, _, _ := startOwner(t, etcd, "a", &fakeNet{}, nil)
	waitUntil(t, "a to own the address", func() bool { return a.Owned() })
	b, stopB, bDone := startOwner(t, etcd, "b", &fakeNet{}, nil)
	if changed, err := a.SetStandby(ctx, true); !changed || err != nil {
		t.Fatalf("SetStandby: %v %v", changed, err)
	}
	waitUntil(t, "b to own the address while a is on standby", func() bool { return b.Owned() && !a.Owned() })
	stopB()
	<-bDone
	waitUntil(t, "a, on standby, to take the address when b is gone", func() bool { return a.Owned() })

	b, _, _ = startOwner(t, etcd, "b", &fakeNet{}, nil)
	if changed, err := b.SetStandby(ctx, true); !changed || err != nil {
		t.Fatalf("SetStandby b: %v %v", changed, err)
	}
	if changed, _ := a.SetStandby(ctx, false); !changed {
		t.Fatal("a was on standby")
	}
	if a.Rejoin() {
		t.Fatal("a was not held out, but Rejoin says so")
	}
	if !a.Release(time.Hour) {
		t.Fatal("a did not release the address it owns")
	}
	waitUntil(t, "b to own the address after a released it", func() bool { return b.Owned() })
	if !a.Rejoin() {
		t.Fatal("a was held out, but Rejoin says not")
	}
	waitUntil(t, "a (preferred, b on standby) to own the address again after Rejoin", func() bool { return a.Owned() })
	if !a.Release(time.Hour) {
		t.Fatal("a did not release the address again")
	}
	waitUntil(t, "b to own the address after the second release", func() bool { return b.Owned() })
	time.Sleep(2 * time.Second) // longer than a term's pause: a held out stays out
	if a.Owned() {
		t.Fatal("a took the address back during its second hold")
	}
}
