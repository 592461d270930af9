package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/lifecycle"
	"github.com/palisade-sbc/palisade/internal/store"
	"github.com/palisade-sbc/palisade/internal/testkit/etcdtest"
)

// TestClusterEtcdQuorumLost: with one of three etcd members killed, apply
// and confirm work; with two, a unit keeps what it runs and configuration
// changes fail with store.ErrUnavailable; once a member returns they work
// again.
func TestClusterEtcdQuorumLost(t *testing.T) {
	c := startCluster(t)
	a, b := startPair(t, c)
	ctx := context.Background()
	// One member down: the quorum answers, apply and confirm work.
	c.KillMember(2)
	setName(t, b, "v1b")
	if _, err := b.mgr.Apply(ctx, time.Minute, "bob"); err != nil {
		t.Fatalf("apply with one etcd member down: %v", err)
	}
	if _, err := a.mgr.Confirm(ctx, "alice"); err != nil {
		t.Fatalf("confirm with one etcd member down: %v", err)
	}
	if a.fake.running() != "v1b" || b.fake.running() != "v1b" {
		t.Fatalf("after apply+confirm: a runs %q, b %q", a.fake.running(), b.fake.running())
	}
	// Two down: no quorum.
	c.KillMember(1)
	cfg, _, err := a.mgr.Preliminary(ctx)
	if err == nil {
		cfg.Unit.Name = "during-outage"
		_, err = a.mgr.SetPreliminary(ctx, cfg, "", "alice")
	}
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "etcd") {
		t.Fatalf("configuration change without an etcd quorum: %v, want ErrUnavailable", err)
	}
	if _, err := a.mgr.Apply(ctx, time.Minute, "alice"); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("apply without an etcd quorum: %v, want ErrUnavailable", err)
	}
	if a.fake.running() != "v1b" || b.fake.running() != "v1b" {
		t.Fatalf("units changed what they run during the outage: %q %q", a.fake.running(), b.fake.running())
	}
	c.StartMember(1)
	c.WaitHealthy(1)
	waitFor(t, "both units members again", members(t, a.mgr, 2))
	setName(t, a, "v2")
	if _, err := a.mgr.Apply(ctx, time.Minute, "alice"); err != nil {
		t.Fatalf("apply after a member returned: %v\n%s\n%s", err, a.log, b.log)
	}
	if b.fake.running() != "v2" {
		t.Fatalf("b runs %q after the apply", b.fake.running())
	}
}

// TestClusterDocumentFromAnotherVersion: a pending configuration this
// build cannot read (a newer version wrote it) is not run; the unit keeps
// its configuration and reports the reason.
func TestClusterDocumentFromAnotherVersion(t *testing.T) {
	c := startCluster(t)
	ns := newNS(t)
	a := startUnit(t, c, ns, "a")
	ctx := context.Background()
	waitFor(t, "a is a member", members(t, a.mgr, 1))
	state := `{"pending":{"id":"future1","unit":"z","author":"newer","base":1,"deadline":"2099-01-01T00:00:00Z",` +
		`"config":{"schema":1,"warp_drive":{"enabled":true}}}}`
	if err := a.etcd.Put(ctx, "config/state", []byte(state)); err != nil {
		t.Fatal(err)
	}
	var rep struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	waitFor(t, "a reports on the apply", func() bool {
		b, err := a.etcd.Get(ctx, lifecycle.ReportsPrefix+"future1/a")
		return err == nil && json.Unmarshal(b, &rep) == nil
	})
	if rep.OK || !strings.Contains(rep.Error, "warp_drive") {
		t.Fatalf("a's report: %+v, want a failure naming the unknown field", rep)
	}
	if a.fake.running() != "v1" {
		t.Fatalf("a runs %q", a.fake.running())
	}
}

