package takeover

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// keepalived (VRRP) integration, docs/ha.md: the etcd election stays the
// authority over the floating addresses; keepalived's state is advice.

// ErrNoFloating: a unit without floating addresses has no election.
var ErrNoFloating = errors.New("ha: this unit has no floating addresses (ha.floating)")

// ErrVRRPState: a state keepalived does not send.
var ErrVRRPState = errors.New("ha: not a keepalived state (MASTER, BACKUP, FAULT or STOP)")

// VRRPResult is what the unit did on a keepalived state change.
type VRRPResult struct {
	State   string      `json:"state"`
	Standby bool        `json:"standby"`
	Owner   bool        `json:"owner"`              // after the change
	WasHeld bool        `json:"was_held,omitempty"` // MASTER: it was out of the election after a move
	Move    *MoveResult `json:"move,omitempty"`     // BACKUP, FAULT, STOP on the owner
}

// VRRP follows keepalived's state for this box: BACKUP, FAULT and STOP put
// the unit on standby (it ranks after every unit that is not, but still
// takes the addresses when no such unit is alive: failover never waits for
// keepalived) and, on the owner, hand the addresses and the calls over at
// once by a planned move without a hold (wait bounds its drain). MASTER
// takes the unit off standby and ends the hold of an earlier move: it gets
// the addresses when the election gives them (the owner keeps them while
// they carry calls). Nothing takes the addresses from another unit.
func (t *Takeover) VRRP(ctx context.Context, state string, wait time.Duration) (VRRPResult, error) {
	t.mu.Lock()
	o := t.owner
	t.mu.Unlock()
	if o == nil {
		return VRRPResult{}, ErrNoFloating
	}
	r := VRRPResult{State: state}
	switch state {
	case "MASTER":
		if _, err := o.SetStandby(ctx, false); err != nil {
			return r, err
		}
		r.WasHeld = o.Rejoin()
	case "BACKUP", "FAULT", "STOP":
		if _, err := o.SetStandby(ctx, true); err != nil {
			return r, err
		}
		if t.owned.Load() {
			m, err := t.Move(ctx, wait, 0)
			switch {
			case err == nil:
				r.Move = &m
			case !errors.Is(err, ErrNotOwner): // (lost meanwhile: nothing to hand over)
				return r, err
			}
		}
	default:
		return r, fmt.Errorf("%w: %q", ErrVRRPState, state)
	}
	r.Standby, r.Owner = o.Standby(), t.owned.Load()
	t.log.Info("ha: keepalived state followed", "state", state, "standby", r.Standby, "owner", r.Owner, "moved", r.Move != nil)
	return r, nil
}
