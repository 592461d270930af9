package cluster

import "context"

// checkRevision compares etcd's revision at a membership write with the
// last one. A revision that went back (etcd restored from a backup, or a
// new etcd cluster under the old addresses) shows in no watch: the
// watches wait for revisions etcd has not reached yet. So the unit reads
// the cluster's state again, which finds the store behind it and keeps
// what the unit runs (lifecycle, stale.go). While the store is behind,
// every membership write reads again, so that the unit follows once etcd
// is past what it followed. Called from the session's goroutine only.
func (n *Node) checkRevision(ctx context.Context, rev int64) {
	back := rev < n.lastRev
	n.lastRev = rev
	if !back && !n.Mgr.Behind() {
		return
	}
	if back {
		n.Log.Warn("etcd's revision went back; reading the cluster's state again", "revision", rev)
	}
	if err := n.Mgr.Resync(ctx); err != nil {
		n.Log.Warn("reading the cluster's state again failed", "err", err)
	}
}
