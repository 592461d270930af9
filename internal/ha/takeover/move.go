package takeover

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// MoveResult is what a planned move did.
type MoveResult struct {
	CallsEnded      int           `json:"calls_ended"`       // ended while the unit drained
	CallsHandedOver int           `json:"calls_handed_over"` // left to the next owner through their records
	Took            time.Duration `json:"took"`
}

// ErrNotOwner: a planned move starts on the unit that owns the addresses.
var ErrNotOwner = errors.New("ha: this unit does not own the floating addresses")

// Move gives the floating addresses to another unit (docs/ha.md, planned
// move): new calls are refused (503) while the calls in progress end, for
// at most wait; the records of the calls left are written afresh (their
// media counters as of now) and the addresses released, so that the next
// owner adopts those calls as after a failure but without the lease's
// wait; this unit then stays out of the election for hold (it would take
// the addresses back at once as the preferred unit) and takes new calls
// again on its other addresses.
func (t *Takeover) Move(ctx context.Context, wait, hold time.Duration) (MoveResult, error) {
	t.mu.Lock()
	o := t.owner
	t.mu.Unlock()
	if o == nil || !t.owned.Load() {
		return MoveResult{}, ErrNotOwner
	}
	if !t.moving.TryLock() {
		return MoveResult{}, errors.New("ha: a move is in progress already")
	}
	defer t.moving.Unlock()
	start := time.Now()
	before := t.d.SIP.CallCount()
	t.log.Info("ha: planned move: draining", "calls", before, "wait", wait.String())
	dctx, cancel := context.WithTimeout(ctx, wait)
	err := t.d.SIP.Drain(dctx)
	cancel()
	defer t.d.SIP.Resume()
	left := t.d.SIP.CallCount()
	if err != nil && ctx.Err() != nil {
		return MoveResult{}, fmt.Errorf("ha: planned move: %w", ctx.Err())
	}
	// The records of the calls left, as of now, before the release.
	fctx, fcancel := context.WithTimeout(ctx, 5*time.Second)
	t.d.Keeper.rewriteAll(fctx)
	fcancel()
	if !o.Release(hold) {
		return MoveResult{}, ErrNotOwner // lost meanwhile (fenced)
	}
	for t.owned.Load() {
		select {
		case <-ctx.Done():
			return MoveResult{}, fmt.Errorf("ha: planned move: the addresses were not released: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	res := MoveResult{CallsEnded: max(before-left, 0), CallsHandedOver: left, Took: time.Since(start)}
	t.log.Info("ha: planned move: floating addresses released", "calls_ended", res.CallsEnded,
		"calls_handed_over", res.CallsHandedOver, "took", res.Took.String(), "out_of_the_election_for", hold.String())
	return res, nil
}
