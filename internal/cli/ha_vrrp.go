package cli

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/palisade-sbc/palisade/internal/admin"
	"github.com/palisade-sbc/palisade/internal/ha/takeover"
)

// haVRRPNotify is keepalived's notify script (docs/ha.md, keepalived):
// keepalived runs it with TYPE NAME STATE [PRIORITY] on each change of a
// VRRP instance or group, and the unit follows the state as advice
// (takeover.Takeover.VRRP): the etcd election stays the authority over the
// floating addresses.
func haVRRPNotify(c *Context, args []string) error {
	fs := flag.NewFlagSet("ha vrrp-notify", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	wait := fs.Duration("wait", 0, "BACKUP/FAULT/STOP on the owner: how long new calls are refused while the calls end before the rest are handed over")
	if err := fs.Parse(args); err != nil {
		return c.Usagef("%v", err)
	}
	a := fs.Args()
	if len(a) < 3 || len(a) > 4 || !slices.Contains([]string{"INSTANCE", "GROUP"}, a[0]) {
		return c.Usagef("ha vrrp-notify takes INSTANCE|GROUP NAME STATE [PRIORITY] (keepalived's notify arguments)")
	}
	name, state := a[1], a[2]
	if !slices.Contains(admin.VRRPStates, state) {
		return c.Usagef("ha vrrp-notify: state %q (one of %v)", state, admin.VRRPStates)
	}
	var raw json.RawMessage
	if err := c.Call("POST", "/api/v1/ha/vrrp", admin.HAVRRPRequest{State: state, Wait: wait.String()}, &raw); err != nil {
		return err
	}
	return c.Output(raw, func(w io.Writer) {
		var r takeover.VRRPResult
		if json.Unmarshal(raw, &r) != nil {
			fmt.Fprintf(w, "%s\n", raw)
			return
		}
		fmt.Fprintf(w, "keepalived %s %s: %s\n", name, state, vrrpLine(r))
	})
}

// vrrpLine says what the unit did on a keepalived state change.
func vrrpLine(r takeover.VRRPResult) string {
	switch {
	case r.Move != nil:
		return fmt.Sprintf("on standby; floating addresses handed over after %v: %d calls ended, %d handed over to the next owner",
			r.Move.Took.Round(time.Millisecond), r.Move.CallsEnded, r.Move.CallsHandedOver)
	case r.Standby && r.Owner:
		return "on standby, but no other unit takes part in the election: this unit keeps the floating addresses"
	case r.Standby:
		return "on standby; this unit does not own the floating addresses: nothing to hand over"
	case r.Owner:
		return "preferred again; this unit owns the floating addresses"
	case r.WasHeld:
		return "preferred again and back in the election (it was out after a move); it owns the addresses when the election gives them (the owner keeps them while they carry calls)"
	}
	return "preferred again; it owns the floating addresses when the election gives them (the owner keeps them while they carry calls)"
}
