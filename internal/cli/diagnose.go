package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/palisade-sbc/palisade/internal/admin"
	"github.com/palisade-sbc/palisade/internal/pki"
)

func init() {
	Register(&Command{
		Name:    "diagnose",
		Summary: "troubleshooting: connect to a TLS peer as the unit would and explain the outcome",
		Usage:   "diagnose tls HOST:PORT [--sni NAME]",
		Run: func(c *Context, args []string) error {
			return c.Dispatch(args, map[string]func(*Context, []string) error{"tls": diagnoseTLS})
		},
	})
}

// errDiagnosed makes the command exit non-zero after printing a failed
// handshake's diagnosis.
var errDiagnosed = errors.New("the TLS handshake failed (diagnosis above)")

func diagnoseTLS(c *Context, args []string) error {
	fs := flag.NewFlagSet("tls", flag.ContinueOnError)
	sni := fs.String("sni", "", "")
	pos, err := parseFlags(c, fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return c.Usagef("tls needs HOST:PORT")
	}
	var rep pki.TLSReport
	if err := c.Call("POST", "/api/v1/diagnose/tls", admin.DiagnoseRequest{Address: pos[0], SNI: *sni}, &rep); err != nil {
		return err
	}
	if err := c.Output(rep, func(w io.Writer) { printTLSReport(w, &rep) }); err != nil {
		return err
	}
	if !rep.OK {
		if c.JSON {
			return fmt.Errorf("%s: %s", rep.Diagnosis.Cause, rep.Diagnosis.Message)
		}
		return errDiagnosed
	}
	return nil
}

func printTLSReport(w io.Writer, rep *pki.TLSReport) {
	fmt.Fprintf(w, "Connecting to %s", rep.Address)
	if rep.ServerName != "" {
		fmt.Fprintf(w, " as %s", rep.ServerName)
	}
	if rep.NameChecked {
		fmt.Fprint(w, " (server name checked)")
	}
	fmt.Fprintln(w)
	if rep.PeerTrust != "" {
		fmt.Fprintf(w, "Peer trust: %s\n", rep.PeerTrust)
	}
	if rep.ClientCertificate != "" {
		fmt.Fprintf(w, "Own client certificate: %s\n", rep.ClientCertificate)
	} else {
		fmt.Fprintln(w, "Own client certificate: none (tls.client_certificate)")
	}
	if rep.OK {
		fmt.Fprintf(w, "Result: handshake OK (%s, %s)\n", rep.Version, rep.CipherSuite)
	} else if rep.Diagnosis != nil {
		fmt.Fprintf(w, "Result: handshake FAILED\nCause: %s\nDiagnosis: %s\n", rep.Diagnosis.Cause, rep.Diagnosis.Message)
	}
	for i := range rep.PeerChain {
		fmt.Fprintf(w, "Peer certificate %d:\n", i)
		printCertInfo(w, "  ", &rep.PeerChain[i])
	}
	if len(rep.PeerChain) == 0 {
		fmt.Fprintln(w, "Peer certificates: none received")
	}
}
