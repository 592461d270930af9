package admin

import (
	"context"
	"net/http"
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
		rt.API("POST /api/v1/ha/rejoin", haRejoin)
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

// HARejoinResult is the answer of POST /api/v1/ha/rejoin.
type HARejoinResult struct {
	WasHeld bool `json:"was_held"` // the unit was out of the election after a move
}

func haRejoin(env *Env, w http.ResponseWriter, r *http.Request) error {
	if !env.Running() {
		return ErrUnitStopped
	}
	if env.Live.HARejoin == nil {
		return Errorf(http.StatusConflict, "this unit has no floating addresses (ha.floating)")
	}
	held, err := env.Live.HARejoin()
	if err != nil {
		return Errorf(http.StatusConflict, "%v", err)
	}
	return JSON(w, http.StatusOK, HARejoinResult{WasHeld: held})
}
