// Package setup is the first-time setup tool (SPEC §2.1, flags of §4.2):
// it asks for (or takes from flags) the few facts a new unit needs, builds
// the first configuration from them and a profile, and writes it into a data
// directory, uploads it to a running unit (apply + confirm), or writes a
// backup file.
package setup

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/palisade-sbc/palisade/internal/profiles"
)

// Answers are everything setup asks. Field names follow the flags.
type Answers struct {
	UnitName      string
	AdminPassword string
	Topology      string // standalone | one-armed
	InsideAddress string // IP or IP/prefix
	OutsideAddr   string // IP
	OutsideFQDN   string
	Gateway       string
	DNS           string // IP[:PORT][,IP[:PORT]...]
	PBXType       string
	PBXAddress    string // HOST[:PORT]
	PBXTransport  string
	ITSP          string // profile name
	ITSPDomain    string
	ITSPAddress   string
	ITSPTransport string
	ITSPPrefix    string
	ITSPUsername  string
	ITSPPassword  string
	ITSPRegister  bool
	Certificate   string
}

// Options are the flags that say what to do with the configuration.
type Options struct {
	Data           string
	Upload         string
	UploadPassword string
	Insecure       bool
	Backup         string
	Passphrase     string
	NonInteractive bool
}

// Choices offered for the enumerated answers.
var (
	Topologies = []string{"standalone", "one-armed"}
	PBXTypes   = []string{"generic", "cisco-cucm", "dialogic-dmg", "asterisk", "freeswitch"}
	Transports = []string{"udp", "tcp", "tls"}
)

// bindFlags registers the §4.2 flags (and setup's own) on fs.
func bindFlags(fs *flag.FlagSet, a *Answers, o *Options) {
	fs.StringVar(&o.Data, "data", "", "data directory to write the configuration into (default ./palisade-data or $PALISADE_DATA)")
	fs.StringVar(&o.Upload, "upload", "", "URL of a running unit's admin (https://host:8443): upload, apply and confirm the configuration there")
	fs.StringVar(&o.UploadPassword, "upload-password", "", "admin password of the running unit for --upload (default $PALISADE_PASSWORD, else --admin-password)")
	fs.BoolVar(&o.Insecure, "insecure", false, "with --upload: do not verify the unit's HTTPS certificate (a new unit's is self-signed)")
	fs.StringVar(&o.Backup, "backup", "", "also write a backup file of the configuration")
	fs.StringVar(&o.Passphrase, "backup-passphrase", "", "passphrase that encrypts keys in the --backup file")
	fs.BoolVar(&o.NonInteractive, "non-interactive", false, "never prompt; missing required values are an error")

	fs.StringVar(&a.UnitName, "name", "", "unit name shown in the admin")
	fs.StringVar(&a.AdminPassword, "admin-password", "", "administrator password")
	fs.StringVar(&a.Topology, "topology", "", "standalone | one-armed")
	fs.StringVar(&a.InsideAddress, "inside-address", "", "IP[/PREFIX] of the inside interface")
	fs.StringVar(&a.OutsideAddr, "outside-address", "", "IP of the outside interface")
	fs.StringVar(&a.OutsideFQDN, "outside-fqdn", "", "FQDN of the outside interface (in its certificate)")
	fs.StringVar(&a.Gateway, "gateway", "", "default gateway IP")
	fs.StringVar(&a.DNS, "dns", "", "DNS servers: IP[:PORT][,IP[:PORT]...]")
	fs.StringVar(&a.PBXType, "pbx-type", "", strings.Join(PBXTypes, "|"))
	fs.StringVar(&a.PBXAddress, "pbx-address", "", "HOST[:PORT] of the IP-PBX")
	fs.StringVar(&a.PBXTransport, "pbx-transport", "", "udp|tcp|tls towards the PBX")
	fs.StringVar(&a.ITSP, "itsp", "", strings.Join(profiles.Names(), "|"))
	fs.StringVar(&a.ITSPDomain, "itsp-domain", "", "SIP domain of the ITSP")
	fs.StringVar(&a.ITSPAddress, "itsp-address", "", "HOST[:PORT] of the ITSP")
	fs.StringVar(&a.ITSPTransport, "itsp-transport", "", "udp|tcp|tls towards the ITSP")
	fs.StringVar(&a.ITSPPrefix, "itsp-prefix", "", "digits that route a call to the ITSP (stripped)")
	fs.StringVar(&a.ITSPUsername, "itsp-username", "", "account username at the ITSP")
	fs.StringVar(&a.ITSPPassword, "itsp-password", "", "account password at the ITSP")
	fs.BoolVar(&a.ITSPRegister, "itsp-register", false, "register the account to the ITSP")
	fs.StringVar(&a.Certificate, "certificate", "", "own certificate for the outside TLS listener")
}

