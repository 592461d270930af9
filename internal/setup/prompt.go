package setup

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/palisade-sbc/palisade/internal/profiles"
)

// prompter asks questions on a terminal (or any reader/writer in tests).
type prompter struct {
	in  *bufio.Reader
	out io.Writer
	// tty is the terminal whose echo is switched off for passwords; nil
	// when input is not a terminal.
	tty *os.File
	// addrs are the machine's interface addresses, offered as the inside
	// and outside addresses.
	addrs []HostAddr
}

var errAborted = errors.New("setup aborted")

// IsTerminal reports whether f is a terminal.
func IsTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

func (p *prompter) line() (string, error) {
	s, err := p.in.ReadString('\n')
	if err != nil && (s == "" || !errors.Is(err, io.EOF)) {
		if errors.Is(err, io.EOF) {
			return "", errAborted
		}
		return "", err
	}
	return strings.TrimSpace(s), nil
}

// ask shows label with the default in brackets and re-asks until check
// accepts the answer. An empty answer takes the default; optional questions
// accept "-" to clear a default.
func (p *prompter) ask(label, def string, optional bool, check func(string) error) (string, error) {
	for {
		if def != "" {
			fmt.Fprintf(p.out, "%s [%s]: ", label, def)
		} else if optional {
			fmt.Fprintf(p.out, "%s (optional): ", label)
		} else {
			fmt.Fprintf(p.out, "%s: ", label)
		}
		s, err := p.line()
		if err != nil {
			return "", err
		}
		if s == "" {
			s = def
		}
		if s == "-" && optional {
			s = ""
		}
		if s == "" {
			if optional {
				return "", nil
			}
			fmt.Fprintln(p.out, "  ! an answer is required")
			continue
		}
		if check != nil {
			if err := check(s); err != nil {
				fmt.Fprintf(p.out, "  ! %v\n", err)
				continue
			}
		}
		return s, nil
	}
}

func (p *prompter) choose(label, def string, set []string) (string, error) {
	return p.ask(fmt.Sprintf("%s (%s)", label, strings.Join(set, ", ")), def, false, func(s string) error { return oneOf(s, set) })
}

func (p *prompter) yesNo(label string, def bool) (bool, error) {
	d := "n"
	if def {
		d = "y"
	}
	s, err := p.ask(label+" (y/n)", d, false, func(s string) error {
		switch strings.ToLower(s) {
		case "y", "yes", "n", "no":
			return nil
		}
		return errors.New("answer y or n")
	})
	return strings.HasPrefix(strings.ToLower(s), "y"), err
}

// secret reads a password without echo; with a default it may be kept by
// pressing Enter.
func (p *prompter) secret(label string, hasDefault bool, check func(string) error, confirm bool) (string, error) {
	for {
		if hasDefault {
			fmt.Fprintf(p.out, "%s [keep the one given]: ", label)
		} else {
			fmt.Fprintf(p.out, "%s: ", label)
		}
		s, err := p.noEcho()
		if err != nil {
			return "", err
		}
		if s == "" && hasDefault {
			return "", nil
		}
		if err := check(s); err != nil {
			fmt.Fprintf(p.out, "  ! %v\n", err)
			continue
		}
		if confirm {
			fmt.Fprint(p.out, "Repeat the password: ")
			again, err := p.noEcho()
			if err != nil {
				return "", err
			}
			if again != s {
				fmt.Fprintln(p.out, "  ! the two passwords differ; try again")
				continue
			}
		}
		return s, nil
	}
}

func (p *prompter) noEcho() (string, error) {
	if p.tty != nil {
		fd := int(p.tty.Fd())
		if old, err := unix.IoctlGetTermios(fd, unix.TCGETS); err == nil {
			t := *old
			t.Lflag &^= unix.ECHO
			t.Lflag |= unix.ICANON | unix.ECHONL
			if unix.IoctlSetTermios(fd, unix.TCSETS, &t) == nil {
				defer unix.IoctlSetTermios(fd, unix.TCSETS, old)
			}
		}
	}
	return p.line()
}

func (p *prompter) heading(n int, title, help string) {
	fmt.Fprintf(p.out, "\n== %d. %s ==\n", n, title)
	if help != "" {
		fmt.Fprintln(p.out, help)
	}
}

