package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/palisade-sbc/palisade/internal/admin"
	"github.com/palisade-sbc/palisade/internal/human"
	"github.com/palisade-sbc/palisade/internal/observe"
)

func init() {
	Register(&Command{
		Name:    "tools",
		Summary: "administrator's tools: which dial plan rule a number takes (route), OPTIONS to a peer or URI (ping), a test call from the unit (call)",
		Usage: "tools route NUMBER [--source PEER|INTERFACE] [--from URI] [--preliminary] | ping PEER|URI" +
			" | call NUMBER|URI [--from PEER] [--caller USER] [--hold DURATION] [--ring DURATION]",
		Run: func(c *Context, args []string) error {
			return c.Dispatch(args, map[string]func(*Context, []string) error{
				"route": toolsRoute,
				"ping":  toolsPing,
				"call":  toolsCall,
			})
		},
	})
}

func toolsRoute(c *Context, args []string) error {
	fs := flag.NewFlagSet("route", flag.ContinueOnError)
	source := fs.String("source", "", "")
	from := fs.String("from", "", "")
	prelim := fs.Bool("preliminary", false, "")
	pos, err := parseFlags(c, fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return c.Usagef("route needs the NUMBER")
	}
	req := admin.RouteRequest{Number: pos[0], Source: *source, From: *from}
	if *prelim {
		req.Config = "preliminary"
	}
	var res admin.RouteResult
	if err := c.Call("POST", "/api/v1/tools/route", req, &res); err != nil {
		return err
	}
	if err := c.Output(res, func(w io.Writer) { printRoute(w, &res) }); err != nil {
		return err
	}
	if res.Result != "routed" {
		return errors.New("no route")
	}
	return nil
}

func printRoute(w io.Writer, res *admin.RouteResult) {
	fmt.Fprintf(w, "Number:  %s\n", res.Request.Number)
	switch {
	case res.SourcePeer != "":
		fmt.Fprintf(w, "From:    peer %s (interface %s)\n", res.SourcePeer, res.SourceIface)
	case res.SourceIface != "":
		fmt.Fprintf(w, "From:    interface %s\n", res.SourceIface)
	}
	fmt.Fprintf(w, "Result:  %s\n", res.Message)
	if res.Rule != "" {
		fmt.Fprintf(w, "Rule:    %s (matches %s)\n", res.Rule, res.Match)
	}
	if len(res.Targets) > 0 {
		tw := newTable(w)
		fmt.Fprintln(tw, "#\tPEER\tREQUEST-URI\tNUMBER SENT\tRINGS FOR")
		for i, t := range res.Targets {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", i, dash(t.Peer), t.URI, t.Number, human.Duration(t.Timeout))
		}
		tw.Flush()
	}
	for _, tc := range res.TimeClasses {
		state := "not in force"
		if tc.Active {
			state = "in force"
		}
		fmt.Fprintf(w, "Time class %s: %s\n", tc.Name, state)
	}
	for _, n := range res.Notes {
		fmt.Fprintf(w, "Note: %s\n", n)
	}
}

func toolsPing(c *Context, args []string) error {
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		return c.Usagef("ping needs the name of a configured PEER or a SIP URI (sip:host:port;transport=tls)")
	}
	var res admin.PingResult
	if err := c.Call("POST", "/api/v1/tools/ping", admin.PingRequest{Peer: args[0]}, &res); err != nil {
		return err
	}
	if err := c.Output(res, func(w io.Writer) {
		if res.OK {
			fmt.Fprintf(w, "%s answered %d %s in %s\n", res.Name(), res.Code, res.Reason, human.Duration(res.RTT))
			if res.Server != "" {
				fmt.Fprintf(w, "Server: %s\n", res.Server)
			}
			if res.Allow != "" {
				fmt.Fprintf(w, "Allow: %s\n", res.Allow)
			}
		} else {
			fmt.Fprintf(w, "%s did not answer: %s\n", res.Name(), res.Error)
		}
		printLadder(w, res.Messages, res.Names)
	}); err != nil {
		return err
	}
	if !res.OK {
		return errors.New("no answer")
	}
	return nil
}

func toolsCall(c *Context, args []string) error {
	fs := flag.NewFlagSet("call", flag.ContinueOnError)
	from := fs.String("from", "", "")
	caller := fs.String("caller", "", "")
	hold := fs.Duration("hold", admin.DefaultTestHold, "")
	ring := fs.Duration("ring", admin.DefaultTestRing, "")
	pos, err := parseFlags(c, fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return c.Usagef("call needs the NUMBER or the SIP URI to call")
	}
	req := admin.CallRequest{Target: pos[0], From: *from, Caller: *caller, Hold: *hold, Ring: *ring}
	var res admin.CallResult
	if err := c.Call("POST", "/api/v1/tools/call", req, &res); err != nil {
		return err
	}
	if err := c.Output(res, func(w io.Writer) {
		fmt.Fprintf(w, "Call:    %s from %s\n", pos[0], res.Source)
		fmt.Fprintf(w, "Result:  %s (%d %s)\n", strings.ReplaceAll(res.Result, "_", " "), res.Code, res.Reason)
		fmt.Fprintf(w, "         %s\n", res.Message)
		fmt.Fprintf(w, "Call-ID: %s\n", res.CallID)
		printLadder(w, res.Messages, res.Names)
	}); err != nil {
		return err
	}
	if res.Result != "answered" {
		return errors.New(strings.ReplaceAll(res.Result, "_", " ") + ": " + strconv.Itoa(res.Code) + " " + res.Reason)
	}
	return nil
}

// printLadder writes the SIP messages of a tools exchange one a line, the
// far end named after its peer when known, then each message in full.
func printLadder(w io.Writer, msgs []observe.Message, names map[string]string) {
	if len(msgs) == 0 {
		return
	}
	fmt.Fprintln(w, "Ladder:")
	t0 := msgs[0].Time
	far := func(m observe.Message) string {
		if n := names[m.Remote.String()]; n != "" {
			return n + " " + addr(m.Remote)
		}
		return addr(m.Remote)
	}
	for _, m := range msgs {
		arrow := "──%s──▶"
		if m.Direction == "in" {
			arrow = "◀──%s──"
		}
		sdp := ""
		if m.SDP {
			sdp = " (SDP)"
		}
		fmt.Fprintf(w, "  %8s  %s %s %s %s  %s\n", human.Duration(m.Time.Sub(t0)), m.Leg, addr(m.Local),
			fmt.Sprintf(arrow, " "+m.Label+sdp+" "), far(m), m.Transport)
	}
	for _, m := range msgs {
		fmt.Fprintf(w, "\n#%d %s %s\n%s", m.Index, map[string]string{"in": "received", "out": "sent"}[m.Direction], m.Time.Local().Format("15:04:05.000"), m.Text)
	}
}
