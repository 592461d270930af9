package cli

import (
	"fmt"
	"io"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/palisade-sbc/palisade/internal/pki/acme"
)

// certACME is 'palisade cert acme [status] | renew NAME | revoke NAME':
// the certificates ACME keeps issued (docs/acme.md). Needs a running unit.
func certACME(c *Context, args []string) error {
	if len(args) == 0 {
		args = []string{"status"}
	}
	switch args[0] {
	case "status":
		var st []acme.Status
		if err := c.Call("GET", "/api/v1/acme", nil, &st); err != nil {
			return err
		}
		return c.Output(st, func(w io.Writer) {
			if len(st) == 0 {
				fmt.Fprintln(w, "ACME manages no certificate (acme.enabled, acme.certificates)")
				return
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tDOMAINS\tNOT AFTER\tRENEW AT\tLAST ERROR")
			for _, s := range st {
				fmt.Fprintf(tw, "%s\t%v\t%s\t%s\t%s\n", s.Name, s.Domains, day(s.NotAfter), day(s.RenewAt), s.LastError)
			}
			tw.Flush()
		})
	case "renew", "revoke":
		if len(args) != 2 {
			return c.Usagef("acme %s needs one NAME", args[0])
		}
		var res map[string]string
		if err := c.Call("POST", "/api/v1/acme/"+url.PathEscape(args[1])+"/"+args[0], nil, &res); err != nil {
			return err
		}
		return c.Output(res, func(w io.Writer) { fmt.Fprintf(w, "%s: %s\n", args[1], res["result"]) })
	}
	return c.Usagef("acme takes status, renew NAME or revoke NAME")
}

func day(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04")
}
