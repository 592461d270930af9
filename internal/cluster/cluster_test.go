package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/lifecycle"
	"github.com/palisade-sbc/palisade/internal/store"
	"github.com/palisade-sbc/palisade/internal/testkit"
	"github.com/palisade-sbc/palisade/internal/testkit/etcdtest"
)

// fakeUnit is a unit's Applier: it records the unit.name it runs and
// refuses configurations named "refused-by-<its name>".
type fakeUnit struct {
	name string
	mu   sync.Mutex
	runs string
	// hang, when set, holds an Apply of a configuration named
	// "hangs-"+name until it is closed (a unit that stopped answering).
	hang    chan struct{}
	history []string
}

func (f *fakeUnit) Apply(_ context.Context, cfg *config.Config) error {
	if cfg.Unit.Name == "refused-by-"+f.name {
		return fmt.Errorf("unit %s refuses this configuration", f.name)
	}
	if cfg.Unit.Name == "hangs-"+f.name && f.hang != nil {
		<-f.hang
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.runs = cfg.Unit.Name
	f.history = append(f.history, cfg.Unit.Name)
	return nil
}

// applied is every configuration the unit switched to, in order.
func (f *fakeUnit) applied() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.history, " ")
}

func (f *fakeUnit) running() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.runs
}

// waitFor polls cond with a bound only a real failure reaches.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(90 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 90 s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type testUnit struct {
	name   string
	fake   *fakeUnit
	mgr    *lifecycle.Mgr
	etcd   *store.Etcd
	cancel context.CancelFunc
	done   chan struct{}
	log    *testkit.SyncBuffer
}

// startUnit runs a unit of the cluster (its own etcd client, lifecycle
// manager and Node) on namespace ns.
func startUnit(t *testing.T, c *etcdtest.Cluster, ns, name string) *testUnit {
	t.Helper()
	return startUnitWait(t, c, ns, name, 30*time.Second)
}

// startUnitWait is startUnit with the apply's wait for reports.
func startUnitWait(t *testing.T, c *etcdtest.Cluster, ns, name string, wait time.Duration) *testUnit {
	t.Helper()
	return startUnitVia(t, c.Endpoints(), ns, name, wait)
}

