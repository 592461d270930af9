package cli

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/palisade-sbc/palisade/internal/unit"
)

func init() {
	Register(&Command{
		Name:    "manpage",
		Summary: "print the manual page (roff) made from this help",
		Usage:   "manpage",
		Hidden:  true, // the Debian package ships its output as palisade(1)
		Run: func(c *Context, args []string) error {
			if len(args) > 0 {
				return c.Usagef("manpage takes no arguments")
			}
			return writeManPage(c.Stdout, manDate())
		},
	})
}

// manDate is $SOURCE_DATE_EPOCH (reproducible builds) or today.
func manDate() time.Time {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return time.Unix(n, 0).UTC()
		}
	}
	return time.Now().UTC()
}

// roffText escapes s for a roff text line.
func roffText(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

// writeManPage writes palisade(1): the commands with their summaries and
// synopses, the global flags, and where a packaged unit keeps its files.
func writeManPage(w io.Writer, date time.Time) error {
	ver, _ := unit.Version()
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p(`.TH PALISADE 1 "%s" "palisade %s" "Palisade manual"`, date.Format("2006-01-02"), roffText(ver))
	p(".SH NAME")
	p(`palisade \- enterprise session border controller (SIP B2BUA, media relay, PKI) in one binary`)
	p(".SH SYNOPSIS")
	p(`.B palisade`)
	p(`[\fIglobal flags\fR] \fICOMMAND\fR [\fIARGS\fR]`)
	p(".br")
	p(`.B palisade help`)
	p(`[\fICOMMAND\fR]`)
	p(".SH DESCRIPTION")
	p("Palisade stands between an IP\\-PBX (the inside: SIP over UDP or TCP, RTP) and a SIP trunk or cloud voice")
	p("service (the outside: SIP over mutual TLS, SRTP) and relays every call as a back\\-to\\-back user agent.")
	p(".B palisade run")
	p("is the unit itself; the other commands administer a unit through its admin socket in the data")
	p("directory, through its HTTPS API with")
	p(`.BR \-\-server ,`)
	p("or work on the data directory directly when no unit runs there.")
	p("Commands that change the configuration change the preliminary configuration;")
	p(`.B palisade config apply`)
	p("and")
	p(`.B palisade config confirm`)
	p("put it into service.")
	p(".SH GLOBAL FLAGS")
	p("These are accepted anywhere on the command line.")
	for _, f := range globalFlagHelp {
		p(".TP")
		if f.Arg != "" {
			p(`.BI \-\-%s " %s"`, f.Name, f.Arg)
		} else {
			p(`.B \-\-%s`, f.Name)
		}
		p("%s", roffText(f.Help))
	}
	p(".SH COMMANDS")
	for _, c := range sortedCommands() {
		if c.Hidden {
			continue
		}
		p(".SS %s", c.Name)
		p("%s.", roffText(upperFirst(c.Summary)))
		p(".PP")
		p(".nf")
		p(".RS 4")
		for _, line := range strings.Split(c.Usage, "\n") {
			p("%s", roffText("palisade "+strings.TrimSpace(line)))
		}
		p(".RE")
		p(".fi")
	}
	p(".SH ENVIRONMENT")
	p(".TP")
	p(".B PALISADE_DATA")
	p("data directory when \\-\\-data is not given.")
	p(".TP")
	p(".B PALISADE_TOKEN")
	p("API token when \\-\\-token is not given.")
	p(".SH FILES")
	p(".TP")
	p(".I /var/lib/palisade")
	p("data directory of the packaged service (configuration versions, certificates and keys, call records, admin.sock).")
	p(".TP")
	p(".I /var/lib/palisade/initial\\-admin\\-password")
	p("admin password generated on the first start.")
	p(".TP")
	p(".I /lib/systemd/system/palisade.service")
	p("the systemd unit (Type=notify, watchdog, own user palisade).")
	p(".SH EXIT STATUS")
	p("0 on success, 1 on failure (with a one\\-line reason on standard error), 2 for wrong arguments.")
	p(".SH SEE ALSO")
	p(".BR systemctl (1),")
	p(".BR journalctl (1);")
	p("/usr/share/doc/palisade/ (operations, configuration reference).")
	_, err := io.WriteString(w, b.String())
	return err
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
