package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/palisade-sbc/palisade/internal/admin"
	"github.com/palisade-sbc/palisade/internal/human"
)

func init() {
	Register(&Command{
		Name:    "dashboard",
		Summary: "the unit at a glance: alarms, calls, ASR/ACD of the last 5 minutes, hour and day, peers, certificates",
		Usage:   "dashboard [--json]",
		Run: func(c *Context, args []string) error {
			if len(args) != 0 {
				return c.Usagef("dashboard takes no arguments")
			}
			var d admin.Dashboard
			if err := c.Call("GET", "/api/v1/dashboard", nil, &d); err != nil {
				return err
			}
			return c.Output(d, func(w io.Writer) { printDashboard(w, &d) })
		},
	})
}

func printDashboard(w io.Writer, d *admin.Dashboard) {
	now := time.Now()
	if len(d.Alarms) == 0 {
		fmt.Fprintln(w, "Alarms: none")
	} else {
		fmt.Fprintln(w, "Alarms:")
		tw := newTable(w)
		for _, a := range d.Alarms {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", a.Severity, a.Kind, dash(a.Subject), a.Text+" (since "+human.Ago(a.Raised, now)+")")
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "Calls in progress: %d\n", d.ActiveCalls)
	tw := newTable(w)
	fmt.Fprintln(tw, "\tCALLS\tCALLS/S\tANSWERED\tFAILED\tASR\tACD")
	for _, s := range d.Stats {
		acd := "-"
		if s.Answered > 0 {
			acd = human.Duration(s.ACD)
		}
		fmt.Fprintf(tw, "last %s\t%d\t%.2f\t%d\t%d\t%s\t%s\n", s.Name, s.Attempts, s.CallsPerSecond, s.Answered, s.Failed, human.Percent(s.ASR), acd)
	}
	tw.Flush()
	if len(d.Peers) > 0 {
		tw = newTable(w)
		fmt.Fprintln(tw, "PEER\tSTATE\tSINCE\tLAST ERROR")
		for _, p := range d.Peers {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Name, peerWords[p.State], human.Ago(p.Since, now), dash(p.LastError))
		}
		tw.Flush()
	}
	for _, c := range d.Certificates {
		switch {
		case c.NotAfter.IsZero():
		case c.DaysLeft < 0:
			fmt.Fprintf(w, "Certificate %s: %s\n", c.Name, human.Days(c.DaysLeft))
		default:
			fmt.Fprintf(w, "Certificate %s: %s left\n", c.Name, human.Days(c.DaysLeft))
		}
	}
}

var peerWords = map[string]string{"up": "up", "down": "down", "unchecked": "not checked yet", "unmonitored": "not monitored"}
