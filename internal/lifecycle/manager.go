package lifecycle

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/store"
)

// DefaultWindow is the confirmation window when Apply is given 0.
const DefaultWindow = 60 * time.Second

var (
	metricApplies = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "lifecycle", Name: "applies_total",
		Help: "Configuration applies by result (ok, invalid, failed).",
	}, []string{"result"})
	metricLastApplyOK = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "palisade", Subsystem: "lifecycle", Name: "last_apply_successful",
		Help: "1 when the last apply (or revert) switched the unit, 0 when it failed.",
	})
	metricReverts = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "palisade", Subsystem: "lifecycle", Name: "reverts_total",
		Help: "Applied configurations that were not confirmed, by reason (revert, timeout, restart).",
	}, []string{"reason"})
	metricSavedVersion = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "palisade", Subsystem: "lifecycle", Name: "saved_version",
		Help: "Number of the newest saved configuration version.",
	})
)

// Mgr is the Manager of one unit, over a store and the unit's Applier.
//
// Durability: every saved version is written once, in the transaction that
// makes it the start-up configuration, and never changed. An apply records
// itself as pending in the store before the unit switches; a unit that
// stops for any reason while a configuration is pending starts again on the
// newest saved version (StartupConfig), and New clears the stale pending
// record, noting why in State.LastRevertReason.
//
// All methods are safe for concurrent use; they are serialised by one mutex,
// which is also held while the Applier runs, so the Applier must not call
// back into the Manager.
type Mgr struct {
	st      store.Store
	applier Applier
	log     *slog.Logger
	window  time.Duration

	mu    sync.Mutex
	timer *time.Timer
	gen   uint64 // identifies the current pending apply for its timer

	// A unit of a cluster (WithCluster; cluster.go).
	unit      string
	applyWait time.Duration
	opMu      sync.Mutex // serialises this unit's cluster applies and reverts
	current   []byte     // the document this unit runs (m.mu)
	reported  string     // the apply this unit last reported on (m.mu)
	syncMu    sync.Mutex // one sync at a time (cluster.go)
	seenRev   int64      // the newest store revision this unit followed (m.mu; stale.go)
	behind    error      // set while the store answers older than seenRev (m.mu)
}

var _ Manager = (*Mgr)(nil)

// Option changes a Mgr built by New.
type Option func(*Mgr) error

// WithDefaultWindow sets the confirmation window used when Apply is given 0.
func WithDefaultWindow(d time.Duration) Option {
	return func(m *Mgr) error {
		if d <= 0 {
			return fmt.Errorf("lifecycle: confirmation window %s is not positive", d)
		}
		m.window = d
		return nil
	}
}

// New returns the manager of the configuration in st. A pending apply left
// in the store by a unit that stopped before confirming is discarded: the
// unit runs the newest saved version again (StartupConfig). New works on an
// empty store; Bootstrap it before use.
func New(st store.Store, applier Applier, log *slog.Logger, opts ...Option) (*Mgr, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Mgr{st: st, applier: applier, log: log.With("component", "lifecycle"), window: DefaultWindow,
		applyWait: DefaultApplyWait}
	for _, o := range opts {
		if err := o(m); err != nil {
			return nil, err
		}
	}
	ctx := context.Background()
	if m.unit != "" {
		// A pending apply belongs to the cluster: the elected unit decides
		// on it, and Follow brings this unit to it. The unit starts on the
		// newest saved version (StartupConfig).
		if rec, err := latestSaved(ctx, st); err == nil {
			m.current = rec.Config
			metricSavedVersion.Set(float64(rec.Number))
		}
		return m, nil
	}
	s, err := readState(ctx, st)
	if err != nil {
		// The state only says whether an apply is pending; the unit starts
		// on the newest saved version either way, so a damaged state record
		// must not keep it from starting.
		m.log.Error("configuration state unreadable; starting from the saved version", "err", err)
		s = stateRecord{}
		if err := writeState(ctx, st, s); err != nil {
			return nil, fmt.Errorf("lifecycle: reset the damaged state: %w", err)
		}
	}
	if s.Pending != nil {
		n := s.Pending.Base
		if rec, err := latestSaved(ctx, st); err == nil {
			n = rec.Number
		}
		reason := fmt.Sprintf("the unit restarted while an applied configuration (by %s) was waiting for confirmation; it runs saved version %d",
			s.Pending.Author, n)
		s.Pending = nil
		s.LastRevertReason = reason
		if err := writeState(ctx, st, s); err != nil {
			return nil, fmt.Errorf("lifecycle: clear the stale pending apply: %w", err)
		}
		metricReverts.WithLabelValues("restart").Inc()
		m.log.Warn(reason)
		_ = st.Audit(ctx, store.AuditEntry{Author: "unit", Action: "config.revert", Detail: reason})
	}
	if rec, err := latestSaved(ctx, st); err == nil {
		metricSavedVersion.Set(float64(rec.Number))
	}
	return m, nil
}