// startUnitVia starts a unit reaching etcd at endpoints.
func startUnitVia(t *testing.T, endpoints []string, ns, name string, wait time.Duration) *testUnit {
	t.Helper()
	et, err := store.OpenEtcd(context.Background(), store.EtcdOptions{Endpoints: endpoints, Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	u := &testUnit{name: name, fake: &fakeUnit{name: name, hang: make(chan struct{})}, etcd: et, done: make(chan struct{}), log: &testkit.SyncBuffer{}}
	log := slog.New(slog.NewTextHandler(u.log, nil)).With("unit", name)
	ctx := context.Background()
	if _, _, err := lifecycle.StartupConfig(ctx, et); errors.Is(err, store.ErrNotFound) {
		cfg := config.Default()
		cfg.Unit.Name = "v1"
		if err := lifecycle.Bootstrap(ctx, et, cfg, "test"); err != nil && !errors.Is(err, lifecycle.ErrAlreadyBootstrapped) {
			t.Fatal(err)
		}
	}
	start, _, err := lifecycle.StartupConfig(ctx, et)
	if err != nil {
		t.Fatal(err)
	}
	u.fake.Apply(ctx, start)
	u.mgr, err = lifecycle.New(et, u.fake, log, lifecycle.WithCluster(name), lifecycle.WithApplyWait(wait))
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	u.cancel = cancel
	n := &Node{Etcd: et, Unit: name, Mgr: u.mgr, Log: log, PublishEvery: time.Second}
	go func() { defer close(u.done); n.Run(rctx) }()
	t.Cleanup(func() { u.stop() })
	return u
}

// stop leaves the cluster in order (the lease is revoked).
func (u *testUnit) stop() {
	if u.cancel == nil {
		return
	}
	u.cancel()
	<-u.done
	u.cancel = nil
	u.etcd.Close()
}

// kill cuts the unit off like SIGKILL: its etcd connection goes first, so
// nothing is revoked or resigned; its lease runs out in etcd.
func (u *testUnit) kill() {
	u.etcd.Close()
	u.cancel()
	<-u.done
	u.cancel = nil
}

func members(t *testing.T, m *lifecycle.Mgr, want int) func() bool {
	return func() bool {
		ms, err := m.Members(context.Background())
		return err == nil && len(ms) == want
	}
}

func setName(t *testing.T, u *testUnit, name string) {
	t.Helper()
	cfg, _, err := u.mgr.Preliminary(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Unit.Name = name
	if _, err := u.mgr.SetPreliminary(context.Background(), cfg, "", "test"); err != nil {
		t.Fatal(err)
	}
}

func startCluster(t *testing.T) *etcdtest.Cluster {
	if testing.Short() {
		t.Skip("starts etcd")
	}
	return etcdtest.Start(t, 3)
}

var nsSeq int

func newNS(t *testing.T) string {
	nsSeq++
	return fmt.Sprintf("test-%d-%s-%d/", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "-"), nsSeq)
}

// startPair starts units a and b on a namespace of their own and waits
// until both are members.
func startPair(t *testing.T, c *etcdtest.Cluster) (*testUnit, *testUnit) {
	t.Helper()
	ns := newNS(t)
	a := startUnit(t, c, ns, "a")
	b := startUnit(t, c, ns, "b")
	waitFor(t, "two members", members(t, a.mgr, 2))
	return a, b
}

func TestClusterConfiguration(t *testing.T) {
	c := startCluster(t)
	t.Run("ApplyConfirmEverywhere", func(t *testing.T) {
		a, b := startPair(t, c)
		ctx := context.Background()
		setName(t, a, "v2")
		st, err := a.mgr.Apply(ctx, 5*time.Minute, "alice")
		if err != nil {
			t.Fatalf("apply on a: %v\n%s\n%s", err, a.log, b.log)
		}
		if !st.PendingConfirm {
			t.Fatalf("state after apply: %+v", st)
		}
		// Apply returns once every unit reported: b runs it already.
		if got := b.fake.running(); got != "v2" {
			t.Fatalf("b runs %q after the apply returned, want v2", got)
		}
		if bs, _ := b.mgr.State(ctx); !bs.PendingConfirm {
			t.Fatalf("b's state: %+v", bs)
		}
		v, err := b.mgr.Confirm(ctx, "bob")
		if err != nil || v.Number != 2 {
			t.Fatalf("confirm on b: %+v %v", v, err)
		}
		if got, _ := a.mgr.Saved(ctx); got.Unit.Name != "v2" {
			t.Fatalf("a's saved configuration: %q", got.Unit.Name)
		}
		if a.fake.running() != "v2" || b.fake.running() != "v2" {
			t.Fatalf("after confirm: a runs %q, b %q", a.fake.running(), b.fake.running())
		}
	})
	t.Run("RevertOnOtherUnit", func(t *testing.T) {
		a, b := startPair(t, c)
		ctx := context.Background()
		setName(t, a, "v2")
		if _, err := a.mgr.Apply(ctx, 5*time.Minute, "alice"); err != nil {
			t.Fatal(err)
		}
		if err := b.mgr.Revert(ctx, "bob"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "a back on v1", func() bool { return a.fake.running() == "v1" })
		if b.fake.running() != "v1" {
			t.Fatalf("b runs %q after its revert", b.fake.running())
		}
	})
	t.Run("UnconfirmedRevertsAfterStarterDied", func(t *testing.T) {
		ns := newNS(t)
		a := startUnit(t, c, ns, "a")
		ctx := context.Background()
		waitFor(t, "a elected", func() bool { l, _ := Leader(ctx, a.etcd); return l == "a" })
		b := startUnit(t, c, ns, "b")
		waitFor(t, "two members", members(t, b.mgr, 2))
		setName(t, a, "v2")
		if _, err := a.mgr.Apply(ctx, 3*time.Second, "alice"); err != nil {
			t.Fatal(err)
		}
		if b.fake.running() != "v2" {
			t.Fatalf("b runs %q", b.fake.running())
		}
		a.kill() // inside the window; a held the confirmation timer
		waitFor(t, "b reverted to v1", func() bool { return b.fake.running() == "v1" })
		if l, _ := Leader(ctx, b.etcd); l != "b" {
			t.Fatalf("leader after a died: %q", l)
		}
		st, err := b.mgr.State(ctx)
		if err != nil || st.PendingConfirm || !strings.Contains(st.LastRevertReason, "confirmation window ran out") {
			t.Fatalf("b's state: %+v %v", st, err)
		}
	})
	t.Run("FailureOnOneUnitRevertsAll", func(t *testing.T) {
		a, b := startPair(t, c)
		ctx := context.Background()
		setName(t, a, "refused-by-b")
		_, err := a.mgr.Apply(ctx, time.Minute, "alice")
		if !errors.Is(err, lifecycle.ErrApplyFailed) || !strings.Contains(err.Error(), "unit b: unit b refuses") {
			t.Fatalf("apply = %v, want ErrApplyFailed naming b", err)
		}
		if a.fake.running() != "v1" || b.fake.running() != "v1" {
			t.Fatalf("after the failed apply: a runs %q, b %q", a.fake.running(), b.fake.running())
		}
		st, _ := a.mgr.State(ctx)
		if st.PendingConfirm || !strings.Contains(st.LastApplyError, "unit b") {
			t.Fatalf("state: %+v", st)
		}
	})
	t.Run("TwoAppliesAtOnce", func(t *testing.T) {
		a, b := startPair(t, c)
		ctx := context.Background()
		setName(t, a, "v2")
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, u := range []*testUnit{a, b} {
			wg.Add(1)
			go func() { defer wg.Done(); _, errs[i] = u.mgr.Apply(ctx, time.Minute, u.name) }()
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, lifecycle.ErrApplyPending):
			default:
				t.Fatalf("apply error %v, want ErrApplyPending for the loser", err)
			}
		}
		if ok != 1 {
			t.Fatalf("%d applies succeeded (%v), want exactly 1", ok, errs)
		}
		if a.fake.running() != "v2" || b.fake.running() != "v2" {
			t.Fatalf("a runs %q, b %q", a.fake.running(), b.fake.running())
		}
	})
}