// TestClusterVersionSkew: while a live unit publishes another version, an
// apply is refused with ErrVersionSkew naming the versions; nothing runs.
func TestClusterVersionSkew(t *testing.T) {
	c := startCluster(t)
	a, b := startPair(t, c)
	ctx := context.Background()
	if err := a.etcd.PutTTL(ctx, lifecycle.MembersPrefix+"z", []byte(`{"unit":"z","version":"v99.0.0"}`), time.Minute); err != nil {
		t.Fatal(err)
	}
	setName(t, a, "v2")
	_, err := a.mgr.Apply(ctx, time.Minute, "alice")
	if !errors.Is(err, lifecycle.ErrVersionSkew) || !strings.Contains(err.Error(), "v99.0.0 on z") {
		t.Fatalf("apply with a unit of another version: %v, want ErrVersionSkew", err)
	}
	if st, _ := b.mgr.State(ctx); st.PendingConfirm || b.fake.running() != "v1" {
		t.Fatalf("after the refused apply: %+v, b runs %q", st, b.fake.running())
	}
	if err := a.etcd.Delete(ctx, lifecycle.MembersPrefix+"z"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.mgr.Apply(ctx, time.Minute, "alice"); err != nil {
		t.Fatalf("apply once the versions agree: %v", err)
	}
}

// TestClusterUnitDoesNotReport: a live unit that does not switch within the
// apply's wait (hung) fails the apply, naming it; every unit goes back,
// the hung one too once it answers again.
func TestClusterUnitDoesNotReport(t *testing.T) {
	c := startCluster(t)
	ns := newNS(t)
	a := startUnitWait(t, c, ns, "a", 3*time.Second)
	b := startUnitWait(t, c, ns, "b", 3*time.Second)
	var release sync.Once
	unhang := func() { release.Do(func() { close(b.fake.hang) }) }
	t.Cleanup(unhang) // before b stops: a failed test must not leave b hung
	waitFor(t, "two members", members(t, a.mgr, 2))
	ctx := context.Background()
	setName(t, a, "hangs-b")
	_, err := a.mgr.Apply(ctx, time.Minute, "alice")
	if !errors.Is(err, lifecycle.ErrApplyFailed) || !strings.Contains(err.Error(), "unit b did not report within 3s") {
		t.Fatalf("apply with b hung: %v", err)
	}
	if a.fake.running() != "v1" {
		t.Fatalf("a runs %q after the failed apply", a.fake.running())
	}
	unhang()
	// b finishes the switch it hung in, then follows the revert.
	waitFor(t, "b back on v1", func() bool { return strings.HasSuffix(b.fake.applied(), "hangs-b v1") })
}

// TestClusterUnitCatchesUp: unit b is cut off from etcd (a partition; the
// quorum lives on for a): b keeps running what it ran and drops out of the
// cluster when its lease runs out, a applies and confirms without it, and
// once b's path to etcd is back it switches to the cluster's configuration
// and is a member again.
func TestClusterUnitCatchesUp(t *testing.T) {
	c := startCluster(t)
	ns := newNS(t)
	var proxies []*etcdtest.Proxy
	var via []string
	for _, ep := range c.Endpoints() {
		p := etcdtest.NewProxy(t, ep)
		proxies = append(proxies, p)
		via = append(via, p.Addr)
	}
	a := startUnit(t, c, ns, "a")
	b := startUnitVia(t, via, ns, "b", 30*time.Second)
	waitFor(t, "two members", members(t, a.mgr, 2))
	for _, p := range proxies {
		p.Cut()
	}
	waitFor(t, "b dropped out", members(t, a.mgr, 1))
	ctx := context.Background()
	setName(t, a, "v2")
	if _, err := a.mgr.Apply(ctx, time.Minute, "alice"); err != nil {
		t.Fatalf("apply without b: %v", err)
	}
	if _, err := a.mgr.Confirm(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if b.fake.running() != "v1" {
		t.Fatalf("b, cut off, runs %q", b.fake.running())
	}
	for _, p := range proxies {
		p.Restore()
	}
	waitFor(t, "b caught up on v2", func() bool { return b.fake.running() == "v2" })
	waitFor(t, "b a member again", members(t, a.mgr, 2))
}

// TestClusterEtcdGoesBack: etcd is replaced under a running unit by an
// empty one at a much older revision (as a restored old backup or a new
// cluster under the old addresses would be). No watch shows it; the unit
// notices at its next membership write, keeps what it runs and refuses
// configuration changes with ErrStoreBehind naming the revisions.
func TestClusterEtcdGoesBack(t *testing.T) {
	c := startCluster(t)
	ns := newNS(t)
	a := startUnit(t, c, ns, "a")
	waitFor(t, "a is a member", members(t, a.mgr, 1))
	ctx := context.Background()
	// etcd's revision well past what the new cluster reaches in this test
	for i := range 300 {
		if err := a.etcd.Put(ctx, fmt.Sprintf("junk/%d", i), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	setName(t, a, "v2")
	if _, err := a.mgr.Apply(ctx, time.Minute, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.mgr.Confirm(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	c.Wipe()
	var err error
	waitFor(t, "a finds etcd behind it", func() bool {
		_, err = a.mgr.Apply(ctx, time.Minute, "alice")
		return errors.Is(err, lifecycle.ErrStoreBehind)
	})
	if !strings.Contains(err.Error(), "this unit followed") {
		t.Fatalf("refusal: %v", err)
	}
	if a.fake.running() != "v2" || strings.Contains(a.fake.applied(), "v2 v1") {
		t.Fatalf("a went back: it ran %q", a.fake.applied())
	}
	if log := a.log.String(); !strings.Contains(log, "older revision") {
		t.Fatalf("a's log:\n%s", log)
	}
	// The membership write that sees the revision go back may come after
	// the refusal: its first try after the wipe can fail on the lease the
	// wipe took, and the next one (a new lease) sees it.
	waitFor(t, "a logs that etcd's revision went back", func() bool {
		return strings.Contains(a.log.String(), "revision went back")
	})
	t.Logf("refused: %v", err)
}
