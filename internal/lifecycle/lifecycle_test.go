package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/store"
	"github.com/palisade-sbc/palisade/internal/testkit"
)

// fakeApplier records what the unit was switched to.
type fakeApplier struct {
	mu      sync.Mutex
	applied []*config.Config
	fail    error
	ch      chan *config.Config
}

func newFakeApplier() *fakeApplier { return &fakeApplier{ch: make(chan *config.Config, 100)} }

func (a *fakeApplier) Apply(_ context.Context, c *config.Config) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail != nil {
		return a.fail
	}
	a.applied = append(a.applied, c)
	a.ch <- c
	return nil
}

func (a *fakeApplier) setFail(err error) {
	a.mu.Lock()
	a.fail = err
	a.mu.Unlock()
}

type fixture struct {
	st  store.Store
	a   *fakeApplier
	m   *Mgr
	log *testkit.SyncBuffer
}

func newFixture(t *testing.T, st store.Store, opts ...Option) *fixture {
	t.Helper()
	f := &fixture{st: st, a: newFakeApplier(), log: &testkit.SyncBuffer{}}
	m, err := New(st, f.a, slog.New(slog.NewTextHandler(f.log, nil)), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	f.m = m
	if _, err := m.StartupConfig(context.Background()); errors.Is(err, store.ErrNotFound) {
		if err := m.Bootstrap(context.Background(), config.Default(), "setup"); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// edit changes the preliminary configuration through SetPreliminary.
func (f *fixture) edit(t *testing.T, change func(c *config.Config)) string {
	t.Helper()
	ctx := context.Background()
	c, etag, err := f.m.Preliminary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	change(c)
	etag, err = f.m.SetPreliminary(ctx, c, etag, "alice")
	if err != nil {
		t.Fatal(err)
	}
	return etag
}

func setName(name string) func(c *config.Config) {
	return func(c *config.Config) { c.Unit.Name = name }
}

func mustState(t *testing.T, m *Mgr) State {
	t.Helper()
	s, err := m.State(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestBootstrap(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory()
	m, err := New(st, newFakeApplier(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.StartupConfig(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("empty store: StartupConfig err = %v, want ErrNotFound", err)
	}
	bad := config.Default()
	bad.SIP.Listeners[0].Port = 0
	if err := m.Bootstrap(ctx, bad, "setup"); err == nil {
		t.Fatal("Bootstrap accepted an invalid configuration")
	}
	cfg := config.Default()
	cfg.Unit.Name = "hq"
	if err := m.Bootstrap(ctx, cfg, "setup"); err != nil {
		t.Fatal(err)
	}
	if err := m.Bootstrap(ctx, cfg, "setup"); !errors.Is(err, ErrAlreadyBootstrapped) {
		t.Fatalf("second Bootstrap: %v", err)
	}
	for name, get := range map[string]func() (*config.Config, error){
		"startup": func() (*config.Config, error) { return m.StartupConfig(ctx) },
		"saved":   func() (*config.Config, error) { return m.Saved(ctx) },
		"running": func() (*config.Config, error) { return m.Running(ctx) },
		"prelim":  func() (*config.Config, error) { c, _, err := m.Preliminary(ctx); return c, err },
		"v1":      func() (*config.Config, error) { return m.Version(ctx, 1) },
	} {
		c, err := get()
		if err != nil || c.Unit.Name != "hq" {
			t.Errorf("%s after bootstrap: %v %v", name, c, err)
		}
	}
	s := mustState(t, m)
	if s.RunningVersion != 1 || s.PreliminaryChanged || s.PendingConfirm || s.PreliminaryETag == "" {
		t.Errorf("state after bootstrap: %+v", s)
	}
	h, _ := m.History(ctx)
	if len(h) != 1 || h[0].Number != 1 || h[0].Author != "setup" {
		t.Errorf("history: %+v", h)
	}
}

func TestSetPreliminary(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, store.NewMemory())
	c, etag, _ := f.m.Preliminary(ctx)

	bad, _ := config.Clone(c)
	bad.SIP.Listeners[2].Port = 70000
	bad.Observe.LogLevel = "loud"
	bad.Routing.Redirects = "x"
	_, err := f.m.SetPreliminary(ctx, bad, etag, "alice")
	var errs config.Errors
	if !errors.As(err, &errs) || len(errs) != 3 {
		t.Fatalf("invalid document: err = %v, want 3 config.Errors", err)
	}
	if _, etag2, _ := f.m.Preliminary(ctx); etag2 != etag {
		t.Fatal("an invalid document changed the preliminary configuration")
	}

	c.Unit.Name = "one"
	etag1, err := f.m.SetPreliminary(ctx, c, etag, "alice")
	if err != nil || etag1 == etag {
		t.Fatalf("SetPreliminary: %v (etag %s → %s)", err, etag, etag1)
	}
	c.Unit.Name = "two"
	if _, err := f.m.SetPreliminary(ctx, c, etag, "bob"); !errors.Is(err, ErrPreconditionFailed) {
		t.Fatalf("stale If-Match: err = %v, want ErrPreconditionFailed", err)
	}
	if _, err := f.m.SetPreliminary(ctx, c, `"`+etag1+`"`, "bob"); err != nil {
		t.Fatalf("quoted current If-Match: %v", err)
	}
	got, _, _ := f.m.Preliminary(ctx)
	if got.Unit.Name != "two" {
		t.Fatalf("preliminary unit.name = %q", got.Unit.Name)
	}
	if s := mustState(t, f.m); !s.PreliminaryChanged || s.PendingConfirm {
		t.Fatalf("state: %+v", s)
	}
	log, _ := f.st.AuditLog(ctx, 1)
	if len(log) != 1 || log[0].Author != "bob" || log[0].Action != "config.preliminary" || log[0].Detail != "changed unit.name" {
		t.Fatalf("audit: %+v", log)
	}
}

func TestApplyConfirm(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, store.NewMemory())
	if _, err := f.m.Apply(ctx, 0, "alice"); !errors.Is(err, ErrNothingToApply) {
		t.Fatalf("apply without changes: %v", err)
	}
	f.edit(t, setName("new"))
	s, err := f.m.Apply(ctx, time.Hour, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !s.PendingConfirm || s.RunningVersion != 0 || s.PreliminaryChanged || time.Until(s.ConfirmDeadline) < 59*time.Minute {
		t.Fatalf("state after apply: %+v", s)
	}
	if c := <-f.a.ch; c.Unit.Name != "new" {
		t.Fatalf("applier got %q", c.Unit.Name)
	}
	run, _ := f.m.Running(ctx)
	saved, _ := f.m.Saved(ctx)
	if run.Unit.Name != "new" || saved.Unit.Name != "palisade" {
		t.Fatalf("running %q saved %q", run.Unit.Name, saved.Unit.Name)
	}
	f.edit(t, setName("newer"))
	if _, err := f.m.Apply(ctx, 0, "alice"); !errors.Is(err, ErrApplyPending) {
		t.Fatalf("second apply: %v", err)
	}
	v, err := f.m.Confirm(ctx, "alice")
	if err != nil || v.Number != 2 || v.Author != "alice" {
		t.Fatalf("Confirm = %+v, %v", v, err)
	}
	if _, err := f.m.Confirm(ctx, "alice"); !errors.Is(err, ErrNoPendingApply) {
		t.Fatalf("second confirm: %v", err)
	}
	if err := f.m.Revert(ctx, "alice"); !errors.Is(err, ErrNoPendingApply) {
		t.Fatalf("revert after confirm: %v", err)
	}
	st, _ := f.m.StartupConfig(ctx)
	if st.Unit.Name != "new" {
		t.Fatalf("startup after confirm: %q", st.Unit.Name)
	}
	s = mustState(t, f.m)
	if s.RunningVersion != 2 || s.PendingConfirm || !s.PreliminaryChanged {
		t.Fatalf("state after confirm: %+v", s)
	}
	h, _ := f.m.History(ctx)
	if len(h) != 2 || h[1].Number != 2 {
		t.Fatalf("history: %+v", h)
	}
	log, _ := f.st.AuditLog(ctx, 0)
	var actions []string
	for _, e := range log {
		actions = append(actions, e.Action)
	}
	if want := "config.confirm config.preliminary config.apply config.preliminary config.bootstrap"; strings.Join(actions, " ") != want {
		t.Fatalf("audit actions %v, want %s", actions, want)
	}
}

func TestApplyInvalidOrFailing(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, store.NewMemory())
	f.edit(t, setName("x"))
	f.a.setFail(errors.New("port 5061 is in use"))
	_, err := f.m.Apply(ctx, 0, "alice")
	if err == nil || !strings.Contains(err.Error(), "port 5061 is in use") {
		t.Fatalf("failing apply: %v", err)
	}
	s := mustState(t, f.m)
	if s.PendingConfirm || s.RunningVersion != 1 || s.LastApplyError != "port 5061 is in use" || !s.PreliminaryChanged {
		t.Fatalf("state after failed apply: %+v", s)
	}
	if run, _ := f.m.Running(ctx); run.Unit.Name != "palisade" {
		t.Fatalf("running after failed apply: %q", run.Unit.Name)
	}
	// A preliminary document that became invalid (e.g. written by another
	// tool) is refused with every error and nothing runs.
	f.a.setFail(nil)
	bad := config.Default()
	bad.Routing.Redirects = "y"
	bad.Observe.LogLevel = "x"
	doc, _ := config.Encode(bad)
	f.st.Put(ctx, keyPreliminary, doc)
	_, err = f.m.Apply(ctx, 0, "alice")
	var errs config.Errors
	if !errors.As(err, &errs) || len(errs) != 2 {
		t.Fatalf("invalid preliminary: %v", err)
	}
	if len(f.a.applied) != 0 {
		t.Fatal("the applier ran")
	}
	// A successful apply clears the last error.
	f.edit(t, func(c *config.Config) { c.Unit.Name, c.Routing.Redirects, c.Observe.LogLevel = "y", "forward", "info" })
	if s, err := f.m.Apply(ctx, time.Hour, "alice"); err != nil || s.LastApplyError != "" {
		t.Fatalf("apply: %+v %v", s, err)
	}
}

func TestRevert(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, store.NewMemory())
	f.edit(t, setName("new"))
	if _, err := f.m.Apply(ctx, time.Hour, "alice"); err != nil {
		t.Fatal(err)
	}
	<-f.a.ch
	if err := f.m.Revert(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if c := <-f.a.ch; c.Unit.Name != "palisade" {
		t.Fatalf("revert applied %q", c.Unit.Name)
	}
	s := mustState(t, f.m)
	if s.PendingConfirm || s.RunningVersion != 1 || s.LastRevertReason != "reverted by bob to saved version 1" || !s.PreliminaryChanged {
		t.Fatalf("state after revert: %+v", s)
	}
	if p, _, _ := f.m.Preliminary(ctx); p.Unit.Name != "new" {
		t.Fatalf("revert changed preliminary: %q", p.Unit.Name)
	}
	if h, _ := f.m.History(ctx); len(h) != 1 {
		t.Fatalf("revert made a version: %+v", h)
	}
	// A revert the unit cannot perform keeps the pending state.
	if _, err := f.m.Apply(ctx, time.Hour, "alice"); err != nil {
		t.Fatal(err)
	}
	<-f.a.ch
	f.a.setFail(errors.New("boom"))
	if err := f.m.Revert(ctx, "bob"); err == nil {
		t.Fatal("failed revert reported success")
	}
	if s := mustState(t, f.m); !s.PendingConfirm || !strings.Contains(s.LastApplyError, "boom") {
		t.Fatalf("state after failed revert: %+v", s)
	}
}

func TestConfirmationWindowRunsOut(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, store.NewMemory())
	f.edit(t, setName("new"))
	if _, err := f.m.Apply(ctx, 20*time.Millisecond, "alice"); err != nil {
		t.Fatal(err)
	}
	<-f.a.ch
	select {
	case c := <-f.a.ch:
		if c.Unit.Name != "palisade" {
			t.Fatalf("timer applied %q", c.Unit.Name)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the window ran out but nothing was reverted")
	}
	// The state is written under the same lock as the revert; take it.
	s := mustState(t, f.m)
	want := "confirmation window ran out; reverted to saved version 1"
	if s.PendingConfirm || s.RunningVersion != 1 || s.LastRevertReason != want {
		t.Fatalf("state: %+v", s)
	}
	if l := f.log.String(); !strings.Contains(l, "level=WARN") || !strings.Contains(l, want) {
		t.Fatalf("log lacks the warning:\n%s", l)
	}
	if _, err := f.m.Confirm(ctx, "alice"); !errors.Is(err, ErrNoPendingApply) {
		t.Fatalf("confirm after timeout: %v", err)
	}
	if run, _ := f.m.Running(ctx); run.Unit.Name != "palisade" {
		t.Fatalf("running after timeout: %q", run.Unit.Name)
	}
}

func TestConfirmStopsTimer(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, store.NewMemory())
	f.edit(t, setName("new"))
	if _, err := f.m.Apply(ctx, 50*time.Millisecond, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Confirm(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	// Whatever the timer does now must not revert: wait past the window and
	// check that the applier saw only the apply.
	time.Sleep(200 * time.Millisecond)
	if n := len(f.a.ch); n != 1 {
		t.Fatalf("applier ran %d times, want 1", n)
	}
	if run, _ := f.m.Running(ctx); run.Unit.Name != "new" {
		t.Fatalf("running: %q", run.Unit.Name)
	}
}

func TestUndo(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, store.NewMemory())
	f.edit(t, setName("draft"))
	if err := f.m.Undo(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if p, _, _ := f.m.Preliminary(ctx); p.Unit.Name != "palisade" {
		t.Fatalf("after undo: %q", p.Unit.Name)
	}
	if mustState(t, f.m).PreliminaryChanged {
		t.Fatal("still changed after undo")
	}
	// While an apply waits, undo goes back to the applied configuration.
	f.edit(t, setName("applied"))
	f.m.Apply(ctx, time.Hour, "alice")
	f.edit(t, setName("draft2"))
	f.m.Undo(ctx, "alice")
	if p, _, _ := f.m.Preliminary(ctx); p.Unit.Name != "applied" {
		t.Fatalf("undo during pending apply: %q", p.Unit.Name)
	}
}

func TestLoadVersionResolveDiff(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, store.NewMemory())
	for _, name := range []string{"v2", "v3"} {
		f.edit(t, setName(name))
		if _, err := f.m.Apply(ctx, time.Hour, "alice"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.m.Confirm(ctx, "alice"); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.m.LoadVersion(ctx, 2, "bob"); err != nil {
		t.Fatal(err)
	}
	if p, _, _ := f.m.Preliminary(ctx); p.Unit.Name != "v2" {
		t.Fatalf("LoadVersion(2): %q", p.Unit.Name)
	}
	if err := f.m.LoadVersion(ctx, 9, "bob"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("LoadVersion(9): %v", err)
	}
	cs, u, err := f.m.Diff(ctx, "2", "running")
	if err != nil || len(cs) != 1 || cs[0].Path != "unit.name" || !strings.Contains(u, `-    "name": "v2",`) || !strings.Contains(u, `+    "name": "v3",`) {
		t.Fatalf("Diff: %v %v\n%s", cs, err, u)
	}
	if _, _, err := f.m.Diff(ctx, "x", "running"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("bad ref: %v", err)
	}
}

// TestRestartDuringConfirmation uses the real store: a unit that stops
// while an apply waits for confirmation starts on the saved version, with
// the preliminary edits kept.
func TestRestartDuringConfirmation(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, st)
	f.edit(t, setName("unconfirmed"))
	if _, err := f.m.Apply(ctx, time.Hour, "alice"); err != nil {
		t.Fatal(err)
	}
	f.m.Close()
	st.Close()

	st, err = store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	f2 := newFixture(t, st)
	c, err := f2.m.StartupConfig(ctx)
	if err != nil || c.Unit.Name != "palisade" {
		t.Fatalf("startup after restart: %v %v", c, err)
	}
	s := mustState(t, f2.m)
	if s.PendingConfirm || s.RunningVersion != 1 || !strings.Contains(s.LastRevertReason, "restarted") || !s.PreliminaryChanged {
		t.Fatalf("state after restart: %+v", s)
	}
	if p, _, _ := f2.m.Preliminary(ctx); p.Unit.Name != "unconfirmed" {
		t.Fatalf("preliminary after restart: %q", p.Unit.Name)
	}
	if !strings.Contains(f2.log.String(), "level=WARN") {
		t.Fatalf("no warning logged:\n%s", f2.log.String())
	}
}

func TestConcurrentUse(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, store.NewMemory())
	var wg sync.WaitGroup
	var ok, conflict int
	var mu sync.Mutex
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, etag, err := f.m.Preliminary(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			c.Unit.Name = fmt.Sprint("writer", i)
			_, err = f.m.SetPreliminary(ctx, c, etag, "w")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, ErrPreconditionFailed):
				conflict++
			default:
				t.Error(err)
			}
			f.m.State(ctx)
		}()
	}
	wg.Wait()
	if ok < 1 || ok+conflict != 8 {
		t.Fatalf("ok %d, conflicts %d", ok, conflict)
	}
}

// ctxApplier fails when its context is cancelled, like a unit would.
type ctxApplier struct{ *fakeApplier }

func (a ctxApplier) Apply(ctx context.Context, c *config.Config) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return a.fakeApplier.Apply(ctx, c)
}

func TestCallerGoingAwayDoesNotSplitState(t *testing.T) {
	st := store.NewMemory()
	a := ctxApplier{newFakeApplier()}
	m, err := New(st, a, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	bg := context.Background()
	m.Bootstrap(bg, config.Default(), "setup")
	c, etag, _ := m.Preliminary(bg)
	c.Unit.Name = "new"
	m.SetPreliminary(bg, c, etag, "alice")
	ctx, cancel := context.WithCancel(bg)
	cancel() // the HTTP client hung up before the apply ran
	if _, err := m.Apply(ctx, time.Hour, "alice"); err != nil {
		t.Fatalf("apply with a cancelled request context: %v", err)
	}
	if _, err := m.Confirm(ctx, "alice"); err != nil {
		t.Fatalf("confirm with a cancelled request context: %v", err)
	}
	if s := mustState(t, m); s.PendingConfirm || s.RunningVersion != 2 {
		t.Fatalf("state: %+v", s)
	}
}

func TestDamagedStateDoesNotBlockStart(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory()
	f := newFixture(t, st)
	f.m.Close()
	st.Put(ctx, keyState, []byte("{not json"))
	m, err := New(st, newFakeApplier(), nil)
	if err != nil {
		t.Fatalf("New with a damaged state record: %v", err)
	}
	if s := mustState(t, m); s.RunningVersion != 1 || s.PendingConfirm {
		t.Fatalf("state: %+v", s)
	}
}