// fillDefaults sets the defaults of answers that have one.
func (a *Answers) fillDefaults() {
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&a.UnitName, "palisade")
	def(&a.Topology, "standalone")
	def(&a.PBXType, "generic")
	def(&a.PBXTransport, "udp")
	def(&a.ITSP, profiles.Generic)
	def(&a.Certificate, "default")
}

// fillTransportDefault sets the ITSP transport from the profile once the
// profile is known (TLS for the Microsoft services, UDP otherwise).
func (a *Answers) fillTransportDefault() {
	if a.ITSPTransport == "" {
		a.ITSPTransport = a.defaultITSPTransport()
	}
}

func (a *Answers) defaultITSPTransport() string {
	if a.ITSP == profiles.Office365UM || a.ITSP == profiles.TeamsDirectRouting {
		return "tls"
	}
	return "udp"
}

// needsITSPTarget reports whether the profile needs a domain or address
// (Teams knows its own).
func (a *Answers) needsITSPTarget() bool { return a.ITSP != profiles.TeamsDirectRouting }

// Check validates every answer and returns one error per problem, naming
// the flag, so that non-interactive runs list everything at once.
func (a *Answers) Check() error {
	var errs []error
	add := func(flag string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("--%s: %w", flag, err))
		}
	}
	var missing []string
	req := func(flag, v string) bool {
		if v == "" {
			missing = append(missing, "--"+flag)
			return false
		}
		return true
	}
	// A short password from a flag is the script's choice (Run warns);
	// the prompt insists on CheckPassword.
	req("admin-password", a.AdminPassword)
	add("topology", oneOf(a.Topology, Topologies))
	if req("inside-address", a.InsideAddress) {
		add("inside-address", CheckAddrPrefix(a.InsideAddress))
	}
	if a.Topology != "one-armed" && req("outside-address", a.OutsideAddr) {
		add("outside-address", CheckIP(a.OutsideAddr))
	}
	add("outside-fqdn", optional(a.OutsideFQDN, CheckFQDN))
	add("gateway", optional(a.Gateway, CheckIP))
	add("dns", optional(a.DNS, CheckDNS))
	add("pbx-type", oneOf(a.PBXType, PBXTypes))
	if req("pbx-address", a.PBXAddress) {
		add("pbx-address", CheckHostPort(a.PBXAddress))
	}
	add("pbx-transport", oneOf(a.PBXTransport, Transports))
	add("itsp", oneOf(a.ITSP, profiles.Names()))
	if a.ITSP == profiles.TeamsDirectRouting {
		req("outside-fqdn", a.OutsideFQDN)
	}
	if a.needsITSPTarget() {
		switch {
		case a.ITSPDomain != "" && a.ITSPAddress != "":
			errs = append(errs, errors.New("--itsp-domain and --itsp-address: give one, not both"))
		case a.ITSPDomain != "":
			add("itsp-domain", CheckFQDN(a.ITSPDomain))
		case a.ITSPAddress != "":
			add("itsp-address", CheckHostPort(a.ITSPAddress))
		default:
			missing = append(missing, "--itsp-domain or --itsp-address")
		}
	}
	add("itsp-transport", oneOf(a.ITSPTransport, Transports))
	add("itsp-prefix", optional(a.ITSPPrefix, CheckDigits))
	if a.ITSPRegister || a.ITSPPassword != "" {
		req("itsp-username", a.ITSPUsername)
	}
	if a.ITSPUsername != "" {
		req("itsp-password", a.ITSPPassword)
	}
	add("certificate", CheckName(a.Certificate))
	if len(missing) > 0 {
		errs = append([]error{fmt.Errorf("missing required values: %s", strings.Join(missing, ", "))}, errs...)
	}
	return errors.Join(errs...)
}

