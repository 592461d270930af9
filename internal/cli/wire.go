package cli

import (
	"log/slog"

	"github.com/palisade-sbc/palisade/internal/admin"
	"github.com/palisade-sbc/palisade/internal/guard"
	"github.com/palisade-sbc/palisade/internal/lifecycle"
	"github.com/palisade-sbc/palisade/internal/media"
	"github.com/palisade-sbc/palisade/internal/observe"
	"github.com/palisade-sbc/palisade/internal/observe/callmedia"
	"github.com/palisade-sbc/palisade/internal/pki"
	"github.com/palisade-sbc/palisade/internal/registrar"
	"github.com/palisade-sbc/palisade/internal/sip/accounts"
	"github.com/palisade-sbc/palisade/internal/sip/b2bua"
	"github.com/palisade-sbc/palisade/internal/store"
	"github.com/palisade-sbc/palisade/internal/syslog"
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
	// Level is the unit logger's level, to follow observe.log_level; nil
	// when --log-level fixed it.
	Level *slog.LevelVar
}

// wireSubsystems is THE place where the unit's subsystems are put together.
// They are applied in this order on every configuration change (and drained
// and closed in reverse), so a subsystem comes after those it uses.
//
// To add yours: one line in the list below. A constructor that can fail
// should be called before this (extend Deps with its result); nil entries
// are skipped. Subsystems that serve the API are found by the admin handlers
// with Env.Unit.Subsystem(name).
func wireSubsystems(d Deps) []unit.Subsystem {
	// certs is the pki.Provider the SIP listeners and outgoing TLS use.
	certs := pki.New(d.Store, d.Log)
	d.Admin.Certs = certs // admin.certificate names one of its certificates
	obs := observe.New(d.Store, d.Log, d.Level)
	sl := syslog.New(certs, d.Log) // remote syslog: call records here, logs through syslog.Tee in run.go
	obs.Recorder.Notify(sl.CallRecord)
	reg := registrar.New(d.Store, d.Log) // local registrar: its bindings are a routing step
	obs.Sources.Register(reg.StatusSource())
	// The media relay anchors RTP/SRTP; without it (no epoll) SDP passes unchanged.
	var engine media.Engine = media.Passthrough{}
	var relay unit.Subsystem
	if r, err := media.New(nil, d.Log); err != nil {
		d.Log.Error("media relay unavailable; SDP is relayed unchanged", "err", err)
	} else {
		engine, relay = r, r
	}
	gd := guard.New(nil, d.Log)
	reg.OnAuthFailure = gd.AuthFailed // wrong passwords count towards blocking the source
	sipSvc := b2bua.New(b2bua.Deps{Logger: d.Log, Media: callmedia.Wrap(engine, obs), Tracer: obs.Traces, TLS: certs, Registrar: reg, Guard: gd, Calls: obs.Recorder})
	// The peers status dates each OPTIONS up/down change by sampling.
	obs.Peers.Follow(func() []observe.PeerStatus { return admin.PeerStatuses(sipSvc.PeerStates()) })
	subs := []unit.Subsystem{
		// One line per subsystem, in dependency order.
		// pki first: listeners of the others take their certificates from it
		// (u.Subsystem(pki.SubsystemName).(pki.Provider)).
		certs,
		obs,   // traces, call records, log level
		sl,    // remote syslog collectors
		relay, // media relay, before the SIP B2BUA that anchors calls through it
		reg,   // local registrar, before the B2BUA that routes to its bindings
		gd,    // SIP access control and overload guard, consulted by the B2BUA
		sipSvc,
	}
	// SIP accounts (registration at trunks) run once the SIP layer can send
	// requests for them (implements accounts.Sender).
	if snd, ok := any(sipSvc).(accounts.Sender); ok {
		acc := accounts.New(snd, d.Log)
		obs.Sources.Register(reg.StatusSource(acc.Registrations))
		subs = append(subs, acc)
	}
	// The admin listener goes last: it moves to a new admin.listen only once
	// everything else has taken the configuration.
	return append(subs, d.Admin)
}
