package lifecycle

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/store"
)

// A cluster of units shares one staged configuration in the store (etcd):
// config/preliminary, config/saved/ and config/state are the same for
// every unit. What a unit runs follows config/state through a watch
// (Follow): the pending configuration while an apply is pending, else the
// newest saved version. An apply on any unit records itself as pending,
// waits until every live unit (MembersPrefix) reported in ReportsPrefix
// that it switched, and then opens the confirmation window; if any unit
// failed, the pending record is dropped and every unit goes back. The
// deadline of the window is in the pending record, and one elected unit
// enforces it (EnforceDeadline), so that an unconfirmed apply reverts even
// when the unit that started it has died.

// Store keys of a cluster (see the layout in package store).
const (
	// MembersPrefix holds one leased key per live unit (cluster package).
	MembersPrefix = "cluster/units/"
	// ReportsPrefix holds ReportsPrefix<apply id>/<unit>: applyReport.
	ReportsPrefix = "cluster/applies/"
	// reportTTL keeps reports long enough to read, not for ever.
	reportTTL = time.Hour
)

// DefaultApplyWait is how long an apply in a cluster waits for every unit
// to report.
const DefaultApplyWait = 30 * time.Second

// ErrVersionSkew is returned by a cluster apply while the live units run
// different versions of Palisade (docs/cluster.md, version skew).
var ErrVersionSkew = errors.New("the units of the cluster run different versions of Palisade; configuration changes wait until all run the same")

// ErrApplyFailed is returned when a unit of the cluster could not switch
// to the applied configuration; every unit went back.
var ErrApplyFailed = errors.New("the configuration could not be applied on every unit; all units went back")

// applyReport is one unit's answer to an apply.
type applyReport struct {
	OK    bool      `json:"ok"`
	Error string    `json:"error,omitempty"`
	Time  time.Time `json:"time"`
}

// WithCluster makes the manager one unit (named unit) of a cluster sharing
// its store. Call Follow once the unit runs its start-up configuration,
// and EnforceDeadline while this unit is the elected one.
func WithCluster(unit string) Option {
	return func(m *Mgr) error {
		if unit == "" {
			return errors.New("lifecycle: a unit of a cluster needs a name")
		}
		m.unit = unit
		return nil
	}
}

// WithApplyWait sets how long a cluster apply waits for the units' reports.
func WithApplyWait(d time.Duration) Option {
	return func(m *Mgr) error {
		if d <= 0 {
			return fmt.Errorf("lifecycle: apply wait %s is not positive", d)
		}
		m.applyWait = d
		return nil
	}
}

// Unit is the unit's name in its cluster ("" for a single unit).
func (m *Mgr) Unit() string { return m.unit }

func newApplyID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// snapshot reads the state and the newest saved version at one moment
// (a transaction without writes), and the store revision of the read (0
// when the store has none or did not answer).
func (m *Mgr) snapshot(ctx context.Context) (stateRecord, savedRecord, int64, error) {
	var s stateRecord
	var rec savedRecord
	var rev int64
	err := m.st.Update(ctx, func(tx store.Tx) error {
		// The revision counts even when a read found nothing (an empty
		// etcd under the old addresses).
		defer func() {
			if r, ok := tx.(store.Revisioned); ok {
				rev = r.Revision()
			}
		}()
		var err error
		if s, err = readState(ctx, tx); err != nil {
			return err
		}
		rec, err = latestSaved(ctx, tx)
		return err
	})
	return s, rec, rev, err
}

