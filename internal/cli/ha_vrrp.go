package cli

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/palisade-sbc/palisade/internal/admin"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/ha/takeover"
)

// haVRRPNotify is keepalived's notify script (docs/ha.md, keepalived):
// keepalived runs it with TYPE NAME STATE [PRIORITY] on each change of a
// VRRP instance or group. The etcd election stays the authority over the
// floating addresses; keepalived's state is advice the unit follows where
// that fights nothing: BACKUP, FAULT or STOP on the owner is a planned
// move (the calls handed over), MASTER ends the hold of an earlier move so
// that the unit takes part in the election again. Nothing takes the
// addresses from another unit.
func haVRRPNotify(c *Context, args []string) error {
	fs := flag.NewFlagSet("ha vrrp-notify", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	wait := fs.Duration("wait", 0, "BACKUP/FAULT/STOP: how long new calls are refused while the calls end before the rest are handed over")
	hold := fs.Duration("hold", time.Hour, "BACKUP/FAULT/STOP: how long the unit stays out of the election unless keepalived makes it MASTER again")
	if err := fs.Parse(args); err != nil {
		return c.Usagef("%v", err)
	}
	a := fs.Args()
	if len(a) < 3 || len(a) > 4 || !slices.Contains([]string{"INSTANCE", "GROUP"}, a[0]) {
		return c.Usagef("ha vrrp-notify takes INSTANCE|GROUP NAME STATE [PRIORITY] (keepalived's notify arguments)")
	}
	name, state := a[1], a[2]
	var st *takeover.Status
	if err := c.Call("GET", "/api/v1/status/ha", nil, &st); err != nil {
		return err
	}
	if st == nil || st.Mode != config.HAModeMove {
		return errors.New("this unit has no floating addresses (ha.floating): nothing follows keepalived")
	}
	var out any
	var text string
	switch state {
	case "MASTER":
		var r admin.HARejoinResult
		if err := c.Call("POST", "/api/v1/ha/rejoin", struct{}{}, &r); err != nil {
			return err
		}
		out = map[string]any{"vrrp": name, "state": state, "action": "rejoin", "was_held": r.WasHeld, "owner": st.Owner}
		switch {
		case st.Owner:
			text = "this unit owns the floating addresses already"
		case r.WasHeld:
			text = "this unit is back in the election (it was out after a move); it owns the addresses when the election gives them (the owner keeps them while they carry calls)"
		default:
			text = "this unit takes part in the election; another unit owns the addresses, and keeps them while they carry calls"
		}
	case "BACKUP", "FAULT", "STOP":
		if !st.Owner {
			out = map[string]any{"vrrp": name, "state": state, "action": "none", "owner": false}
			text = "this unit does not own the floating addresses: nothing to do"
			break
		}
		var raw json.RawMessage
		if err := c.Call("POST", "/api/v1/ha/move", admin.HAMoveRequest{Wait: wait.String(), Hold: hold.String()}, &raw); err != nil {
			return err
		}
		var r takeover.MoveResult
		_ = json.Unmarshal(raw, &r)
		out = map[string]any{"vrrp": name, "state": state, "action": "move", "move": r}
		text = fmt.Sprintf("floating addresses released after %v: %d calls ended, %d handed over to the next owner; out of the election for %v or until keepalived makes this unit MASTER",
			r.Took.Round(time.Millisecond), r.CallsEnded, r.CallsHandedOver, *hold)
	default:
		return c.Usagef("ha vrrp-notify: state %q (MASTER, BACKUP, FAULT or STOP)", state)
	}
	raw, _ := json.Marshal(out)
	return c.Output(raw, func(w io.Writer) {
		fmt.Fprintf(w, "keepalived %s %s: %s\n", name, state, text)
	})
}
