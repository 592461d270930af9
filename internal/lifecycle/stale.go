package lifecycle

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// A unit of a cluster remembers the newest etcd revision it followed. An
// answer at an older revision (etcd restored from a backup, a new etcd
// cluster under the old addresses, a member serving old data) must not
// roll what the unit runs back without anyone noticing: the unit keeps its
// configuration, refuses configuration changes and raises the
// store_behind alarm, until etcd's revision is past the one it followed
// again (a restore with `etcdutl snapshot restore --bump-revision`) or the
// unit is restarted, which takes etcd's state as it is (docs/cluster.md).

// ErrStoreBehind is returned for configuration changes while the cluster
// store answers with an older revision than this unit already followed.
var ErrStoreBehind = errors.New("the cluster store (etcd) answers with an older revision than this unit already followed " +
	"(etcd restored from a backup, or a member serving old data)")

var metricStoreBehind = promauto.NewGauge(prometheus.GaugeOpts{
	Namespace: "palisade", Subsystem: "lifecycle", Name: "store_behind",
	Help: "1 while the cluster store (etcd) answers with an older revision than this unit followed: it keeps its configuration and refuses changes.",
})

// staleLocked tells whether a read at store revision rev (0 = the store
// has none) is older than what this unit followed; if so it logs (once
// per episode) and raises the gauge. A newer rev becomes the one followed.
// m.mu is held.
func (m *Mgr) staleLocked(rev int64) bool {
	if rev <= 0 {
		return false
	}
	if rev < m.seenRev {
		if m.behind == nil {
			m.log.Error("the cluster store answers with an older revision than this unit followed; "+
				"the unit keeps its configuration and refuses changes (restart it to take etcd's state as it is)",
				"revision", rev, "followed", m.seenRev)
		}
		m.behind = fmt.Errorf("%w: revision %d, this unit followed %d; the unit keeps its configuration and refuses changes "+
			"until etcd is past revision %d again or the unit is restarted", ErrStoreBehind, rev, m.seenRev, m.seenRev)
		metricStoreBehind.Set(1)
		return true
	}
	if m.behind != nil {
		m.log.Info("the cluster store is past the revision this unit followed again", "revision", rev)
		m.behind = nil
		metricStoreBehind.Set(0)
	}
	m.seenRev = rev
	return false
}

// Resync reads the cluster's state again and switches to it, or finds the
// store behind this unit (the cluster package calls it when etcd's
// revision went back, which no watch event shows).
func (m *Mgr) Resync(ctx context.Context) error { return m.sync(ctx) }

// Behind reports whether the store answers older than this unit followed.
func (m *Mgr) Behind() bool { return m.behindErr() != nil }

// behindErr is the error configuration changes are refused with while the
// store is behind this unit (nil otherwise).
func (m *Mgr) behindErr() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.behind
}
