package admin

import (
	"context"
	"log/slog"

	"github.com/palisade-sbc/palisade/internal/observe"
	"github.com/palisade-sbc/palisade/internal/pki"
	"github.com/palisade-sbc/palisade/internal/sip/b2bua"
)

// Live is what the running unit's subsystems give the API and the web
// admin. The composition root (internal/cli/wire.go) builds it from the
// subsystems it creates, before the handler; a nil field means the unit has
// no such subsystem, and the handlers answer as for a stopped unit's data.
type Live struct {
	// Observe holds the call traces, the calls in progress, the status
	// sources of the other subsystems and the dating of peer changes.
	Observe *observe.Service
	// PKI is the running certificates' material.
	PKI RunningPKI
	// Peers gives the SIP layer's OPTIONS keepalive state of each peer.
	Peers PeerStater
	// RecentLog is the newest records of the unit's log (the web admin's
	// Log page).
	RecentLog LogReader
	// SIP sends one request to a peer for the tools (OPTIONS ping).
	SIP SIPRequester
	// Cluster gives the state of the cluster on etcd (internal/cluster);
	// nil for a single unit.
	Cluster func(context.Context) any
	// Units are the other units of the cluster, asked for cluster-wide
	// listings (call records); nil for a single unit.
	Units UnitPeers
	// HAMove moves the floating addresses to another unit; nil without
	// them.
	HAMove HAMover
	// HAVRRP follows a keepalived state change (docs/ha.md); nil without
	// the takeover.
	HAVRRP HAVRRP
}

// RunningPKI is the PKI subsystem as the API uses it: the expiries of the
// certificates in use and TLS diagnosis with the material in use.
type RunningPKI interface {
	Expiries() []pki.Expiry
	DiagnoseTLS(ctx context.Context, address, sni string) (*pki.TLSReport, error)
}

// PeerStater gives each peer's OPTIONS keepalive state (the SIP B2BUA).
type PeerStater interface {
	PeerStates() []b2bua.PeerState
}

// LogReader gives the newest records of the unit's log at or above a level,
// or those a filter selects, newest first (observe.LogRing).
type LogReader interface {
	Newest(n int, min slog.Level) []observe.LogRecord
	Find(n int, f observe.LogFilter) []observe.LogRecord
}

// observeService is the running unit's observe subsystem, or nil.
func observeService(env *Env) *observe.Service {
	if env.Live == nil {
		return nil
	}
	return env.Live.Observe
}

// runningPKI is the running unit's PKI, or nil.
func runningPKI(env *Env) RunningPKI {
	if env.Live == nil {
		return nil
	}
	return env.Live.PKI
}
