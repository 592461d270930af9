package cli

import (
	"context"
	"crypto/tls"
	"log/slog"
	"slices"
	"time"

	"github.com/palisade-sbc/palisade/internal/admin"
	"github.com/palisade-sbc/palisade/internal/cluster"
	"github.com/palisade-sbc/palisade/internal/guard"
	"github.com/palisade-sbc/palisade/internal/ha/takeover"
	"github.com/palisade-sbc/palisade/internal/lifecycle"
	"github.com/palisade-sbc/palisade/internal/media"
	"github.com/palisade-sbc/palisade/internal/observe"
	"github.com/palisade-sbc/palisade/internal/observe/alarms"
	"github.com/palisade-sbc/palisade/internal/observe/callmedia"
	"github.com/palisade-sbc/palisade/internal/observe/hep"
	"github.com/palisade-sbc/palisade/internal/pki"
	"github.com/palisade-sbc/palisade/internal/pki/acme"
	"github.com/palisade-sbc/palisade/internal/registrar"
	"github.com/palisade-sbc/palisade/internal/sip/accounts"
	"github.com/palisade-sbc/palisade/internal/sip/b2bua"
	"github.com/palisade-sbc/palisade/internal/store"
	"github.com/palisade-sbc/palisade/internal/syslog"
	"github.com/palisade-sbc/palisade/internal/unit"
	"github.com/palisade-sbc/palisade/internal/web"
)

// Deps is what the unit is assembled from.
type Deps struct {
	DataDir string
	Store   store.Store
	Config  lifecycle.Manager
	Log     *slog.Logger
	// Level is the unit logger's level, to follow observe.log_level; nil
	// when --log-level fixed it.
	Level *slog.LevelVar
	// RecentLog keeps the newest records of Log for the web admin.
	RecentLog *observe.LogRing
	// AdminCert is the generated HTTPS certificate of the admin listener
	// (used while admin.certificate is ""); AdminListen replaces
	// admin.listen when set (--admin-listen).
	AdminCert   tls.Certificate
	AdminListen string
	// ClusterUnit names this unit in a cluster on etcd ("" for a single
	// unit): the registrar then shares its bindings with the other units.
	// ClusterStatus gives the cluster's state for the API and status.
	ClusterUnit   string
	ClusterStatus func(context.Context) any
	// ClusterUnits are the other units, asked for cluster-wide listings.
	ClusterUnits admin.UnitPeers
	// Etcd is the cluster's store (nil for a single unit): with ha.floating
	// the calls survive the loss of a unit (internal/ha/takeover).
	Etcd *store.Etcd
}

// wired is the assembled unit: its subsystems in apply order (the admin
// listener last) and the admin listener, which the caller also opens the
// local socket of.
type wired struct {
	subs  []unit.Subsystem
	admin *admin.Server
	sip   *b2bua.Service
	reg   *registrar.Registrar
	ha    *takeover.Takeover // nil for a single unit
}

// load is what this unit publishes as its load in a cluster.
func (w *wired) load() cluster.Load {
	if w.sip == nil {
		return cluster.Load{}
	}
	return cluster.Load{Calls: w.sip.CallCount(), Registrations: len(w.reg.Registrations())}
}