// Follow keeps the unit on the cluster's configuration until ctx ends:
// at once, and on every change under config/. A watch that had to start
// again (EventReset), or a store that was unreachable, leads to a full
// re-read, so a unit catches up when etcd returns.
func (m *Mgr) Follow(ctx context.Context) {
	for ctx.Err() == nil {
		ch, err := m.st.Watch(ctx, "config/")
		if err != nil {
			m.logErr("watching the cluster's configuration failed; retrying", err)
			if !sleepCtx(ctx, 2*time.Second) {
				return
			}
			continue
		}
		if err := m.sync(ctx); err != nil {
			m.logErr("following the cluster's configuration failed", err)
		}
		for range ch {
			// Drain what else arrived: one sync covers them all.
			for more := true; more; {
				select {
				case _, more = <-ch:
				default:
					more = false
				}
			}
			if err := m.sync(ctx); err != nil {
				m.logErr("following the cluster's configuration failed", err)
			}
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-ctx.Done():
		return false
	}
}

// logErr logs a failure of the cluster loops; they retry at most every
// 2 s or on a change, which bounds the rate.
func (m *Mgr) logErr(msg string, err error) {
	m.log.Error(msg, "err", err)
}

// sync switches this unit to what the cluster's state says it should run
// and, during an apply, reports the result once per apply.
func (m *Mgr) sync(ctx context.Context) error {
	// One sync at a time, so that the revisions read only grow (stale.go).
	m.syncMu.Lock()
	defer m.syncMu.Unlock()
	s, rec, rev, err := m.snapshot(ctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.staleLocked(rev) {
		return nil // kept what it runs; staleLocked logged and raised the alarm
	}
	if err != nil {
		return err
	}
	want, id, what := rec.Config, "", fmt.Sprintf("saved version %d", rec.Number)
	if s.Pending != nil {
		want, id, what = s.Pending.Config, s.Pending.ID, "the applied configuration"
	}
	if m.current != nil && sameDoc(m.current, want) {
		if id != "" && m.reported != id {
			m.report(ctx, id, nil)
		}
		return nil
	}
	cfg, err := decodeDoc(what, want)
	if err == nil {
		if errs := cfg.Validate(); errs != nil {
			err = fmt.Errorf("%s does not validate on this unit (written by another version?): %w", what, errs)
		}
	}
	if err == nil {
		cfg, err = cfg.ForUnit(m.unit)
	}
	if err == nil {
		err = m.applier.Apply(ctx, cfg)
	}
	if err == nil {
		m.current = want
		metricLastApplyOK.Set(1)
		m.log.Info("unit switched to the cluster's configuration", "config", what)
	} else {
		metricLastApplyOK.Set(0)
		m.log.Error("unit could not switch to the cluster's configuration", "config", what, "err", err)
	}
	if id != "" && m.reported != id {
		m.report(ctx, id, err)
	}
	return err
}

// report writes this unit's answer to apply id (m.mu held).
func (m *Mgr) report(ctx context.Context, id string, applyErr error) {
	r := applyReport{OK: applyErr == nil, Time: time.Now().UTC()}
	if applyErr != nil {
		r.Error = applyErr.Error()
	}
	b, _ := json.Marshal(r)
	if err := m.st.PutTTL(ctx, ReportsPrefix+id+"/"+m.unit, b, reportTTL); err != nil {
		m.log.Error("reporting the apply's result failed", "apply", id, "err", err)
		return
	}
	m.reported = id
}

// Members returns the names of the live units (always including this one).
func (m *Mgr) Members(ctx context.Context) ([]string, error) {
	kvs, err := m.st.List(ctx, MembersPrefix)
	if err != nil {
		return nil, err
	}
	names := []string{m.unit}
	for _, kv := range kvs {
		if n := strings.TrimPrefix(kv.Key, MembersPrefix); n != m.unit && !strings.Contains(n, "/") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names, nil
}

// checkVersions refuses an apply while the live units publish different
// versions: a document one of them cannot read would be reverted anyway,
// and one it reads differently must not run.
func (m *Mgr) checkVersions(ctx context.Context) error {
	kvs, err := m.st.List(ctx, MembersPrefix)
	if err != nil {
		return err
	}
	seen := map[string][]string{}
	for _, kv := range kvs {
		var v struct {
			Version string `json:"version"`
		}
		if json.Unmarshal(kv.Value, &v) == nil {
			seen[v.Version] = append(seen[v.Version], strings.TrimPrefix(kv.Key, MembersPrefix))
		}
	}
	if len(seen) <= 1 {
		return nil
	}
	var parts []string
	for v, units := range seen {
		parts = append(parts, fmt.Sprintf("%s on %s", v, strings.Join(units, ", ")))
	}
	sort.Strings(parts)
	return fmt.Errorf("%w (%s)", ErrVersionSkew, strings.Join(parts, "; "))
}

// clusterApply is Apply for a unit of a cluster.
func (m *Mgr) clusterApply(ctx context.Context, window time.Duration, author string) (State, error) {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	if err := m.behindErr(); err != nil {
		return State{}, err
	}
	if err := m.checkVersions(ctx); err != nil {
		return State{}, err
	}
	id := newApplyID()
	var base int
	var cfg *config.Config
	err := m.st.Update(ctx, func(tx store.Tx) error {
		s, err := readState(ctx, tx)
		if err != nil {
			return err
		}
		if p := s.Pending; p != nil {
			return fmt.Errorf("%w (applied by %s through unit %s)", ErrApplyPending, p.Author, p.Unit)
		}
		prelim, err := tx.Get(ctx, keyPreliminary)
		if err != nil {
			return err
		}
		if cfg, err = decodeDoc("preliminary configuration", prelim); err != nil {
			return err
		}
		if errs := cfg.Validate(); errs != nil {
			return errs
		}
		rec, err := latestSaved(ctx, tx)
		if err != nil {
			return err
		}
		if sameDoc(prelim, rec.Config) {
			return ErrNothingToApply
		}
		base = rec.Number
		// Until every unit reported, the deadline covers the wait too:
		// should this unit die now, the elected unit reverts the others.
		s.Pending = &pendingRecord{ID: id, Unit: m.unit, Config: prelim, Base: base, Author: author,
			Deadline: time.Now().Add(m.applyWait + window)}
		return writeState(ctx, tx, s)
	})
	var ce config.Errors
	if errors.As(err, &ce) {
		metricApplies.WithLabelValues("invalid").Inc()
	}
	if err != nil {
		return State{}, err
	}
	_ = m.sync(ctx) // this unit switches at once; its report counts like the others'
	failed := m.awaitReports(ctx, id)
	if len(failed) > 0 {
		metricApplies.WithLabelValues("failed").Inc()
		reason := strings.Join(failed, "; ")
		if _, err := m.clusterRevert(ctx, author, "failed", id, reason); err != nil && !errors.Is(err, errSuperseded) {
			m.log.Error("reverting the failed apply failed; the elected unit reverts it at the deadline", "err", err)
		}
		_ = m.sync(ctx)
		m.audit(ctx, author, "config.apply.failed", reason)
		return State{}, fmt.Errorf("%w: %s", ErrApplyFailed, reason)
	}
	err = m.st.Update(ctx, func(tx store.Tx) error {
		s, err := readState(ctx, tx)
		if err != nil {
			return err
		}
		if s.Pending == nil || s.Pending.ID != id {
			return errSuperseded
		}
		s.Pending.Applied = true
		s.Pending.Deadline = time.Now().Add(window)
		s.LastApplyError, s.LastRevertReason = "", ""
		return writeState(ctx, tx, s)
	})
	if err != nil {
		if errors.Is(err, errSuperseded) {
			return State{}, errors.New("apply: the apply was reverted by someone else while the units switched")
		}
		return State{}, fmt.Errorf("lifecycle: record the apply: %w", err)
	}
	metricApplies.WithLabelValues("ok").Inc()
	m.log.Info("configuration applied on every unit; waiting for confirmation", "author", author,
		"window", window.String(), "base_version", base)
	for _, w := range cfg.Warnings() {
		m.log.Warn("configuration warning: "+w.Message, "path", w.Path)
	}
	m.audit(ctx, author, "config.apply", fmt.Sprintf("applied on every unit over saved version %d; confirm within %s", base, window))
	return m.State(ctx)
}

// errSuperseded: the pending apply is no longer the one the caller meant.
var errSuperseded = errors.New("the pending apply changed meanwhile")

// awaitReports waits until every live unit reported on apply id, or
// m.applyWait ran out, and returns what failed ("unit b: reason").
func (m *Mgr) awaitReports(ctx context.Context, id string) []string {
	wctx, cancel := context.WithTimeout(ctx, m.applyWait)
	defer cancel()
	prefix := ReportsPrefix + id + "/"
	ch, err := m.st.Watch(wctx, prefix)
	if err != nil {
		return []string{"cannot watch the units' reports: " + err.Error()}
	}
	tick := time.NewTicker(time.Second) // members come and go without an event here
	defer tick.Stop()
	for {
		// Reads use ctx, not wctx: the last read, once the wait is over,
		// must still see the reports.
		failed, missing, err := m.readReports(ctx, prefix)
		if err == nil && len(missing) == 0 {
			return failed
		}
		if wctx.Err() != nil {
			if err != nil {
				return append(failed, "reading the units' reports: "+err.Error())
			}
			for _, u := range missing {
				failed = append(failed, fmt.Sprintf("unit %s did not report within %s", u, m.applyWait))
			}
			return failed
		}
		select {
		case <-ch:
		case <-tick.C:
		case <-wctx.Done():
		}
	}
}

// readReports returns the live units that reported a failure ("unit b:
// reason") and those that have not reported on the apply under prefix.
func (m *Mgr) readReports(ctx context.Context, prefix string) (failed, missing []string, err error) {
	members, err := m.Members(ctx)
	if err != nil {
		return nil, nil, err
	}
	kvs, err := m.st.List(ctx, prefix)
	if err != nil {
		return nil, nil, err
	}
	got := map[string]applyReport{}
	for _, kv := range kvs {
		var r applyReport
		if json.Unmarshal(kv.Value, &r) != nil {
			r.Error = "unreadable report"
		}
		got[strings.TrimPrefix(kv.Key, prefix)] = r
	}
	for _, u := range members {
		r, ok := got[u]
		switch {
		case !ok:
			missing = append(missing, u)
		case !r.OK:
			failed = append(failed, fmt.Sprintf("unit %s: %s", u, r.Error))
		}
	}
	return failed, missing, nil
}

// clusterRevert drops the pending apply (id "" = whichever) so that every
// unit goes back to the newest saved version. why is revert, timeout or
// failed (detail then says what failed).
func (m *Mgr) clusterRevert(ctx context.Context, author, why, id, detail string) (int, error) {
	var n int
	var reason string
	err := m.st.Update(ctx, func(tx store.Tx) error {
		s, err := readState(ctx, tx)
		if err != nil {
			return err
		}
		if s.Pending == nil {
			return ErrNoPendingApply
		}
		if id != "" && s.Pending.ID != id {
			return errSuperseded
		}
		rec, err := latestSaved(ctx, tx)
		if err != nil {
			return err
		}
		n = rec.Number
		s.LastApplyError = ""
		switch why {
		case "timeout":
			reason = fmt.Sprintf("confirmation window ran out; every unit reverted to saved version %d", n)
		case "failed":
			reason = fmt.Sprintf("the apply failed on a unit; every unit reverted to saved version %d", n)
			s.LastApplyError = detail
		default:
			reason = fmt.Sprintf("reverted by %s to saved version %d on every unit", author, n)
		}
		s.Pending = nil
		s.LastRevertReason = reason
		return writeState(ctx, tx, s)
	})
	if err != nil {
		return 0, err
	}
	metricReverts.WithLabelValues(why).Inc()
	m.audit(ctx, author, "config.revert", reason)
	return n, nil
}

// clusterRevertNow is Revert for a unit of a cluster.
func (m *Mgr) clusterRevertNow(ctx context.Context, author string) error {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	if err := m.behindErr(); err != nil {
		return err
	}
	n, err := m.clusterRevert(ctx, author, "revert", "", "")
	if err != nil {
		return err
	}
	if err := m.sync(ctx); err != nil {
		m.log.Error("this unit could not go back", "err", err)
	}
	m.log.Info(fmt.Sprintf("reverted by %s to saved version %d", author, n), "version", n)
	return nil
}

// EnforceDeadline reverts a pending apply whose deadline passed, until ctx
// ends. Exactly one unit of a cluster runs it: the one elected for the
// confirmation timer (cluster package).
func (m *Mgr) EnforceDeadline(ctx context.Context) {
	for ctx.Err() == nil {
		ch, err := m.st.Watch(ctx, keyState)
		if err != nil {
			if !sleepCtx(ctx, 2*time.Second) {
				return
			}
			continue
		}
		m.enforceOnce(ctx, ch)
	}
}

// enforceOnce waits on one watch: re-reading the state on every change,
// reverting when the deadline of the pending apply passes.
func (m *Mgr) enforceOnce(ctx context.Context, ch <-chan store.Event) {
	for {
		s, err := readState(ctx, m.st)
		var timer <-chan time.Time
		switch {
		case err != nil:
			m.logErr("the confirmation timer cannot read the state; retrying", err)
			timer = time.After(2 * time.Second)
		case s.Pending != nil:
			if d := time.Until(s.Pending.Deadline); d > 0 {
				timer = time.After(d)
			} else {
				n, err := m.clusterRevert(ctx, "unit "+m.unit, "timeout", s.Pending.ID, "")
				switch {
				case err == nil:
					m.log.Warn(fmt.Sprintf("confirmation window ran out; every unit reverts to saved version %d", n), "version", n)
				case errors.Is(err, errSuperseded), errors.Is(err, ErrNoPendingApply):
				default:
					m.logErr("reverting after the confirmation window failed; retrying", err)
					timer = time.After(2 * time.Second)
				}
				if timer == nil {
					continue
				}
			}
		}
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timer:
		case <-ctx.Done():
			return
		}
	}
}
