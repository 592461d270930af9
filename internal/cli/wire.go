package cli

import (
	"log/slog"

	"github.com/palisade-sbc/palisade/internal/admin"
	"github.com/palisade-sbc/palisade/internal/lifecycle"
	"github.com/palisade-sbc/palisade/internal/pki"
	"github.com/palisade-sbc/palisade/internal/store"
	"github.com/palisade-sbc/palisade/internal/unit"
)

// Deps is what a subsystem may need when the unit is assembled.
type Deps struct {
	DataDir string
	Store   store.Store
	Config  lifecycle.Manager
	Unit    *unit.Unit
	Log     *slog.Logger
	Admin   *admin.Server // the admin listener (for e.g. a certificate from PKI)
}

// wireSubsystems is THE place where the unit's subsystems are put together.
// They are applied in this order on every configuration change (and drained
// and closed in reverse), so a subsystem comes after those it uses.
//
// To add yours: one line below, e.g.
//
//	sip.NewSubsystem(d.Store, d.Log.With("subsystem", "sip")),
//
// A constructor that can fail should log and return nil to be skipped, or be
// created before this call by extending Deps.
func wireSubsystems(d Deps) []unit.Subsystem {
	return []unit.Subsystem{
		// pki first: listeners of the others take their certificates from it
		// (u.Subsystem(pki.SubsystemName).(pki.Provider)).
		pki.New(d.Store, d.Log),
		d.Admin, // the HTTPS admin/API listener and admin.sock
	}
}