// Close stops the confirmation timer. A pending apply stays recorded; the
// next New discards it.
func (m *Mgr) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stopTimer()
}

// Bootstrap makes cfg saved version 1 and the preliminary configuration of
// an empty store (see the package function Bootstrap).
func (m *Mgr) Bootstrap(ctx context.Context, cfg *config.Config, author string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := Bootstrap(ctx, m.st, cfg, author); err != nil {
		return err
	}
	metricSavedVersion.Set(1)
	return nil
}

// StartupConfig is the newest saved configuration (see the package
// function StartupConfig).
func (m *Mgr) StartupConfig(ctx context.Context) (*config.Config, error) {
	c, _, err := StartupConfig(ctx, m.st)
	return c, err
}

// running returns the document that runs now (the pending one when it was
// applied, else the newest saved) and the saved record.
func (m *Mgr) running(ctx context.Context) ([]byte, stateRecord, savedRecord, error) {
	s, err := readState(ctx, m.st)
	if err != nil {
		return nil, s, savedRecord{}, err
	}
	rec, err := latestSaved(ctx, m.st)
	if err != nil {
		return nil, s, rec, err
	}
	if s.Pending != nil && s.Pending.Applied {
		return s.Pending.Config, s, rec, nil
	}
	return rec.Config, s, rec, nil
}

// State reports the staged configuration.
func (m *Mgr) State(ctx context.Context) (State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stateLocked(ctx)
}

func (m *Mgr) stateLocked(ctx context.Context) (State, error) {
	run, s, rec, err := m.running(ctx)
	if err != nil {
		return State{}, err
	}
	prelim, err := m.st.Get(ctx, keyPreliminary)
	if err != nil {
		return State{}, err
	}
	out := State{
		PreliminaryETag:    etagOf(prelim),
		PreliminaryChanged: !sameDoc(prelim, run),
		RunningVersion:     rec.Number,
		LastApplyError:     s.LastApplyError,
		LastRevertReason:   s.LastRevertReason,
	}
	if s.Pending != nil && s.Pending.Applied {
		out.RunningVersion = 0
		out.PendingConfirm = true
		out.ConfirmDeadline = s.Pending.Deadline
	}
	return out, nil
}

// sameDoc compares two stored documents as configurations (documents
// written by an older build may differ in bytes but not in meaning).
func sameDoc(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	ca, err1 := config.Decode(a)
	cb, err2 := config.Decode(b)
	return err1 == nil && err2 == nil && config.Equal(ca, cb)
}

// Preliminary returns the preliminary configuration and its ETag.
func (m *Mgr) Preliminary(ctx context.Context) (*config.Config, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := m.st.Get(ctx, keyPreliminary)
	if err != nil {
		return nil, "", err
	}
	c, err := decodeDoc("preliminary configuration", b)
	return c, etagOf(b), err
}

