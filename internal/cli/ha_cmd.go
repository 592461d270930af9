package cli

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/palisade-sbc/palisade/internal/admin"
	"github.com/palisade-sbc/palisade/internal/ha/takeover"
)

func init() {
	Register(&Command{
		Name:    "ha",
		Summary: "move the floating addresses to another unit (planned move, drains first); keepalived's notify",
		Usage:   "ha move [--wait 30s] [--hold 5m] | vrrp-notify [--wait 0s] INSTANCE|GROUP NAME MASTER|BACKUP|FAULT|STOP [PRIORITY]",
		Run: func(c *Context, args []string) error {
			return c.Dispatch(args, map[string]func(*Context, []string) error{"move": haMove, "vrrp-notify": haVRRPNotify})
		},
	})
}

// haMove asks the owner of the floating addresses to give them up
// (docs/ha.md, planned move).
func haMove(c *Context, args []string) error {
	fs := flag.NewFlagSet("ha move", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	wait := fs.Duration("wait", admin.DefaultMoveWait, "how long new calls are refused while the calls end; the rest are handed over")
	hold := fs.Duration("hold", admin.DefaultMoveHold, "how long this unit stays out of the election after the move")
	if err := fs.Parse(args); err != nil {
		return c.Usagef("%v", err)
	}
	if fs.NArg() > 0 {
		return c.Usagef("ha move takes no arguments")
	}
	var raw json.RawMessage
	req := admin.HAMoveRequest{Wait: wait.String(), Hold: hold.String()}
	if err := c.Call("POST", "/api/v1/ha/move", req, &raw); err != nil {
		return err
	}
	return c.Output(raw, func(w io.Writer) {
		var r takeover.MoveResult
		if json.Unmarshal(raw, &r) != nil {
			fmt.Fprintf(w, "%s\n", raw)
			return
		}
		fmt.Fprintf(w, "floating addresses released after %v: %d calls ended, %d handed over to the next owner; this unit stays out of the election for %v\n",
			r.Took.Round(time.Millisecond), r.CallsEnded, r.CallsHandedOver, *hold)
	})
}
