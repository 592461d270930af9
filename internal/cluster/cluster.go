// Package cluster runs a unit as a member of a cluster of units sharing
// their state on etcd: it keeps the unit's membership key alive (an etcd
// session lease, so a unit that dies leaves the list within the lease's
// TTL), takes part in the election of the unit that enforces confirmation
// deadlines, keeps the unit on the cluster's configuration
// (lifecycle.Mgr.Follow) and reports the cluster's status.
package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/palisade-sbc/palisade/internal/lifecycle"
	"github.com/palisade-sbc/palisade/internal/store"
	"github.com/palisade-sbc/palisade/internal/unit"
)

var (
	metricUnits = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "palisade", Subsystem: "cluster", Name: "units",
		Help: "Live units of the cluster, as this unit last saw them in etcd.",
	})
	metricTimer = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "palisade", Subsystem: "cluster", Name: "timer_leader",
		Help: "1 while this unit is the one elected to enforce confirmation deadlines.",
	})
	metricStoreUp = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "palisade", Subsystem: "cluster", Name: "store_up",
		Help: "1 when this unit's last membership renewal reached etcd, 0 when it did not.",
	})
)

// SessionTTL is the lease of a unit's membership and leadership: a unit
// that stops answering leaves the cluster after this long.
const SessionTTL = 5 * time.Second

// Member is what a unit publishes about itself under
// lifecycle.MembersPrefix<name>.
type Member struct {
	Unit    string    `json:"unit"`
	Version string    `json:"version"`
	Commit  string    `json:"commit,omitempty"`
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
	Updated time.Time `json:"updated"`
	// Load is what the unit carries now (Loader).
	Load Load `json:"load"`
	// Admin is the unit's admin API address (host:port), where the other
	// units ask for its call records (peers.go).
	Admin string `json:"admin,omitempty"`
}

// Load is a unit's work at the moment it published.
type Load struct {
	Calls         int `json:"calls"`
	Registrations int `json:"registrations"`
}

// Node is this unit in the cluster.
type Node struct {
	Etcd *store.Etcd
	Unit string
	Mgr  *lifecycle.Mgr
	Log  *slog.Logger
	// Loader, when set, gives the load published every PublishEvery.
	Loader func() Load
	// AdminAddr, when set, gives the admin API's address to publish.
	AdminAddr    func() string
	PublishEvery time.Duration

	started time.Time
	lastRev int64 // etcd's revision at this unit's last membership write (revision.go)
}

func (n *Node) electionPrefix() string { return n.Etcd.Namespace() + "election/confirm-timer" }

// Run takes part in the cluster until ctx ends. Losing etcd ends the
// session; Run then starts a new one when etcd answers again, while the
// unit goes on serving on what it runs.
func (n *Node) Run(ctx context.Context) {
	n.started = time.Now().UTC()
	if n.PublishEvery <= 0 {
		n.PublishEvery = 5 * time.Second
	}
	followed := make(chan struct{})
	go func() { defer close(followed); n.Mgr.Follow(ctx) }()
	// The unit is not switched any more once Run has returned.
	defer func() { <-followed }()
	for ctx.Err() == nil {
		if err := n.session(ctx); err != nil && ctx.Err() == nil {
			n.Log.Error("cluster session ended; starting a new one", "err", err)
			select {
			case <-time.After(2 * time.Second):
			case <-ctx.Done():
			}
		}
	}
}

// session is one etcd session: membership key, election, until the lease
// is lost or ctx ends.
func (n *Node) session(ctx context.Context) error {
	cli := n.Etcd.Client()
	s, err := concurrency.NewSession(cli, concurrency.WithTTL(int(SessionTTL/time.Second)), concurrency.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("cluster: new session: %w", err)
	}
	defer s.Close()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.Done():
			cancel()
		case <-sctx.Done():
		}
	}()
	if err := n.publish(sctx, s.Lease()); err != nil {
		metricStoreUp.Set(0)
		return err
	}
	metricStoreUp.Set(1)
	go n.campaign(sctx, s)
	t := time.NewTicker(n.PublishEvery)
	defer t.Stop()
	for {
		select {
		case <-sctx.Done():
			if ctx.Err() != nil {
				return nil
			}
			metricStoreUp.Set(0)
			return errors.New("cluster: the session's lease was lost (etcd unreachable for longer than its TTL)")
		case <-t.C:
			if err := n.publish(sctx, s.Lease()); err != nil {
				metricStoreUp.Set(0)
				n.Log.Warn("publishing this unit's membership failed", "err", err)
				continue
			}
			metricStoreUp.Set(1)
			if kvs, err := n.Etcd.List(sctx, lifecycle.MembersPrefix); err == nil {
				metricUnits.Set(float64(len(kvs)))
			}
		}
	}
}

func (n *Node) publish(ctx context.Context, lease clientv3.LeaseID) error {
	ver, commit := unit.Version()
	m := Member{Unit: n.Unit, Version: ver, Commit: commit, PID: os.Getpid(), Started: n.started, Updated: time.Now().UTC()}
	if n.Loader != nil {
		m.Load = n.Loader()
	}
	if n.AdminAddr != nil {
		m.Admin = n.AdminAddr()
	}
	b, _ := json.Marshal(m)
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := n.Etcd.Client().Put(cctx, n.Etcd.Key(lifecycle.MembersPrefix+n.Unit), string(b), clientv3.WithLease(lease))
	if err != nil {
		return fmt.Errorf("cluster: publish membership: %w", err)
	}
	n.checkRevision(ctx, resp.Header.Revision)
	return nil
}

// campaign waits to be elected for the confirmation timer, then enforces
// deadlines while the session lasts.
func (n *Node) campaign(ctx context.Context, s *concurrency.Session) {
	el := concurrency.NewElection(s, n.electionPrefix())
	if err := el.Campaign(ctx, n.Unit); err != nil {
		if ctx.Err() == nil {
			n.Log.Warn("election for the confirmation timer failed", "err", err)
		}
		return
	}
	n.Log.Info("this unit enforces the cluster's confirmation deadlines (elected)")
	metricTimer.Set(1)
	n.Mgr.EnforceDeadline(ctx)
	metricTimer.Set(0)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	_ = el.Resign(rctx)
}

// Leader is the unit elected for the confirmation timer ("" when none).
func Leader(ctx context.Context, e *store.Etcd) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := e.Client().Get(cctx, e.Namespace()+"election/confirm-timer/", clientv3.WithFirstCreate()...)
	if err != nil {
		return "", fmt.Errorf("cluster: read the elected unit: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return "", nil
	}
	return string(resp.Kvs[0].Value), nil
}
