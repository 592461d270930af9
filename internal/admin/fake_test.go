package admin

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/lifecycle"
	"github.com/palisade-sbc/palisade/internal/store"
)

// fakeManager is a small in-memory lifecycle.Manager for the API tests.
type fakeManager struct {
	mu       sync.Mutex
	applier  lifecycle.Applier
	prelim   *config.Config
	gen      int
	running  *config.Config
	saved    []*config.Config
	versions []lifecycle.Version
	pending  bool
	deadline time.Time
}

func newFakeManager(cfg *config.Config, a lifecycle.Applier) *fakeManager {
	c, _ := config.Clone(cfg)
	r, _ := config.Clone(cfg)
	return &fakeManager{applier: a, prelim: c, running: r, saved: []*config.Config{r},
		versions: []lifecycle.Version{{Number: 1, Author: "test"}}}
}

func (m *fakeManager) etag() string { return "g" + strconv.Itoa(m.gen) }

func (m *fakeManager) State(context.Context) (lifecycle.State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := lifecycle.State{PreliminaryChanged: !config.Equal(m.prelim, m.running), PreliminaryETag: m.etag(),
		PendingConfirm: m.pending, ConfirmDeadline: m.deadline}
	if !m.pending {
		st.RunningVersion = len(m.versions)
	}
	return st, nil
}

func (m *fakeManager) Preliminary(context.Context) (*config.Config, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := config.Clone(m.prelim)
	return c, m.etag(), err
}

func (m *fakeManager) Running(context.Context) (*config.Config, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return config.Clone(m.running)
}

func (m *fakeManager) Saved(context.Context) (*config.Config, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return config.Clone(m.saved[len(m.saved)-1])
}

func (m *fakeManager) SetPreliminary(_ context.Context, cfg *config.Config, ifMatch, _ string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ifMatch != "" && ifMatch != m.etag() {
		return "", lifecycle.ErrPreconditionFailed
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		return "", errs
	}
	m.prelim, _ = config.Clone(cfg)
	m.gen++
	return m.etag(), nil
}

func (m *fakeManager) Apply(ctx context.Context, window time.Duration, _ string) (lifecycle.State, error) {
	m.mu.Lock()
	if m.pending {
		m.mu.Unlock()
		return lifecycle.State{}, lifecycle.ErrApplyPending
	}
	next, _ := config.Clone(m.prelim)
	m.mu.Unlock()
	if err := m.applier.Apply(ctx, next); err != nil {
		return lifecycle.State{}, err
	}
	m.mu.Lock()
	if window == 0 {
		window = time.Minute
	}
	m.running, m.pending, m.deadline = next, true, time.Now().Add(window)
	m.mu.Unlock()
	return m.State(ctx)
}

func (m *fakeManager) Confirm(context.Context, string) (lifecycle.Version, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.pending {
		return lifecycle.Version{}, lifecycle.ErrNoPendingApply
	}
	m.pending = false
	m.saved = append(m.saved, m.running)
	v := lifecycle.Version{Number: len(m.versions) + 1, Time: time.Now()}
	m.versions = append(m.versions, v)
	return v, nil
}

func (m *fakeManager) Revert(ctx context.Context, _ string) error {
	m.mu.Lock()
	if !m.pending {
		m.mu.Unlock()
		return lifecycle.ErrNoPendingApply
	}
	prev := m.saved[len(m.saved)-1]
	m.mu.Unlock()
	if err := m.applier.Apply(ctx, prev); err != nil {
		return err
	}
	m.mu.Lock()
	m.running, m.pending = prev, false
	m.mu.Unlock()
	return nil
}

func (m *fakeManager) Undo(context.Context, string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.prelim, _ = config.Clone(m.running)
	m.gen++
	return nil
}

func (m *fakeManager) History(context.Context) ([]lifecycle.Version, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]lifecycle.Version(nil), m.versions...), nil
}

func (m *fakeManager) Version(_ context.Context, n int) (*config.Config, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if n < 1 || n > len(m.saved) {
		return nil, store.ErrNotFound
	}
	return config.Clone(m.saved[n-1])
}

func (m *fakeManager) LoadVersion(ctx context.Context, n int, _ string) error {
	return m.replacePrelim(m.Version(ctx, n))
}

// replacePrelim makes c the preliminary configuration, unless making c failed.
func (m *fakeManager) replacePrelim(c *config.Config, err error) error {
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.prelim = c
	m.gen++
	return nil
}

func (m *fakeManager) Backup(context.Context, lifecycle.BackupOptions) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return config.Encode(m.prelim)
}

func (m *fakeManager) Restore(_ context.Context, data []byte, _, _ string) error {
	return m.replacePrelim(config.Decode(data))
}

// recordingApplier records the configurations it was asked to run.
type recordingApplier struct {
	mu      sync.Mutex
	applied []*config.Config
}

func (a *recordingApplier) Apply(_ context.Context, cfg *config.Config) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.applied = append(a.applied, cfg)
	return nil
}

func (a *recordingApplier) last() *config.Config {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.applied[len(a.applied)-1]
}
