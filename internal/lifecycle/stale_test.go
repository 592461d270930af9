package lifecycle

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/palisade-sbc/palisade/internal/store"
)

// revStore is a Memory store whose transactions carry a revision like
// etcd's; the test sets it, e.g. older than before (etcd restored from a
// backup, a member serving old data).
type revStore struct {
	store.Store
	rev atomic.Int64
}

func (s *revStore) Update(ctx context.Context, fn func(tx store.Tx) error) error {
	return s.Store.Update(ctx, func(tx store.Tx) error { return fn(revTx{tx, s.rev.Load()}) })
}

type revTx struct {
	store.Tx
	rev int64
}

func (t revTx) Revision() int64 { return t.rev }

func (a *fakeApplier) last() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.applied) == 0 {
		return ""
	}
	return a.applied[len(a.applied)-1].Unit.Name
}

// TestClusterStoreBehind: a unit of a cluster that has followed revision
// 20 and then reads the store at revision 15, which lacks the newest saved
// version (a restored backup), keeps running what it runs, raises
// store_behind and refuses configuration changes naming both revisions;
// once the store is past 20 again it follows the store's state and
// changes work.
func TestClusterStoreBehind(t *testing.T) {
	st := &revStore{Store: store.NewMemory()}
	st.rev.Store(10)
	f := newFixture(t, st, WithCluster("a"), WithApplyWait(30*time.Second))
	ctx, cancel := context.WithCancel(context.Background())
	followed := make(chan struct{})
	go func() { defer close(followed); f.m.Follow(ctx) }()
	t.Cleanup(func() { cancel(); <-followed })
	waitUntil(t, "the unit runs saved version 1", func() bool { return f.a.last() != "" })
	startName := f.a.last()

	f.edit(t, setName("v2"))
	st.rev.Store(20)
	if _, err := f.m.Apply(ctx, time.Minute, "alice"); err != nil {
		t.Fatalf("apply: %v\n%s", err, f.log)
	}
	if _, err := f.m.Confirm(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if f.a.last() != "v2" {
		t.Fatalf("runs %q after apply and confirm", f.a.last())
	}

	// The store answers at 15, without saved version 2.
	st.rev.Store(15)
	if err := st.Store.Delete(ctx, savedKey(2)); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "store_behind raised", func() bool { return testutil.ToFloat64(metricStoreBehind) == 1 })
	if f.a.last() != "v2" {
		t.Fatalf("the unit went back to %q on the older store", f.a.last())
	}
	if !strings.Contains(f.log.String(), "older revision") {
		t.Fatalf("nothing logged:\n%s", f.log)
	}
	cfg, _, err := f.m.Preliminary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Unit.Name = "while-behind"
	_, errSet := f.m.SetPreliminary(ctx, cfg, "", "alice")
	_, errApply := f.m.Apply(ctx, time.Minute, "alice")
	_, errConfirm := f.m.Confirm(ctx, "alice")
	for i, err := range []error{errSet, errApply, errConfirm, f.m.Revert(ctx, "alice"), f.m.Undo(ctx, "alice")} {
		if !errors.Is(err, ErrStoreBehind) || !strings.Contains(err.Error(), "revision 15, this unit followed 20") ||
			!strings.Contains(err.Error(), "etcd") {
			t.Errorf("change %d while the store is behind: %v, want ErrStoreBehind naming the revisions", i, err)
		}
	}

	// etcd moves past 20 (a restore with --bump-revision, or new writes):
	// the unit takes the store's state, and changes work again.
	st.rev.Store(30)
	if err := st.Store.Put(ctx, "config/nudge", []byte("1")); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "store_behind cleared", func() bool { return testutil.ToFloat64(metricStoreBehind) == 0 })
	waitUntil(t, "the unit runs the store's newest saved version", func() bool { return f.a.last() == startName })
	f.edit(t, setName("v3"))
	if _, err := f.m.Apply(ctx, time.Minute, "alice"); err != nil {
		t.Fatalf("apply once the store is past the unit again: %v", err)
	}
	if f.a.last() != "v3" {
		t.Fatalf("runs %q", f.a.last())
	}
}

// waitUntil polls cond with a bound only a real failure reaches.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 60 s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