// wireSubsystems is THE place where the unit's subsystems are put together
// (the composition root). Every subsystem gets what it uses from here, in
// its constructor, typed as a small interface of the using package
// (registrar.AuthFailures, admin.PeerStater, admin.CertificateSource, ...):
// nothing looks another subsystem up by name and no field is set after
// construction. The subsystems are applied in the returned order on every
// configuration change (and drained and closed in reverse), so a subsystem
// comes after those it uses.
//
// To add one: construct it below after what it uses, pass it to the
// constructors of its users, and add it to the list.
func wireSubsystems(d Deps) wired {
	// certs is the pki.Provider the SIP listeners and outgoing TLS use.
	certs := pki.New(d.Store, d.Log)
	acmeMgr := acme.New(d.Store, certs, d.Log) // keeps acme.certificates issued; reloads certs
	obs := observe.New(d.Store, d.Log, d.Level)
	obs.ExplainAlarms(alarms.ACMEFailing, acmeMgr.LastError) // the alarm says what the CA answered
	hepx := hep.New(d.Log)                                   // HEP export gets every traced message
	obs.Traces.SetTap(hepx)
	sl := syslog.New(certs, d.Log) // remote syslog: call records here, logs through syslog.Tee in run.go
	obs.Recorder.Notify(sl.CallRecord)
	gd := guard.New(nil, d.Log)
	// The local registrar: its bindings are a routing step; wrong passwords
	// count towards the guard blocking the source.
	reg := registrar.New(d.Store, d.Log, gd)
	if d.ClusterUnit != "" {
		reg.SetCluster(d.ClusterUnit)
	}
	// In a cluster the confirmed calls' records go to etcd (only with
	// ha.floating or ha.mode rehome) for the unit that carries them on; the
	// media relay tells the keeper when a call's SRTP counters moved.
	var keeper *takeover.Keeper
	var mediaOpts []media.Option
	if d.Etcd != nil {
		keeper = takeover.NewKeeper(d.Etcd, d.Log.With("subsystem", "ha"))
		mediaOpts = append(mediaOpts, media.WithCounterHook(keeper.Touch))
	}
	// The media relay anchors RTP/SRTP; without it (no epoll) SDP passes unchanged.
	var engine media.Engine = media.Passthrough{}
	var relay unit.Subsystem
	var restoreGaps func() media.GapStats // status of the takeover
	if r, err := media.New(nil, d.Log, mediaOpts...); err != nil {
		d.Log.Error("media relay unavailable; SDP is relayed unchanged", "err", err)
	} else {
		engine, relay, restoreGaps = r, r, r.RestoreGaps
	}
	sipDeps := b2bua.Deps{Logger: d.Log, Media: callmedia.Wrap(engine, obs), Tracer: obs.Traces, TLS: certs, Handshakes: certs, Registrar: reg, Guard: gd, Calls: obs.Recorder}
	var ha *takeover.Takeover
	var haSub unit.Subsystem // nil: skipped
	if keeper != nil {
		sipDeps.Keeper, sipDeps.Unit = keeper, d.ClusterUnit
	}
	sipSvc := b2bua.New(sipDeps)
	if keeper != nil {
		// The floating addresses: elected, their calls taken over (docs/ha.md).
		ha = takeover.New(takeover.Deps{Store: d.Etcd, Unit: d.ClusterUnit, SIP: sipSvc, Keeper: keeper, Gaps: restoreGaps, Log: d.Log})
		haSub = ha
		obs.Sources.Register(observe.StatusSource{Kind: "ha", Status: func(context.Context) (any, error) { return ha.Status(), nil }})
	}
	// SIP accounts (registration at trunks) send their requests through the
	// SIP layer.
	acc := accounts.New(sipSvc, d.Log)

	// The status the API serves: the local bindings and the trunk
	// registrations; the peers' OPTIONS states, sampled every second to
	// date each up/down change.
	obs.Sources.Register(reg.StatusSource(acc.Registrations))
	obs.Peers.Follow(func() []observe.PeerStatus { return admin.PeerStatuses(sipSvc.PeerStates()) })

	// The admin listener and the web admin see the running subsystems
	// through admin.Live.
	env := &admin.Env{Store: d.Store, Config: d.Config, Log: d.Log.With("subsystem", "admin"), DataDir: d.DataDir,
		Live: &admin.Live{Observe: obs, PKI: certs, Peers: sipSvc, RecentLog: d.RecentLog, SIP: sipSvc, Cluster: d.ClusterStatus,
			Units: d.ClusterUnits}}
	if ha != nil {
		env.Live.HAMove = func(ctx context.Context, wait, hold time.Duration) (any, error) { return ha.Move(ctx, wait, hold) }
		env.Live.HAVRRP = func(ctx context.Context, state string, wait time.Duration) (any, error) {
			return ha.VRRP(ctx, state, wait)
		}
	}
	srv := admin.NewServer(admin.NewHandler(env, web.Mount, acme.Mount(acmeMgr)), admin.ServerOptions{
		DataDir: d.DataDir, Generated: d.AdminCert, Listen: d.AdminListen, Log: env.Log,
		Certs: certs, // admin.certificate names one of its certificates
	})
	return wired{admin: srv, sip: sipSvc, reg: reg, ha: ha, subs: slices.DeleteFunc([]unit.Subsystem{
		// One line per subsystem, in dependency order.
		// ACME first: it gives the entries it manages a stand-in
		// certificate until the CA has issued theirs.
		acmeMgr,
		certs, // the listeners of the others take their certificates from it
		obs,   // traces, call records, log level
		hepx,  // HEP export of the traces
		sl,    // remote syslog collectors
		relay, // media relay, before the SIP B2BUA that anchors calls through it (nil: skipped)
		reg,   // local registrar, before the B2BUA that routes to its bindings
		gd,    // SIP access control and overload guard, consulted by the B2BUA
		haSub, // floating addresses: before the B2BUA, which keeps their listeners closed until this unit owns them
		sipSvc,
		acc, // registrations at trunks, once the SIP layer can send them
		// The admin listener goes last: it moves to a new admin.listen only
		// once everything else has taken the configuration.
		srv,
	}, func(s unit.Subsystem) bool { return s == nil })} // nil: not part of this unit
}