// Running returns the configuration the unit runs: the applied one while it
// waits for confirmation, else the newest saved version.
func (m *Mgr) Running(ctx context.Context) (*config.Config, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	run, _, _, err := m.running(ctx)
	if err != nil {
		return nil, err
	}
	return decodeDoc("running configuration", run)
}

// Saved returns the newest saved version (the start-up configuration).
func (m *Mgr) Saved(ctx context.Context) (*config.Config, error) {
	c, _, err := StartupConfig(ctx, m.st)
	return c, err
}

// SetPreliminary validates cfg and stores it as the preliminary
// configuration. On any error nothing is stored: config.Errors lists every
// problem; ErrPreconditionFailed means ifMatch is not the current ETag.
func (m *Mgr) SetPreliminary(ctx context.Context, cfg *config.Config, ifMatch, author string) (string, error) {
	// A change runs to its end even when the caller goes away, so that
	// the store and the unit never disagree.
	ctx = context.WithoutCancel(ctx)
	if errs := cfg.Validate(); errs != nil {
		return "", errs
	}
	doc, err := config.Encode(cfg)
	if err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.behind != nil {
		return "", m.behind
	}
	var old []byte
	err = m.st.Update(ctx, func(tx store.Tx) error {
		cur, err := tx.Get(ctx, keyPreliminary)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if ifMatch != "" && strings.Trim(ifMatch, `"`) != etagOf(cur) {
			return ErrPreconditionFailed
		}
		old = cur
		return tx.Put(ctx, keyPreliminary, doc)
	})
	if err != nil {
		return "", err
	}
	m.audit(ctx, author, "config.preliminary", summarize(old, doc))
	return etagOf(doc), nil
}

// summarize names the changed paths for the audit log.
func summarize(oldDoc, newDoc []byte) string {
	a, err1 := config.Decode(oldDoc)
	b, err2 := config.Decode(newDoc)
	if err1 != nil || err2 != nil {
		return "preliminary configuration replaced"
	}
	cs, err := config.Diff(a, b)
	if err != nil {
		return "preliminary configuration replaced"
	}
	if len(cs) == 0 {
		return "no change"
	}
	const most = 20
	var paths []string
	for i, c := range cs {
		if i == most {
			paths = append(paths, fmt.Sprintf("and %d more", len(cs)-most))
			break
		}
		paths = append(paths, c.Path)
	}
	return "changed " + strings.Join(paths, ", ")
}

func (m *Mgr) audit(ctx context.Context, author, action, detail string) {
	if err := m.st.Audit(ctx, store.AuditEntry{Author: author, Action: action, Detail: detail}); err != nil {
		m.log.Error("audit log write failed", "action", action, "err", err)
	}
}

