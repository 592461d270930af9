package unit

import (
	"context"
	"errors"
	"testing"

	"github.com/palisade-sbc/palisade/internal/config"
)

// fakeSub records what it runs; it fails Apply for configurations whose
// unit.name equals failOn.
type fakeSub struct {
	name    string
	failOn  string
	running string
	log     *[]string
}

func (f *fakeSub) Name() string { return f.name }
func (f *fakeSub) Apply(_ context.Context, c *config.Config) error {
	*f.log = append(*f.log, f.name+":apply:"+c.Unit.Name)
	if c.Unit.Name == f.failOn {
		return errors.New("cannot")
	}
	f.running = c.Unit.Name
	return nil
}
func (f *fakeSub) Drain(context.Context) error { *f.log = append(*f.log, f.name+":drain"); return nil }
func (f *fakeSub) Close() error                { *f.log = append(*f.log, f.name+":close"); f.running = ""; return nil }

func named(n string) *config.Config {
	c := config.Default()
	c.Unit.Name = n
	return c
}

func TestApplyRollsBackOnError(t *testing.T) {
	var log []string
	a := &fakeSub{name: "a", log: &log}
	b := &fakeSub{name: "b", log: &log}
	c := &fakeSub{name: "c", failOn: "bad", log: &log}
	u := New(nil)
	u.Add(a, b, c)
	ctx := t.Context()
	if err := u.Apply(ctx, named("one")); err != nil {
		t.Fatal(err)
	}
	err := u.Apply(ctx, named("bad"))
	if err == nil || u.Running().Unit.Name != "one" {
		t.Fatalf("apply of a failing config: err %v, running %q", err, u.Running().Unit.Name)
	}
	for _, s := range []*fakeSub{a, b, c} {
		if s.running != "one" {
			t.Errorf("%s runs %q after the failed apply, want the previous config", s.name, s.running)
		}
	}
	log = nil
	if err := u.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	u.Close()
	u.Close()
	want := []string{"c:drain", "b:drain", "a:drain", "c:close", "b:close", "a:close"}
	if len(log) != len(want) {
		t.Fatalf("drain/close order %v, want %v", log, want)
	}
	for i := range want {
		if log[i] != want[i] {
			t.Fatalf("drain/close order %v, want %v", log, want)
		}
	}
	if err := u.Apply(ctx, named("two")); err == nil {
		t.Fatal("apply after Close must fail")
	}
}

func TestFirstApplyFailureClosesStartedSubsystems(t *testing.T) {
	var log []string
	a := &fakeSub{name: "a", log: &log}
	b := &fakeSub{name: "b", failOn: "x", log: &log}
	u := New(nil)
	u.Add(a, b)
	if err := u.Apply(t.Context(), named("x")); err == nil {
		t.Fatal("want error")
	}
	if a.running != "" || u.Running() != nil {
		t.Fatalf("a still runs %q after the first apply failed", a.running)
	}
}
