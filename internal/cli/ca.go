package cli

import (
	"flag"
	"fmt"
	"io"
	"net/url"
	"text/tabwriter"

	"github.com/palisade-sbc/palisade/internal/pki"
)

func init() {
	Register(&Command{
		Name:    "ca",
		Summary: "the CA store: certificates the unit trusts for its peers, and their CRLs",
		Usage:   "ca import NAME FILE | crl NAME FILE | list | show NAME | export NAME [--der] | delete NAME",
		Run: func(c *Context, args []string) error {
			return c.Dispatch(args, map[string]func(*Context, []string) error{
				"import": caImport, "crl": caCRL, "list": caList, "show": caShow, "export": caExport, "delete": caDelete,
			})
		},
	})
}

func caPath(name string, rest ...string) string {
	p := "/api/v1/ca/" + url.PathEscape(name)
	for _, r := range rest {
		p += "/" + r
	}
	return p
}

func caImport(c *Context, args []string) error {
	if len(args) != 2 {
		return c.Usagef("import needs NAME and one FILE (PEM or DER)")
	}
	body, err := uploadBody(c, args[1:])
	if err != nil {
		return err
	}
	var info pki.CAInfo
	if err := c.Call("POST", caPath(args[0]), body, &info); err != nil {
		return err
	}
	return c.Output(info, func(w io.Writer) {
		fmt.Fprintf(w, "CA certificate imported as %q\n", info.Name)
		printCA(w, &info)
		c.notePending()
	})
}

func caCRL(c *Context, args []string) error {
	if len(args) != 2 {
		return c.Usagef("crl needs NAME and one FILE (PEM or DER)")
	}
	body, err := uploadBody(c, args[1:])
	if err != nil {
		return err
	}
	var info pki.CAInfo
	if err := c.Call("POST", caPath(args[0], "crl"), body, &info); err != nil {
		return err
	}
	return c.Output(info, func(w io.Writer) {
		fmt.Fprintf(w, "CRL imported for %q\n", info.Name)
		printCA(w, &info)
		c.notePending()
	})
}

func printCA(w io.Writer, info *pki.CAInfo) {
	printCertInfo(w, "", &info.Certificate)
	if info.CRL != nil {
		fmt.Fprintf(w, "CRL: issued %s by %s, %d revoked certificate(s)", info.CRL.ThisUpdate.Format("2006-01-02 15:04 MST"), info.CRL.Issuer, info.CRL.Revoked)
		if !info.CRL.NextUpdate.IsZero() {
			fmt.Fprintf(w, ", next update %s", info.CRL.NextUpdate.Format("2006-01-02 15:04 MST"))
		}
		if info.CRL.Stale {
			fmt.Fprint(w, " (out of date: import a newer CRL)")
		}
		fmt.Fprintln(w)
	} else {
		fmt.Fprintln(w, "CRL: none")
	}
	printNotes(w, info.Notes)
}

func caList(c *Context, args []string) error {
	if len(args) != 0 {
		return c.Usagef("list takes no arguments")
	}
	var list []pki.CAInfo
	if err := c.Call("GET", "/api/v1/ca", nil, &list); err != nil {
		return err
	}
	return c.Output(list, func(w io.Writer) {
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tSUBJECT\tVALID TO\tDAYS LEFT\tCRL\tTRUSTED\tMD5 FINGERPRINT")
		for _, e := range list {
			crl := "-"
			if e.CRL != nil {
				crl = fmt.Sprintf("%d revoked", e.CRL.Revoked)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%v\t%s\n", e.Name, e.Certificate.Subject, e.Certificate.NotAfter.Format("2006-01-02"),
				e.Certificate.DaysLeft, crl, e.Trusted, e.Certificate.Fingerprints.MD5)
		}
		tw.Flush()
		for _, e := range list {
			for _, n := range e.Notes {
				fmt.Fprintf(w, "note: %s: %s\n", e.Name, n)
			}
		}
	})
}

func caShow(c *Context, args []string) error {
	if len(args) != 1 {
		return c.Usagef("show needs one NAME")
	}
	var info pki.CAInfo
	if err := c.Call("GET", caPath(args[0]), nil, &info); err != nil {
		return err
	}
	return c.Output(info, func(w io.Writer) {
		fmt.Fprintf(w, "Name: %s\n", info.Name)
		printCA(w, &info)
	})
}

func caExport(c *Context, args []string) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	der := fs.Bool("der", false, "")
	pos, err := parseFlags(c, fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return c.Usagef("export needs one NAME")
	}
	q := ""
	if *der {
		q = "?format=der"
	}
	var b []byte
	if err := c.Call("GET", caPath(pos[0], "export")+q, nil, &b); err != nil {
		return err
	}
	_, err = c.Stdout.Write(b)
	return err
}

func caDelete(c *Context, args []string) error {
	if len(args) != 1 {
		return c.Usagef("delete needs one NAME")
	}
	if err := c.Call("DELETE", caPath(args[0]), nil, nil); err != nil {
		return err
	}
	return c.Output(map[string]string{"deleted": args[0]}, func(w io.Writer) {
		fmt.Fprintf(w, "%q removed from the preliminary configuration\n", args[0])
		c.notePending()
	})
}