// CheckPassword refuses passwords too short to protect the admin.
func CheckPassword(s string) error {
	if len(s) < 8 {
		return errors.New("the password needs at least 8 characters")
	}
	return nil
}

// CheckIP accepts an IPv4 or IPv6 address.
func CheckIP(s string) error {
	if _, err := netip.ParseAddr(s); err != nil {
		return fmt.Errorf("%q is not an IP address", s)
	}
	return nil
}

// CheckAddrPrefix accepts IP or IP/PREFIX.
func CheckAddrPrefix(s string) error {
	if strings.Contains(s, "/") {
		if _, err := netip.ParsePrefix(s); err != nil {
			return fmt.Errorf("%q is not IP/PREFIX (e.g. 10.0.0.5/24)", s)
		}
		return nil
	}
	return CheckIP(s)
}

var (
	fqdnRE = regexp.MustCompile(`^(?i)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?\.?$`)
	// A bare host name (one label); like the configuration, no hyphen at
	// either end (FuzzCheck found "-" accepted here and refused there).
	hostLabelRE = regexp.MustCompile(`^(?i)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	digitsRE    = regexp.MustCompile(`^[0-9*#+]{1,16}$`)
)

// CheckFQDN accepts a fully qualified host name.
func CheckFQDN(s string) error {
	if len(s) > 253 || !fqdnRE.MatchString(s) {
		return fmt.Errorf("%q is not a fully qualified domain name (e.g. sbc.example.com)", s)
	}
	return nil
}

// CheckHostPort accepts HOST or HOST:PORT where HOST is an IP or a name.
func CheckHostPort(s string) error {
	host, port := s, ""
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q: the port must be 1-65535", s)
		}
	}
	if CheckIP(host) == nil || CheckFQDN(host) == nil || hostLabelRE.MatchString(host) {
		return nil
	}
	return fmt.Errorf("%q is not HOST[:PORT]", s)
}

// CheckDNS accepts IP[:PORT][,IP[:PORT]...].
func CheckDNS(s string) error {
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if CheckIP(part) == nil {
			continue
		}
		ap, err := netip.ParseAddrPort(part)
		if err != nil || ap.Port() == 0 {
			return fmt.Errorf("%q is not IP or IP:PORT", part)
		}
	}
	return nil
}

// CheckDigits accepts a dial prefix.
func CheckDigits(s string) error {
	if !digitsRE.MatchString(s) {
		return fmt.Errorf("%q: a prefix is 1-16 of 0-9 * # +", s)
	}
	return nil
}

// CheckName accepts a certificate name.
func CheckName(s string) error {
	if s == "" || len(s) > 64 || strings.ContainsAny(s, "/\\\x00") {
		return fmt.Errorf("%q is not a certificate name (1-64 characters, no slashes)", s)
	}
	return nil
}

func oneOf(s string, set []string) error {
	if !slices.Contains(set, s) {
		return fmt.Errorf("%q is not one of %s", s, strings.Join(set, ", "))
	}
	return nil
}

func optional(s string, check func(string) error) error {
	if s == "" {
		return nil
	}
	return check(s)
}
