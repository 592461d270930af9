package cli

import (
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/palisade-sbc/palisade/internal/admin"
	"github.com/palisade-sbc/palisade/internal/pki"
)

func init() {
	Register(&Command{
		Name:    "cert",
		Summary: "the unit's own keys and certificates (changes go to the preliminary configuration)",
		Usage: "cert new NAME --cn FQDN [--o ORG] [--c CC] [--st ST] [--l CITY] [--ou UNIT] [--email ADDR] [--san NAME]...\n" +
			"           [--key ecdsa-p256|rsa-2048|rsa-3072|rsa-4096] [--self-signed]\n" +
			"       | csr NAME | import NAME FILE... | show NAME | export NAME [--der] [--chain]\n" +
			"       | list | delete NAME | acme [status] | acme renew NAME | acme revoke NAME",
		Run: func(c *Context, args []string) error {
			return c.Dispatch(args, map[string]func(*Context, []string) error{
				"new": certNew, "csr": certCSR, "import": certImport, "show": certShow,
				"export": certExport, "list": certList, "delete": certDelete, "acme": certACME,
			})
		},
	})
}

// multiFlag collects a repeated flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func certPath(name string, rest ...string) string {
	p := "/api/v1/certificates/" + url.PathEscape(name)
	for _, r := range rest {
		p += "/" + r
	}
	return p
}

func certNew(c *Context, args []string) error {
	fs := flag.NewFlagSet("new", flag.ContinueOnError)
	var o pki.NewOptions
	var sans multiFlag
	fs.StringVar(&o.CN, "cn", "", "")
	fs.StringVar(&o.O, "o", "", "")
	fs.StringVar(&o.C, "c", "", "")
	fs.StringVar(&o.ST, "st", "", "")
	fs.StringVar(&o.L, "l", "", "")
	fs.StringVar(&o.OU, "ou", "", "")
	fs.StringVar(&o.Email, "email", "", "")
	fs.Var(&sans, "san", "")
	fs.StringVar(&o.KeyType, "key", pki.KeyECDSAP256, "")
	fs.BoolVar(&o.SelfSigned, "self-signed", false, "")
	pos, err := parseFlags(c, fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return c.Usagef("new needs one NAME (quote names with spaces)")
	}
	if strings.TrimSpace(o.CN) == "" {
		return c.Usagef("new needs --cn FQDN (the unit's fully qualified domain name)")
	}
	o.SANs = sans
	var info pki.EntryInfo
	if err := c.Call("POST", "/api/v1/certificates", map[string]any{
		"name": pos[0], "cn": o.CN, "o": o.O, "c": o.C, "st": o.ST, "l": o.L, "ou": o.OU, "email": o.Email,
		"sans": o.SANs, "key": o.KeyType, "self_signed": o.SelfSigned,
	}, &info); err != nil {
		return err
	}
	return c.Output(info, func(w io.Writer) {
		if info.State == "request" {
			fmt.Fprintf(w, "certificate request created for %q\n", info.Name)
			fmt.Fprintf(w, "  Subject: %s\n", requestSubject(info.Request))
			fmt.Fprintf(w, "  Key: %s\n", info.KeyType)
			fmt.Fprintf(w, "Download it with 'palisade cert csr %s > certreq.pem', have it signed, then 'palisade cert import %s FILE...'\n", shellQuote(info.Name), shellQuote(info.Name))
		} else {
			fmt.Fprintf(w, "self-signed certificate created for %q\n", info.Name)
			printEntry(w, &info)
		}
		printNotes(w, info.Notes)
		c.notePending()
	})
}

func shellQuote(s string) string {
	if strings.ContainsAny(s, " '\"$\\") {
		return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	return s
}

// requestSubject writes the requested subject the way appliances show it.
func requestSubject(s pki.Subject) string {
	var parts []string
	for _, kv := range [][2]string{{"C", s.C}, {"ST", s.ST}, {"L", s.L}, {"O", s.O}, {"OU", s.OU}, {"CN", s.CN}, {"emailAddress", s.Email}} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+"="+kv[1])
		}
	}
	return "/" + strings.Join(parts, "/")
}

