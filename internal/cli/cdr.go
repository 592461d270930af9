package cli

import (
	"flag"
	"fmt"
	"io"
	"net/url"
	"slices"
	"time"

	"github.com/palisade-sbc/palisade/internal/human"
	"github.com/palisade-sbc/palisade/internal/observe"
)

func init() {
	Register(&Command{
		Name:    "cdr",
		Summary: "list call detail records, or export them as CSV",
		Usage:   "cdr [--since DURATION] [--csv] [--json]",
		Run:     runCDR,
	})
}

func runCDR(c *Context, args []string) error {
	fs := flag.NewFlagSet("cdr", flag.ContinueOnError)
	since := fs.String("since", "", "records of calls started since this long ago (30m, 2h, 7d) or an RFC 3339 time")
	csvOut := fs.Bool("csv", false, "print CSV with a header row")
	if err := parseNoArgs(c, fs, args); err != nil {
		return err
	}
	q := url.Values{}
	if *since != "" {
		q.Set("since", *since)
	}
	if *csvOut {
		q.Set("format", "csv")
		var body []byte
		if err := c.Call("GET", "/api/v1/cdr?"+q.Encode(), nil, &body); err != nil {
			return err
		}
		_, err := c.Stdout.Write(body)
		return err
	}
	var cdrs []observe.CDR
	if err := c.Call("GET", "/api/v1/cdr?"+q.Encode(), nil, &cdrs); err != nil {
		return err
	}
	return c.Output(cdrs, func(w io.Writer) {
		if len(cdrs) == 0 {
			fmt.Fprintln(w, "no call records")
			return
		}
		tw := newTable(w)
		units := slices.ContainsFunc(cdrs, func(r observe.CDR) bool { return r.Unit != "" }) // a cluster's listing
		fmt.Fprintln(tw, unitCol(units, "UNIT")+"START\tDIRECTION\tFROM\tTO\tRESULT\tDURATION\tENDED BY\tID")
		for _, r := range cdrs {
			fmt.Fprintf(tw, "%s%s\t%s\t%s\t%s\t%d %s\t%s\t%s\t%s\n", unitCol(units, r.Unit), r.Start.Local().Format("2006-01-02 15:04:05"),
				r.Direction, dash(observe.UserOrURI(r.A.From)), dash(observe.UserOrURI(r.A.To)), r.Code, r.Reason, human.Duration(r.Duration.Round(time.Second)), dash(r.EndedBy), r.ID)
		}
		tw.Flush()
	})
}
