package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/palisade-sbc/palisade/internal/admin"
	"github.com/palisade-sbc/palisade/internal/human"
)

func init() {
	Register(&Command{
		Name:    "tools",
		Summary: "administrator's tools: which dial plan rule a number takes (route), OPTIONS to a peer (ping); call is not available yet",
		Usage:   "tools route NUMBER [--source PEER|INTERFACE] [--from URI] [--preliminary] | ping PEER | call NUMBER|URI [--from PEER]",
		Run: func(c *Context, args []string) error {
			return c.Dispatch(args, map[string]func(*Context, []string) error{
				"route": toolsRoute,
				"ping":  toolsPing,
				"call":  toolsMissing("call"),
			})
		},
	})
}

// toolsMissing answers the tools that need the SIP layer to originate
// requests of its own, which it does not offer yet.
func toolsMissing(name string) func(*Context, []string) error {
	return func(*Context, []string) error {
		return errors.New("palisade tools " + name + " is not available yet: the SIP layer offers no way to originate it; " +
			"test with a call from a phone and follow it with 'palisade calls' and 'palisade trace'")
	}
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
		return c.Usagef("ping needs the name of a configured PEER")
	}
	if strings.Contains(args[0], ":") {
		return c.Usagef("ping takes the name of a configured peer; a bare URI cannot be pinged yet")
	}
	var res admin.PingResult
	if err := c.Call("POST", "/api/v1/tools/ping", admin.PingRequest{Peer: args[0]}, &res); err != nil {
		return err
	}
	if err := c.Output(res, func(w io.Writer) {
		if res.OK {
			fmt.Fprintf(w, "%s answered %d %s in %s\n", res.Peer, res.Code, res.Reason, human.Duration(res.RTT))
			if res.Server != "" {
				fmt.Fprintf(w, "Server: %s\n", res.Server)
			}
			if res.Allow != "" {
				fmt.Fprintf(w, "Allow: %s\n", res.Allow)
			}
		} else {
			fmt.Fprintf(w, "%s did not answer: %s\n", res.Peer, res.Error)
		}
	}); err != nil {
		return err
	}
	if !res.OK {
		return errors.New("no answer")
	}
	return nil
}
