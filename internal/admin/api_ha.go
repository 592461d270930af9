package admin

import (
	"context"
	"net/http"
	"slices"
	"time"
)

// The "ha" status section: the takeover of calls between the units of a
// cluster (internal/ha/takeover registers its source with observe); null
// on a unit without floating addresses.
func init() {
	RegisterStatus("ha", func(env *Env, r *http.Request) (any, error) {
		if s := observeService(env); s != nil {
			if src, ok := s.Sources.Get("ha"); ok {
				return src.Status(r.Context())
			}
		}
		return nil, nil
	})
	RegisterRoutes(func(rt *Routes) {
		rt.API("POST /api/v1/ha/move", haMove)
		rt.API("POST /api/v1/ha/vrrp", haVRRP)
	})
}

// HAMover moves the floating addresses away from this unit
// (takeover.Takeover.Move behind an adapter: docs/ha.md, planned move).
type HAMover func(ctx context.Context, wait, hold time.Duration) (any, error)

// HAMoveRequest bounds a planned move: how long the unit waits for its
// calls to end before it hands the rest over, and how long it then stays
// out of the election ("30s"; empty: the defaults).
type HAMoveRequest struct {
	Wait string `json:"wait,omitempty"`
	Hold string `json:"hold,omitempty"`
}

// Defaults of a planned move.
const (
	DefaultMoveWait = 30 * time.Second
	DefaultMoveHold = 5 * time.Minute
)

func haMove(env *Env, w http.ResponseWriter, r *http.Request) error {
	if !env.Running() {
		return ErrUnitStopped
	}
	if env.Live.HAMove == nil {
		return Errorf(http.StatusConflict, "this unit has no floating addresses (ha.floating)")
	}
	var req HAMoveRequest
	if err := DecodeJSON(r, &req); err != nil {
		return err
	}
	wait, hold := DefaultMoveWait, DefaultMoveHold
	for _, f := range []struct {
		s    string
		d    *time.Duration
		name string
	}{{req.Wait, &wait, "wait"}, {req.Hold, &hold, "hold"}} {
		if f.s == "" {
			continue
		}
		d, err := time.ParseDuration(f.s)
		if err != nil || d < 0 || d > time.Hour {
			return Errorf(http.StatusBadRequest, "%s %q: a duration from 0s to 1h", f.name, f.s)
		}
		*f.d = d
	}
	res, err := env.Live.HAMove(r.Context(), wait, hold)
	if err != nil {
		return Errorf(http.StatusConflict, "%v", err)
	}
	return JSON(w, http.StatusOK, res)
}

// HAVRRP follows a keepalived (VRRP) state change of this box
// (takeover.Takeover.VRRP behind an adapter).
type HAVRRP func(ctx context.Context, state string, wait time.Duration) (any, error)

// VRRPStates are the states keepalived tells its notify script of.
var VRRPStates = []string{"MASTER", "BACKUP", "FAULT", "STOP"}

// HAVRRPRequest is keepalived's new state of this box and how long an
// owner that hands the addresses over waits for its calls to end first.
type HAVRRPRequest struct {
	State string `json:"state"`
	Wait  string `json:"wait,omitempty"`
}

func haVRRP(env *Env, w http.ResponseWriter, r *http.Request) error {
	if !env.Running() {
		return ErrUnitStopped
	}
	if env.Live.HAVRRP == nil {
		return Errorf(http.StatusConflict, "this unit has no floating addresses (ha.floating)")
	}
	var req HAVRRPRequest
	if err := DecodeJSON(r, &req); err != nil {
		return err
	}
	if !slices.Contains(VRRPStates, req.State) {
		return Errorf(http.StatusBadRequest, "state %q: one of %v", req.State, VRRPStates)
	}
	var wait time.Duration
	if req.Wait != "" {
		d, err := time.ParseDuration(req.Wait)
		if err != nil || d < 0 || d > time.Hour {
			return Errorf(http.StatusBadRequest, "wait %q: a duration from 0s to 1h", req.Wait)
		}
		wait = d
	}
	res, err := env.Live.HAVRRP(r.Context(), req.State, wait)
	if err != nil {
		return Errorf(http.StatusConflict, "%v", err)
	}
	return JSON(w, http.StatusOK, res)
}
