package cli

import (
	"flag"
	"fmt"
	"io"
	"net/url"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/palisade-sbc/palisade/internal/human"
	"github.com/palisade-sbc/palisade/internal/observe"
)

func init() {
	Register(&Command{
		Name:    "calls",
		Summary: "list calls in progress and ended calls",
		Usage:   "calls [--active|--ended] [--since DURATION] [--number N] [--result failed|ok|CODE|4xx] [--limit N] [--json]",
		Run:     runCalls,
	})
}

func runCalls(c *Context, args []string) error {
	fs := flag.NewFlagSet("calls", flag.ContinueOnError)
	active := fs.Bool("active", false, "only calls in progress")
	ended := fs.Bool("ended", false, "only ended calls")
	since := fs.String("since", "", "calls since this long ago (30m, 2h, 7d) or an RFC 3339 time")
	number := fs.String("number", "", "calls whose From or To contains this")
	result := fs.String("result", "", "failed, ok, a status code or a class like 4xx")
	limit := fs.Int("limit", 0, "at most this many calls, newest first")
	if err := parseNoArgs(c, fs, args); err != nil {
		return err
	}
	if *active && *ended {
		return c.Usagef("--active and --ended exclude each other")
	}
	q := url.Values{}
	setIf := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	if *active {
		q.Set("active", "1")
	}
	if *ended {
		q.Set("ended", "1")
	}
	setIf("since", *since)
	setIf("number", *number)
	setIf("result", *result)
	if *limit > 0 {
		q.Set("limit", fmt.Sprint(*limit))
	}
	var rows []observe.CallRow
	if err := c.Call("GET", "/api/v1/calls?"+q.Encode(), nil, &rows); err != nil {
		return err
	}
	return c.Output(rows, func(w io.Writer) {
		if len(rows) == 0 {
			fmt.Fprintln(w, "no calls")
			return
		}
		tw := newTable(w)
		units := slices.ContainsFunc(rows, func(r observe.CallRow) bool { return r.Unit != "" }) // a cluster's listing
		fmt.Fprintln(tw, unitCol(units, "UNIT")+"START\tSTATE\tDIRECTION\tFROM\tTO\tRESULT\tDURATION\tTRACE\tID")
		for _, r := range rows {
			result := "-"
			if r.Code != 0 {
				result = fmt.Sprintf("%d %s", r.Code, r.Reason)
			}
			trace := "-"
			if r.Traced {
				trace = fmt.Sprint(r.Messages, " msgs")
			}
			fmt.Fprintf(tw, "%s%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", unitCol(units, r.Unit), r.Start.Local().Format("2006-01-02 15:04:05"),
				r.State, dash(r.Direction), dash(r.From), dash(r.To), result, human.Duration(r.Duration.Round(time.Second)), trace, r.ID)
		}
		tw.Flush()
	})
}

// newTable aligns the tab-separated columns of a list command's output.
func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

// unitCol is the first column of a cluster-wide listing (on), else nothing.
func unitCol(on bool, v string) string {
	if !on {
		return ""
	}
	return dash(v) + "\t"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

type validAddr interface {
	IsValid() bool
	String() string
}

func addr(a validAddr) string {
	if !a.IsValid() {
		return "-"
	}
	return a.String()
}