// interview asks every topic of the seed's startup tool in turn, with the
// flags given on the command line as defaults.
func (p *prompter) interview(a *Answers, o *Options) error {
	var err error
	step := func(fn func() error) {
		if err == nil {
			err = fn()
		}
	}
	str := func(dst *string, label string, optional bool, check func(string) error) {
		step(func() error {
			v, e := p.ask(label, *dst, optional, check)
			*dst = v
			return e
		})
	}

	fmt.Fprintln(p.out, "Palisade first-time setup. Press Enter to take the value in brackets; '-' clears an optional value.")
	p.heading(1, "Unit and administrator", "The password protects the web admin, the API and the CLI over the network.")
	str(&a.UnitName, "Unit name", false, nil)
	step(func() error {
		v, e := p.secret("Administrator password", a.AdminPassword != "", CheckPassword, true)
		if v != "" {
			a.AdminPassword = v
		}
		return e
	})

	p.heading(2, "Network topology", "standalone: inside and outside interfaces; one-armed: one interface for both.")
	step(func() error { v, e := p.choose("Topology", a.Topology, Topologies); a.Topology = v; return e })
	inside, outside := addressDefaults(p.addrs)
	if err == nil && inside != "" {
		fmt.Fprintf(p.out, "Addresses on this machine: %s\n", describeAddrs(p.addrs))
	}
	if a.InsideAddress == "" {
		a.InsideAddress = inside
	}
	if err == nil && a.Topology == "one-armed" {
		// The public address of a one-armed unit is usually a NAT's, not
		// one of the machine's: no default.
		str(&a.InsideAddress, "Interface address (IP or IP/PREFIX)", false, CheckAddrPrefix)
		str(&a.OutsideAddr, "Public (advertised) address", true, CheckIP)
	} else {
		if a.OutsideAddr == "" {
			a.OutsideAddr = outside
		}
		str(&a.InsideAddress, "Inside address (IP or IP/PREFIX)", false, CheckAddrPrefix)
		str(&a.OutsideAddr, "Outside address", false, CheckIP)
	}
	str(&a.OutsideFQDN, "Outside FQDN (the name in the unit's certificate)", a.ITSP != profiles.TeamsDirectRouting, CheckFQDN)
	str(&a.Gateway, "Default gateway", true, CheckIP)
	str(&a.DNS, "DNS servers (IP[:PORT],...)", true, CheckDNS)

	p.heading(3, "IP-PBX", "The PBX or VoIP gateway on the inside.")
	step(func() error { v, e := p.choose("PBX type", a.PBXType, PBXTypes); a.PBXType = v; return e })
	str(&a.PBXAddress, "PBX address (HOST[:PORT])", false, CheckHostPort)
	step(func() error {
		v, e := p.choose("Transport to the PBX", a.PBXTransport, Transports)
		a.PBXTransport = v
		return e
	})

	p.heading(4, "ITSP", "The SIP trunk or cloud service on the outside.")
	step(func() error { v, e := p.choose("Profile", a.ITSP, profiles.Names()); a.ITSP = v; return e })
	if err == nil && a.ITSP == profiles.TeamsDirectRouting && a.OutsideFQDN == "" {
		str(&a.OutsideFQDN, "Outside FQDN (required for Teams)", false, CheckFQDN)
	}
	if err == nil && a.needsITSPTarget() {
		useDomain := a.ITSPAddress == ""
		step(func() error {
			v, e := p.yesNo("Use a domain name (RFC 3263) rather than an address", useDomain)
			useDomain = v
			return e
		})
		if useDomain {
			a.ITSPAddress = ""
			str(&a.ITSPDomain, "ITSP domain", false, CheckFQDN)
		} else {
			a.ITSPDomain = ""
			str(&a.ITSPAddress, "ITSP address (HOST[:PORT])", false, CheckHostPort)
		}
	}
	if err == nil {
		a.fillTransportDefault()
	}
	step(func() error {
		v, e := p.choose("Transport to the ITSP", a.ITSPTransport, Transports)
		a.ITSPTransport = v
		return e
	})
	str(&a.ITSPPrefix, "Prefix that routes calls to the ITSP", true, CheckDigits)
	auth := a.ITSPUsername != ""
	step(func() error {
		v, e := p.yesNo("Does the ITSP require account authentication", auth)
		auth = v
		return e
	})
	if err == nil && auth {
		str(&a.ITSPUsername, "Account username", false, nil)
		step(func() error {
			v, e := p.secret("Account password", a.ITSPPassword != "", func(s string) error {
				if s == "" {
					return errors.New("a password is required")
				}
				return nil
			}, false)
			if v != "" {
				a.ITSPPassword = v
			}
			return e
		})
		step(func() error {
			v, e := p.yesNo("Register the account to the ITSP", a.ITSPRegister)
			a.ITSPRegister = v
			return e
		})
	} else if err == nil {
		a.ITSPUsername, a.ITSPPassword, a.ITSPRegister = "", "", false
	}

	p.heading(5, "Final step", "Write the configuration into a data directory, or upload it to a running unit (apply and confirm).")
	str(&a.Certificate, "Own certificate for the outside TLS listener", false, CheckName)
	upload := o.Upload != ""
	step(func() error {
		v, e := p.yesNo("Upload to a running unit and apply it there", upload)
		upload = v
		return e
	})
	if err == nil && upload {
		str(&o.Upload, "Admin URL of the unit (https://HOST:8443)", false, checkURL)
	} else if err == nil {
		o.Upload = ""
		str(&o.Data, "Data directory", false, nil)
	}
	str(&o.Backup, "Also write a backup file to", true, nil)
	if err != nil {
		return err
	}
	fmt.Fprintln(p.out)
	fmt.Fprint(p.out, a.Summary())
	ok, err := p.yesNo("Write this configuration", true)
	if err != nil {
		return err
	}
	if !ok {
		return errAborted
	}
	return nil
}

// Summary lists the answers (passwords hidden).
func (a *Answers) Summary() string {
	var b strings.Builder
	row := func(k, v string) {
		if v == "" {
			v = "-"
		}
		fmt.Fprintf(&b, "  %-22s %s\n", k, v)
	}
	row("unit", a.UnitName)
	row("topology", a.Topology)
	row("inside address", a.InsideAddress)
	row("outside address", a.OutsideAddr)
	row("outside FQDN", a.OutsideFQDN)
	row("gateway", a.Gateway)
	row("DNS", a.DNS)
	row("PBX", fmt.Sprintf("%s %s (%s)", a.PBXType, a.PBXAddress, a.PBXTransport))
	target := a.ITSPDomain + a.ITSPAddress
	if !a.needsITSPTarget() {
		target = "sip/sip2/sip3.pstnhub.microsoft.com"
	}
	row("ITSP", fmt.Sprintf("%s %s (%s)", a.ITSP, target, a.ITSPTransport))
	row("ITSP prefix", a.ITSPPrefix)
	acct := "none"
	if a.ITSPUsername != "" {
		acct = a.ITSPUsername
		if a.ITSPRegister {
			acct += ", registered"
		}
	}
	row("ITSP account", acct)
	row("certificate", a.Certificate)
	return b.String()
}