func printNotes(w io.Writer, notes []string) {
	for _, n := range notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

func certCSR(c *Context, args []string) error {
	if len(args) != 1 {
		return c.Usagef("csr needs one NAME")
	}
	var p []byte
	if err := c.Call("GET", certPath(args[0], "csr"), nil, &p); err != nil {
		return err
	}
	_, err := c.Stdout.Write(p)
	return err
}

// uploadBody reads files into the JSON upload form of the API.
func uploadBody(c *Context, files []string) (admin.UploadRequest, error) {
	var req admin.UploadRequest
	for _, f := range files {
		b, err := readInput(c, f)
		if err != nil {
			return req, err
		}
		if len(b) > pki.MaxUpload {
			return req, fmt.Errorf("%s is %d bytes; certificate and CRL files larger than %d bytes are refused", f, len(b), pki.MaxUpload)
		}
		req.Files = append(req.Files, admin.UploadFile{Name: filepath.Base(f), Data: base64.StdEncoding.EncodeToString(b)})
	}
	return req, nil
}

func certImport(c *Context, args []string) error {
	if len(args) < 2 {
		return c.Usagef("import needs NAME and at least one FILE (device certificate, intermediates; PEM or DER)")
	}
	body, err := uploadBody(c, args[1:])
	if err != nil {
		return err
	}
	var info pki.EntryInfo
	if err := c.Call("POST", certPath(args[0], "import"), body, &info); err != nil {
		return err
	}
	return c.Output(info, func(w io.Writer) {
		fmt.Fprintf(w, "certificate imported into %q\n", info.Name)
		printEntry(w, &info)
		printNotes(w, info.Notes)
		c.notePending()
	})
}

func certShow(c *Context, args []string) error {
	if len(args) != 1 {
		return c.Usagef("show needs one NAME")
	}
	var info pki.EntryInfo
	if err := c.Call("GET", certPath(args[0]), nil, &info); err != nil {
		return err
	}
	return c.Output(info, func(w io.Writer) {
		fmt.Fprintf(w, "Name: %s\n", info.Name)
		printEntry(w, &info)
		printNotes(w, info.Notes)
	})
}

// printEntry writes a private entry: the request or the certificate, its
// chain and the chain status.
func printEntry(w io.Writer, info *pki.EntryInfo) {
	if info.Certificate == nil {
		fmt.Fprintf(w, "State: certificate request pending\n")
		fmt.Fprintf(w, "Requested subject: %s\n", requestSubject(info.Request))
		fmt.Fprintf(w, "Key: %s\n", info.KeyType)
	} else {
		printCertInfo(w, "", info.Certificate)
		for i := range info.Chain {
			fmt.Fprintf(w, "Chain certificate %d:\n", i+1)
			printCertInfo(w, "  ", &info.Chain[i])
		}
	}
	fmt.Fprintf(w, "Chain status: %s\n", info.ChainStatus.Message)
	if len(info.UsedBy) > 0 {
		fmt.Fprintf(w, "Used by: %s\n", strings.Join(info.UsedBy, ", "))
	}
}

// printCertInfo writes every field 'show' promises for one certificate.
func printCertInfo(w io.Writer, indent string, ci *pki.CertInfo) {
	p := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "%s%s: %s\n", indent, k, v)
		}
	}
	p("Subject", ci.Subject)
	p("Issuer", ci.Issuer)
	p("Serial", ci.Serial)
	p("Valid from", ci.NotBefore.Format("2006-01-02 15:04:05 MST"))
	p("Valid to", fmt.Sprintf("%s (%d days left)", ci.NotAfter.Format("2006-01-02 15:04:05 MST"), ci.DaysLeft))
	p("Subject alternative names", strings.Join(ci.SANs, ", "))
	p("Key", ci.KeyType)
	p("Key usage", strings.Join(ci.KeyUsage, ", "))
	p("Extended key usage", strings.Join(ci.ExtKeyUsage, ", "))
	if ci.IsCA {
		p("CA", "yes")
	}
	p("MD5 fingerprint", ci.Fingerprints.MD5)
	p("SHA-1 fingerprint", ci.Fingerprints.SHA1)
	p("SHA-256 fingerprint", ci.Fingerprints.SHA256)
}

func certExport(c *Context, args []string) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	der := fs.Bool("der", false, "")
	chain := fs.Bool("chain", false, "")
	pos, err := parseFlags(c, fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return c.Usagef("export needs one NAME")
	}
	q := url.Values{}
	if *der {
		q.Set("format", "der")
	}
	if *chain {
		q.Set("chain", "true")
	}
	var b []byte
	if err := c.Call("GET", certPath(pos[0], "export")+"?"+q.Encode(), nil, &b); err != nil {
		return err
	}
	_, err = c.Stdout.Write(b)
	return err
}

func certList(c *Context, args []string) error {
	if len(args) != 0 {
		return c.Usagef("list takes no arguments")
	}
	var list []pki.EntryInfo
	if err := c.Call("GET", "/api/v1/certificates", nil, &list); err != nil {
		return err
	}
	return c.Output(list, func(w io.Writer) {
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tSTATE\tSUBJECT\tVALID TO\tDAYS LEFT\tUSED BY")
		for _, e := range list {
			subj, to, days := requestSubject(e.Request), "-", "-"
			if e.Certificate != nil {
				subj, to, days = e.Certificate.Subject, e.Certificate.NotAfter.Format("2006-01-02"), fmt.Sprint(e.Certificate.DaysLeft)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Name, e.State, subj, to, days, strings.Join(e.UsedBy, ", "))
		}
		tw.Flush()
		for _, e := range list {
			for _, n := range e.Notes {
				fmt.Fprintf(w, "note: %s: %s\n", e.Name, n)
			}
		}
	})
}

func certDelete(c *Context, args []string) error {
	if len(args) != 1 {
		return c.Usagef("delete needs one NAME")
	}
	if err := c.Call("DELETE", certPath(args[0]), nil, nil); err != nil {
		return err
	}
	return c.Output(map[string]string{"deleted": args[0]}, func(w io.Writer) {
		fmt.Fprintf(w, "%q removed from the preliminary configuration\n", args[0])
		c.notePending()
	})
}
