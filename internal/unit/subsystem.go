// Package unit is the running SBC: it owns the subsystems (SIP, media, PKI,
// admin, observe) and switches them from one configuration to the next.
package unit

import (
	"context"

	"github.com/palisade-sbc/palisade/internal/config"
)

// Subsystem is one part of the running unit that follows the configuration.
//
// Apply must build the new state beside the old one and swap only when all of
// it is ready: on error the previous state keeps running untouched. Sockets
// used by both the old and the new configuration are handed over, never closed
// and reopened, so calls and registrations survive an apply or a rollback.
type Subsystem interface {
	Name() string
	Apply(ctx context.Context, cfg *config.Config) error
	// Drain stops taking new work and waits (until ctx ends) for work in progress.
	Drain(ctx context.Context) error
	// Close releases everything at once.
	Close() error
}