// Apply validates the preliminary configuration, switches the unit to it
// and opens a confirmation window (window 0 = the default). On an invalid
// configuration (config.Errors) or an Applier error nothing changes: the
// previous configuration keeps running and the error is returned (and kept
// in State.LastApplyError).
func (m *Mgr) Apply(ctx context.Context, window time.Duration, author string) (State, error) {
	// A change runs to its end even when the caller goes away, so that
	// the store and the unit never disagree.
	ctx = context.WithoutCancel(ctx)
	if window <= 0 {
		window = m.window
	}
	if m.unit != "" {
		return m.clusterApply(ctx, window, author)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s, err := readState(ctx, m.st)
	if err != nil {
		return State{}, err
	}
	if s.Pending != nil {
		return State{}, ErrApplyPending
	}
	prelim, err := m.st.Get(ctx, keyPreliminary)
	if err != nil {
		return State{}, err
	}
	cfg, err := decodeDoc("preliminary configuration", prelim)
	if err != nil {
		return State{}, err
	}
	if errs := cfg.Validate(); errs != nil {
		metricApplies.WithLabelValues("invalid").Inc()
		return State{}, errs
	}
	rec, err := latestSaved(ctx, m.st)
	if err != nil {
		return State{}, err
	}
	if sameDoc(prelim, rec.Config) {
		return State{}, ErrNothingToApply
	}
	// Record the apply before the unit switches: should the process die
	// during or after the switch, the next start knows that an unconfirmed
	// configuration was running and starts on the saved one.
	s.Pending = &pendingRecord{Config: prelim, Base: rec.Number, Author: author, Deadline: time.Now().Add(window)}
	if err := writeState(ctx, m.st, s); err != nil {
		return State{}, fmt.Errorf("lifecycle: record the apply: %w", err)
	}
	if err := m.applier.Apply(ctx, cfg); err != nil {
		metricApplies.WithLabelValues("failed").Inc()
		metricLastApplyOK.Set(0)
		s.Pending = nil
		s.LastApplyError = err.Error()
		if werr := writeState(ctx, m.st, s); werr != nil {
			m.log.Error("recording the failed apply failed", "err", werr)
		}
		m.log.Error("apply failed; the previous configuration keeps running", "err", err, "author", author)
		m.audit(ctx, author, "config.apply.failed", err.Error())
		return State{}, fmt.Errorf("apply: %w", err)
	}
	metricApplies.WithLabelValues("ok").Inc()
	metricLastApplyOK.Set(1)
	s.Pending.Applied = true
	s.Pending.Deadline = time.Now().Add(window)
	s.LastApplyError = ""
	s.LastRevertReason = ""
	if err := writeState(ctx, m.st, s); err != nil {
		// The unit runs the new configuration but the store does not say
		// so; put the saved one back rather than run unrecorded.
		m.log.Error("recording the apply failed; reverting", "err", err)
		_ = m.applier.Apply(context.Background(), mustDecode(rec.Config))
		return State{}, fmt.Errorf("lifecycle: record the apply: %w", err)
	}
	m.gen++
	gen := m.gen
	m.stopTimer()
	m.timer = time.AfterFunc(window, func() { m.expire(gen) })
	m.log.Info("configuration applied; waiting for confirmation", "author", author,
		"window", window.String(), "deadline", s.Pending.Deadline.Format(time.RFC3339), "base_version", rec.Number)
	for _, w := range cfg.Warnings() {
		m.log.Warn("configuration warning: "+w.Message, "path", w.Path)
	}
	m.audit(ctx, author, "config.apply", fmt.Sprintf("applied over saved version %d; confirm within %s", rec.Number, window))
	return m.stateLocked(ctx)
}

func mustDecode(b []byte) *config.Config {
	c, err := config.Decode(b)
	if err != nil {
		return config.Default()
	}
	return c
}

func (m *Mgr) stopTimer() {
	if m.timer != nil {
		m.timer.Stop()
		m.timer = nil
	}
}

// expire runs when the confirmation window of apply gen ran out.
func (m *Mgr) expire(gen uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if gen != m.gen || m.timer == nil {
		return // confirmed, reverted, or superseded meanwhile
	}
	m.timer = nil
	ctx := context.Background()
	n, err := m.revertLocked(ctx, "unit", "timeout")
	if err != nil {
		// The unit still runs the unconfirmed configuration; try again
		// rather than leave it running for good.
		m.log.Error("reverting after the confirmation window failed; retrying in 5s", "err", err)
		m.timer = time.AfterFunc(5*time.Second, func() { m.expire(gen) })
		return
	}
	m.log.Warn(fmt.Sprintf("confirmation window ran out; reverted to saved version %d", n), "version", n)
}

// revertLocked switches the unit back to the newest saved version and
// clears the pending apply. It returns that version's number.
func (m *Mgr) revertLocked(ctx context.Context, author, why string) (int, error) {
	s, err := readState(ctx, m.st)
	if err != nil {
		return 0, err
	}
	if s.Pending == nil {
		return 0, ErrNoPendingApply
	}
	rec, err := latestSaved(ctx, m.st)
	if err != nil {
		return 0, err
	}
	cfg, err := decodeDoc(fmt.Sprintf("version %d", rec.Number), rec.Config)
	if err != nil {
		return 0, err
	}
	if err := m.applier.Apply(ctx, cfg); err != nil {
		metricLastApplyOK.Set(0)
		s.LastApplyError = "revert: " + err.Error()
		_ = writeState(ctx, m.st, s)
		return 0, fmt.Errorf("revert to saved version %d: %w", rec.Number, err)
	}
	metricLastApplyOK.Set(1)
	var reason string
	switch why {
	case "timeout":
		reason = fmt.Sprintf("confirmation window ran out; reverted to saved version %d", rec.Number)
	default:
		reason = fmt.Sprintf("reverted by %s to saved version %d", author, rec.Number)
	}
	s.Pending = nil
	s.LastApplyError = ""
	s.LastRevertReason = reason
	if err := writeState(ctx, m.st, s); err != nil {
		return 0, fmt.Errorf("lifecycle: record the revert: %w", err)
	}
	metricReverts.WithLabelValues(why).Inc()
	m.gen++
	m.stopTimer()
	m.audit(ctx, author, "config.revert", reason)
	return rec.Number, nil
}

// Confirm makes the applied configuration a new saved version, the
// start-up configuration.
func (m *Mgr) Confirm(ctx context.Context, author string) (Version, error) {
	// A change runs to its end even when the caller goes away, so that
	// the store and the unit never disagree.
	ctx = context.WithoutCancel(ctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.behind != nil {
		return Version{}, m.behind
	}
	var v Version
	err := m.st.Update(ctx, func(tx store.Tx) error {
		s, err := readState(ctx, tx)
		if err != nil {
			return err
		}
		if s.Pending == nil || !s.Pending.Applied {
			return ErrNoPendingApply
		}
		rec, err := latestSaved(ctx, tx)
		if err != nil {
			return err
		}
		v = Version{Number: rec.Number + 1, Time: time.Now().UTC(), Author: author}
		b, err := json.Marshal(savedRecord{Version: v, Config: s.Pending.Config})
		if err != nil {
			return err
		}
		if err := tx.Put(ctx, savedKey(v.Number), b); err != nil {
			return err
		}
		// Saving and leaving the pending state happen in one transaction:
		// after a crash the version either exists and runs, or does not.
		s.Pending = nil
		s.LastApplyError = ""
		s.LastRevertReason = ""
		return writeState(ctx, tx, s)
	})
	if err != nil {
		return Version{}, err
	}
	m.gen++
	m.stopTimer()
	metricSavedVersion.Set(float64(v.Number))
	m.log.Info("configuration confirmed", "version", v.Number, "author", author)
	m.audit(ctx, author, "config.confirm", fmt.Sprintf("saved version %d", v.Number))
	return v, nil
}

// Revert switches the unit back to the newest saved version before the
// confirmation window runs out.
func (m *Mgr) Revert(ctx context.Context, author string) error {
	// A change runs to its end even when the caller goes away, so that
	// the store and the unit never disagree.
	ctx = context.WithoutCancel(ctx)
	if m.unit != "" {
		return m.clusterRevertNow(ctx, author)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.revertLocked(ctx, author, "revert")
	if err != nil {
		return err
	}
	m.log.Info(fmt.Sprintf("reverted by %s to saved version %d", author, n), "version", n)
	return nil
}

// Undo discards the preliminary changes: preliminary := running.
func (m *Mgr) Undo(ctx context.Context, author string) error {
	// A change runs to its end even when the caller goes away, so that
	// the store and the unit never disagree.
	ctx = context.WithoutCancel(ctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.behind != nil {
		return m.behind
	}
	run, _, _, err := m.running(ctx)
	if err != nil {
		return err
	}
	var old []byte
	err = m.st.Update(ctx, func(tx store.Tx) error {
		old, _ = tx.Get(ctx, keyPreliminary)
		return tx.Put(ctx, keyPreliminary, run)
	})
	if err != nil {
		return err
	}
	m.audit(ctx, author, "config.undo", "preliminary reset to the running configuration; dropped: "+strings.TrimPrefix(summarize(run, old), "changed "))
	return nil
}
