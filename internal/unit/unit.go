package unit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/palisade-sbc/palisade/internal/config"
)

// Unit is the running SBC: an ordered list of subsystems that follow the
// configuration. It implements lifecycle.Applier.
//
// Subsystems are applied in the order they were added (add the ones others
// depend on first, e.g. PKI before SIP). Apply is all or nothing: when one
// subsystem fails, the ones already switched are re-applied with the previous
// configuration, so the whole unit keeps running the old one.
type Unit struct {
	log *slog.Logger

	// mu serialises Apply and Close and guards current and closed.
	mu      sync.Mutex
	current *config.Config
	closed  bool

	// subsMu guards subs only. Subsystems do not find each other through
	// the unit: the composition root (internal/cli/wire.go) hands each one
	// what it uses in its constructor.
	subsMu sync.RWMutex
	subs   []Subsystem
}

// New returns a unit without subsystems.
func New(log *slog.Logger) *Unit {
	if log == nil {
		log = slog.Default()
	}
	return &Unit{log: log}
}

// Add appends subsystems. Call it before the first Apply.
func (u *Unit) Add(subs ...Subsystem) {
	u.subsMu.Lock()
	defer u.subsMu.Unlock()
	for _, s := range subs {
		if s != nil {
			u.subs = append(u.subs, s)
		}
	}
}

func (u *Unit) list() []Subsystem {
	u.subsMu.RLock()
	defer u.subsMu.RUnlock()
	return append([]Subsystem(nil), u.subs...)
}

// Running returns the configuration the unit runs now (nil before the first Apply).
func (u *Unit) Running() *config.Config {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.current
}

// Apply switches every subsystem to cfg, in order. On error the subsystems
// already switched go back to the previous configuration and the error is
// returned; the unit as a whole keeps running what it ran before.
func (u *Unit) Apply(ctx context.Context, cfg *config.Config) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return errors.New("the unit is stopping")
	}
	prev := u.current
	subs := u.list()
	for i, s := range subs {
		if err := s.Apply(ctx, cfg); err != nil {
			applyTotal.WithLabelValues("error").Inc()
			lastApplyOK.Set(0)
			err = fmt.Errorf("%s: %w", s.Name(), err)
			u.rollback(ctx, subs[:i], prev)
			return err
		}
	}
	u.current = cfg
	applyTotal.WithLabelValues("ok").Inc()
	lastApplyOK.Set(1)
	return nil
}

// rollback re-applies prev to subs (which already run the new configuration).
// Before the first successful apply there is nothing to go back to: those
// subsystems are closed instead.
func (u *Unit) rollback(ctx context.Context, subs []Subsystem, prev *config.Config) {
	for i := len(subs) - 1; i >= 0; i-- {
		s := subs[i]
		var err error
		if prev == nil {
			err = s.Close()
		} else {
			err = s.Apply(ctx, prev)
		}
		if err != nil {
			rollbackFailures.Inc()
			u.log.Error("subsystem did not go back to the previous configuration", "subsystem", s.Name(), "err", err)
		}
	}
}

// Drain asks every subsystem, in reverse order, to stop taking new work and
// to finish what it has until ctx ends.
func (u *Unit) Drain(ctx context.Context) error {
	subs := u.list()
	var errs []error
	for i := len(subs) - 1; i >= 0; i-- {
		if err := subs[i].Drain(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", subs[i].Name(), err))
		}
	}
	return errors.Join(errs...)
}

// Close closes every subsystem in reverse order. It is safe to call twice.
func (u *Unit) Close() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return nil
	}
	u.closed = true
	subs := u.list()
	var errs []error
	for i := len(subs) - 1; i >= 0; i-- {
		if err := subs[i].Close(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", subs[i].Name(), err))
		}
	}
	return errors.Join(errs...)
}
