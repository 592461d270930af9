// Package lifecycle implements the staged configuration of SPEC §2.2:
// preliminary → apply (confirmation window) → confirm = saved version, or
// revert / window ran out → previous configuration runs again; undo; history;
// diff; backup and restore.
//
// Use (cmd/palisade run):
//
//	st, _ := store.Open(dir)
//	cfg, _, err := lifecycle.StartupConfig(ctx, st) // newest saved version
//	if errors.Is(err, store.ErrNotFound) {          // empty data directory
//		err = lifecycle.Bootstrap(ctx, st, config.Default(), "setup")
//	}
//	mgr, err := lifecycle.New(st, unit, log) // *Mgr implements Manager
//	unit.Apply(ctx, cfg)                     // the unit starts on the saved version
//
// Besides Manager, *Mgr offers Resolve and Diff ("preliminary", "running",
// "saved" or a version number), AuditLog, Bootstrap, StartupConfig, Close.
// Version and LoadVersion errors for unknown versions wrap store.ErrNotFound.
// History is oldest first. ETags are plain hex strings (the HTTP layer
// quotes them; SetPreliminary accepts them quoted or not).
package lifecycle

import (
	"context"
	"errors"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
)

// Errors callers map to API status codes.
var (
	ErrPreconditionFailed = errors.New("the preliminary configuration was changed by someone else") // 412
	ErrNoPendingApply     = errors.New("no applied configuration is waiting for confirmation")      // 409
	ErrNothingToApply     = errors.New("the preliminary configuration equals the running one")      // 409
	ErrApplyPending       = errors.New("an applied configuration is waiting for confirmation")      // 409
	ErrBadPassphrase      = errors.New("the backup passphrase is wrong")                            // 400
	// ErrBackupPassphrase: a backup would hold private keys in clear, or
	// its passphrase is too short (the error's text says which). 400.
	ErrBackupPassphrase = errors.New("the backup needs a passphrase")
)

// Applier switches the running unit to a configuration (unit.Unit does).
type Applier interface {
	Apply(ctx context.Context, cfg *config.Config) error
}

// State is what every admin surface shows about the staged configuration.
type State struct {
	PreliminaryChanged bool      `json:"preliminary_changed"` // preliminary differs from running
	PreliminaryETag    string    `json:"preliminary_etag"`
	RunningVersion     int       `json:"running_version"` // saved version running, 0 when an unconfirmed apply runs
	PendingConfirm     bool      `json:"pending_confirm"`
	ConfirmDeadline    time.Time `json:"confirm_deadline,omitzero"`
	LastApplyError     string    `json:"last_apply_error,omitempty"`
	LastRevertReason   string    `json:"last_revert_reason,omitempty"`
}

// Version is one saved configuration.
type Version struct {
	Number  int       `json:"number"`
	Time    time.Time `json:"time"`
	Author  string    `json:"author"`
	Comment string    `json:"comment,omitempty"`
}

// Manager is the staged configuration of one unit.
type Manager interface {
	State(ctx context.Context) (State, error)
	Preliminary(ctx context.Context) (cfg *config.Config, etag string, err error)
	Running(ctx context.Context) (*config.Config, error)
	Saved(ctx context.Context) (*config.Config, error)
	// SetPreliminary validates cfg (returning config.Errors listing every
	// problem) and stores it as preliminary. ifMatch "" skips the ETag check.
	SetPreliminary(ctx context.Context, cfg *config.Config, ifMatch, author string) (etag string, err error)
	// Apply runs the preliminary configuration and opens a confirmation
	// window; window 0 means the default (60 s).
	Apply(ctx context.Context, window time.Duration, author string) (State, error)
	Confirm(ctx context.Context, author string) (Version, error)
	Revert(ctx context.Context, author string) error
	Undo(ctx context.Context, author string) error
	History(ctx context.Context) ([]Version, error)
	Version(ctx context.Context, n int) (*config.Config, error)
	// LoadVersion copies saved version n into preliminary.
	LoadVersion(ctx context.Context, n int, author string) error
	// Backup returns one file with the configuration, certificates and keys;
	// private keys are encrypted under a passphrase or left out (see
	// BackupOptions); ErrBackupPassphrase when neither is chosen.
	Backup(ctx context.Context, opts BackupOptions) ([]byte, error)
	// Restore loads a backup into preliminary (and its key material into the store).
	Restore(ctx context.Context, data []byte, passphrase, author string) error
}
