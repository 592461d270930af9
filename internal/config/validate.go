package config

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// MaxInviteTimeout is the longest sip.invite_timeout: the INVITE client
// transaction ends by itself after 64*T1 (RFC 3261 Timer B).
const MaxInviteTimeout = 32 * time.Second

// Valid values of the enumerated fields. Documented in docs/configuration.md.
var (
	Topologies        = []string{"standalone", "one-armed"}
	ListenerTransport = []string{"udp", "tcp", "tls"}
	// UnknownSources are the answers to dialogs from sources that are no peer.
	UnknownSources = []string{"reject", "drop", "accept"}
	// PeerTransports adds "any": the transport is chosen by RFC 3263 (for a
	// domain) or is UDP (for an address).
	PeerTransports    = []string{"udp", "tcp", "tls", "any"}
	TLSVersions       = []string{"1.0", "1.1", "1.2", "1.3"}
	CryptoSuites      = []string{"cleartext", "AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32", "AEAD_AES_128_GCM"}
	Requirements      = []string{"rtp", "srtp", "either"}
	RTPProfiles       = []string{"avp", "savp", "prefer-savp"}
	RoutingSteps      = []string{"dns_override", "registrar", "dial_plan"}
	RedirectModes     = []string{"forward", "follow"}
	PeerKinds         = []string{"pbx", "itsp"}
	PeerProfiles      = []string{"generic", "office365-um", "teams-direct-routing"}
	PBXTypes          = []string{"generic", "cisco-cucm", "dialogic-dmg", "asterisk", "freeswitch"}
	LogLevels         = []string{"debug", "info", "warn", "error"}
	Weekdays          = []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}
	passwordHashHeads = []string{"$argon2id$", "$2a$", "$2b$", "$2y$"}
)

// validator collects every problem; helpers take the path of the field.
type validator struct {
	errs Errors
	c    *Config
	// names of things that other sections refer to
	interfaces, privCerts, caCerts, peers, groups, timeClasses map[string]bool
}

func (v *validator) add(path, format string, args ...any) {
	v.errs = append(v.errs, FieldError{Path: path, Message: fmt.Sprintf(format, args...)})
}

// Validate checks the whole document and returns every problem found (nil
// when there is none). It is fast and has no side effects.
func (c *Config) Validate() Errors {
	v := &validator{c: c}
	v.collectNames()
	v.schema()
	v.unit()
	v.admin()
	v.network()
	v.sip()
	v.tls()
	v.certificates()
	v.media()
	v.routing()
	v.peerList()
	v.dialPlan()
	v.registrar()
	v.observe()
	v.hep()
	v.acme()
	v.ha()
	v.units()
	if len(v.errs) == 0 {
		return nil
	}
	return v.errs
}

func (v *validator) collectNames() {
	v.interfaces = map[string]bool{}
	for _, i := range v.c.Network.Interfaces {
		v.interfaces[i.Name] = true
	}
	v.privCerts = map[string]bool{}
	for _, p := range v.c.Certificates.Private {
		v.privCerts[p.Name] = true
	}
	v.caCerts = map[string]bool{}
	for _, p := range v.c.Certificates.CA {
		v.caCerts[p.Name] = true
	}
	v.peers = map[string]bool{}
	for _, p := range v.c.Peers {
		v.peers[p.Name] = true
	}
	v.groups = map[string]bool{}
	for _, g := range v.c.Media.CryptoSuiteGroups {
		v.groups[g.Name] = true
	}
	v.timeClasses = map[string]bool{}
	for _, tc := range v.c.DialPlan.TimeClasses {
		v.timeClasses[tc.Name] = true
	}
}

// --- generic helpers ---

func oneOf(s string, valid []string) bool {
	for _, x := range valid {
		if s == x {
			return true
		}
	}
	return false
}

func (v *validator) enum(path, s string, valid []string) {
	if !oneOf(s, valid) {
		if s == "" {
			v.add(path, "is empty; use one of %s", strings.Join(valid, ", "))
			return
		}
		v.add(path, "%q is not one of %s", s, strings.Join(valid, ", "))
	}
}

func (v *validator) port(path string, p int) {
	if p < 1 || p > 65535 {
		v.add(path, "%d is not a port number (1-65535)", p)
	}
}

func (v *validator) duration(path string, d Duration) {
	if d < 0 {
		v.add(path, "%s is negative", d.D())
	}
}

func (v *validator) ip(path, s string, required bool) {
	if s == "" {
		if required {
			v.add(path, "is empty; give an IP address")
		}
		return
	}
	if _, err := netip.ParseAddr(s); err != nil {
		v.add(path, "%q is not an IP address", s)
	}
}

// enumSet checks a list whose items come from valid, each at most once.
func (v *validator) enumSet(listPath string, items, valid []string) {
	seen := map[string]int{}
	for i, s := range items {
		p := fmt.Sprintf("%s[%d]", listPath, i)
		v.enum(p, s, valid)
		if j, dup := seen[s]; dup {
			v.add(p, "%q is already listed at %s[%d]", s, listPath, j)
			continue
		}
		seen[s] = i
	}
}

// ref checks that a name refers to an existing entry of another section.
func (v *validator) ref(path, name string, known map[string]bool, what string) {
	if name == "" {
		v.add(path, "is empty; name one of %s", what)
		return
	}
	if !known[name] {
		v.add(path, "%q is not defined in %s", name, what)
	}
}

// unique reports names given twice (and empty names) in a list.
func (v *validator) unique(listPath, field string, names []string) {
	seen := map[string]int{}
	for i, n := range names {
		p := fmt.Sprintf("%s[%d].%s", listPath, i, field)
		if strings.TrimSpace(n) == "" {
			v.add(p, "is empty")
			continue
		}
		if j, dup := seen[n]; dup {
			v.add(p, "%q is already used by %s[%d]", n, listPath, j)
			continue
		}
		seen[n] = i
	}
}

func (v *validator) name(path, s string) {
	if len(s) > 64 {
		v.add(path, "is longer than 64 characters")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == '/' {
			v.add(path, "%q contains a control character or '/'", s)
			return
		}
	}
}

// hostname accepts DNS names (RFC 1123 labels).
func hostname(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, r := range l {
			if !(r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
				return false
			}
		}
	}
	return true
}

func (v *validator) host(path, s string, required bool) {
	if s == "" {
		if required {
			v.add(path, "is empty; give a host name or IP address")
		}
		return
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return
	}
	if !hostname(s) {
		v.add(path, "%q is not a host name or IP address", s)
	}
}

// hostPort accepts host, host:port, [v6] and [v6]:port.
func (v *validator) hostPort(path, s string, portRequired bool) {
	if s == "" {
		v.add(path, "is empty")
		return
	}
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		if portRequired {
			v.add(path, "%q is not host:port", s)
			return
		}
		h, p = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"), ""
	}
	if h == "" && portRequired {
		// ":8443" means every address; allowed for listeners.
	} else if _, err := netip.ParseAddr(h); err != nil && !hostname(h) {
		v.add(path, "%q: %q is not a host name or IP address", s, h)
		return
	}
	if p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			v.add(path, "%q: %q is not a port number (1-65535)", s, p)
		}
	}
}

func (v *validator) sipURI(path, s string) {
	rest, ok := strings.CutPrefix(s, "sip:")
	if !ok {
		rest, ok = strings.CutPrefix(s, "sips:")
	}
	if !ok {
		v.add(path, "%q is not a sip: or sips: URI", s)
		return
	}
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		rest = rest[i+1:]
	}
	if i := strings.IndexAny(rest, ";?"); i >= 0 {
		rest = rest[:i]
	}
	if rest == "" {
		v.add(path, "%q has no host", s)
		return
	}
	v.hostPort(path, rest, false)
}

func (v *validator) noNewline(path, s string) {
	if strings.ContainsAny(s, "\r\n\x00") {
		v.add(path, "must not contain line breaks")
	}
}

// --- sections ---

func (v *validator) schema() {
	if v.c.Schema != SchemaVersion {
		v.add("schema", "version %d is not supported; this Palisade reads version %d", v.c.Schema, SchemaVersion)
	}
}

func (v *validator) unit() {
	v.noNewline("unit.name", v.c.Unit.Name)
	v.enum("unit.topology", v.c.Unit.Topology, Topologies)
	if v.c.Unit.Topology == "one-armed" && len(v.c.Network.Interfaces) != 1 {
		v.add("network.interfaces", "the one-armed topology uses exactly one interface, not %d", len(v.c.Network.Interfaces))
	}
}

func (v *validator) admin() {
	a := v.c.Admin
	// Port 0 (any free port) is allowed here for test units; SIP listeners
	// need real ports because peers must know them.
	v.hostPort("admin.listen", strings.TrimSuffix(a.Listen, ":0")+portIfZero(a.Listen), true)
	if a.PasswordHash != "" {
		ok := false
		for _, h := range passwordHashHeads {
			ok = ok || strings.HasPrefix(a.PasswordHash, h)
		}
		if !ok {
			v.add("admin.password_hash", "is not an argon2id or bcrypt hash (the unit stores the password as a hash, never in clear)")
		}
	}
	for i, n := range a.AllowedNetworks {
		if _, err := netip.ParsePrefix(n); err != nil {
			v.add(fmt.Sprintf("admin.allowed_networks[%d]", i), "%q is not a network in CIDR form (e.g. 10.0.0.0/8)", n)
		}
	}
	v.duration("admin.session_timeout", a.SessionTimeout)
	if a.Certificate != "" {
		v.ref("admin.certificate", a.Certificate, v.privCerts, "certificates.private")
	}
}

func portIfZero(listen string) string {
	if strings.HasSuffix(listen, ":0") {
		return ":1"
	}
	return ""
}

func (v *validator) network() {
	n := v.c.Network
	if len(n.Interfaces) == 0 {
		v.add("network.interfaces", "is empty; the unit needs at least one interface")
	}
	names := make([]string, len(n.Interfaces))
	for i, in := range n.Interfaces {
		p := fmt.Sprintf("network.interfaces[%d]", i)
		names[i] = in.Name
		v.name(p+".name", in.Name)
		v.ip(p+".address", in.Address, true)
		v.ip(p+".advertised_address", in.AdvertisedAddress, false)
		if in.FQDN != "" && !hostname(in.FQDN) {
			v.add(p+".fqdn", "%q is not a host name", in.FQDN)
		}
	}
	v.unique("network.interfaces", "name", names)
	v.ip("network.gateway", n.Gateway, false)
	for i, s := range n.DNSServers {
		p := fmt.Sprintf("network.dns_servers[%d]", i)
		if _, err := netip.ParseAddr(s); err == nil {
			continue
		}
		if ap, err := netip.ParseAddrPort(s); err != nil || ap.Port() == 0 {
			v.add(p, "%q is not an IP address or IP:port", s)
		}
	}
}

func (v *validator) sip() {
	s := v.c.SIP
	type sock struct {
		addr, transport string
		port            int
	}
	seen := map[sock]int{}
	addrOf := map[string]string{}
	for _, in := range v.c.Network.Interfaces {
		addrOf[in.Name] = in.Address
	}
	for i, l := range s.Listeners {
		p := fmt.Sprintf("sip.listeners[%d]", i)
		v.ref(p+".interface", l.Interface, v.interfaces, "network.interfaces")
		v.enum(p+".transport", l.Transport, ListenerTransport)
		v.port(p+".port", l.Port)
		if l.Transport == "tls" {
			if l.Certificate == "" {
				v.add(p+".certificate", "is empty; a TLS listener needs a certificate from certificates.private")
			} else {
				v.ref(p+".certificate", l.Certificate, v.privCerts, "certificates.private")
			}
		} else if l.Certificate != "" {
			v.ref(p+".certificate", l.Certificate, v.privCerts, "certificates.private")
		}
		// TCP and TLS share the kernel's TCP port space.
		proto := l.Transport
		if proto == "tls" {
			proto = "tcp"
		}
		k := sock{addrOf[l.Interface], proto, l.Port}
		if j, dup := seen[k]; dup && v.interfaces[l.Interface] {
			v.add(p, "uses the same address, protocol and port as sip.listeners[%d]", j)
		} else {
			seen[k] = i
		}
	}
	methods := map[string]int{}
	for i, m := range s.AllowedMethods {
		p := fmt.Sprintf("sip.allowed_methods[%d]", i)
		if !methodRE.MatchString(m) {
			v.add(p, "%q is not a SIP method name (upper-case letters, e.g. INVITE)", m)
		} else if j, dup := methods[m]; dup {
			v.add(p, "%q is already listed at sip.allowed_methods[%d]", m, j)
		}
		methods[m] = i
	}
	v.noNewline("sip.user_agent", s.UserAgent)
	if s.MaxForwards < 1 || s.MaxForwards > 255 {
		v.add("sip.max_forwards", "%d is outside 1-255", s.MaxForwards)
	}
	v.duration("sip.no_answer_timeout", s.NoAnswerTimeout)
	v.duration("sip.invite_timeout", s.InviteTimeout)
	if s.InviteTimeout.D() > MaxInviteTimeout {
		v.add("sip.invite_timeout", "%s is longer than the SIP transaction timeout (%s), so it would never fire; use 0 to leave it to the transaction timeout", s.InviteTimeout.D(), MaxInviteTimeout)
	}
	if s.UnknownSource != "" {
		v.enum("sip.unknown_source", s.UnknownSource, UnknownSources)
	}
	for i, n := range s.RestrictedInterfaces {
		v.ref(fmt.Sprintf("sip.restricted_interfaces[%d]", i), n, v.interfaces, "network.interfaces")
	}
	for _, f := range []struct {
		path string
		n    int
	}{{"sip.max_calls", s.MaxCalls}, {"sip.max_call_rate", s.MaxCallRate}, {"sip.source_rate_limit", s.SourceRateLimit}} {
		if f.n < 0 {
			v.add(f.path, "%d is negative; use 0 for no limit", f.n)
		}
	}
	v.duration("sip.source_block_time", s.SourceBlockTime)
}

func tlsVersionIndex(s string) int {
	for i, x := range TLSVersions {
		if x == s {
			return i
		}
	}
	return -1
}

func (v *validator) tls() {
	t := v.c.TLS
	for i, n := range t.CACertificates {
		v.ref(fmt.Sprintf("tls.ca_certificates[%d]", i), n, v.caCerts, "certificates.ca")
	}
	if t.ClientCertificate != "" {
		v.ref("tls.client_certificate", t.ClientCertificate, v.privCerts, "certificates.private")
	}
	v.enum("tls.min_version", t.MinVersion, TLSVersions)
	v.enum("tls.max_version", t.MaxVersion, TLSVersions)
	if lo, hi := tlsVersionIndex(t.MinVersion), tlsVersionIndex(t.MaxVersion); lo >= 0 && hi >= 0 && lo > hi {
		v.add("tls.min_version", "%s is above tls.max_version %s", t.MinVersion, t.MaxVersion)
	}
	v.duration("tls.handshake_timeout", t.HandshakeTimeout)
	v.duration("tls.idle_timeout", t.IdleTimeout)
}

var (
	fingerprintRE = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)
	methodRE      = regexp.MustCompile(`^[A-Z][A-Z0-9_-]*$`)
)

func (v *validator) certificates() {
	c := v.c.Certificates
	names := make([]string, len(c.Private))
	for i, p := range c.Private {
		names[i] = p.Name
		v.name(fmt.Sprintf("certificates.private[%d].name", i), p.Name)
		if p.Fingerprint != "" && !fingerprintRE.MatchString(p.Fingerprint) {
			v.add(fmt.Sprintf("certificates.private[%d].fingerprint", i), "is not a SHA-256 fingerprint (64 hex digits)")
		}
		v.name(fmt.Sprintf("certificates.private[%d].material", i), p.Material)
	}
	v.unique("certificates.private", "name", names)
	names = make([]string, len(c.CA))
	for i, p := range c.CA {
		names[i] = p.Name
		v.name(fmt.Sprintf("certificates.ca[%d].name", i), p.Name)
		if p.Fingerprint != "" && !fingerprintRE.MatchString(p.Fingerprint) {
			v.add(fmt.Sprintf("certificates.ca[%d].fingerprint", i), "is not a SHA-256 fingerprint (64 hex digits)")
		}
		if p.CRL != "" && !fingerprintRE.MatchString(p.CRL) {
			v.add(fmt.Sprintf("certificates.ca[%d].crl", i), "is not a SHA-256 digest (64 hex digits)")
		}
	}
	v.unique("certificates.ca", "name", names)
}

func (v *validator) media() {
	m := v.c.Media
	v.port("media.port_min", m.PortMin)
	v.port("media.port_max", m.PortMax)
	if m.PortMin%2 != 0 {
		v.add("media.port_min", "%d is odd; RTP uses even ports (RTCP the odd one above)", m.PortMin)
	}
	if m.PortMin >= m.PortMax {
		v.add("media.port_max", "%d is not above media.port_min %d", m.PortMax, m.PortMin)
	}
	names := make([]string, len(m.CryptoSuiteGroups))
	for i, g := range m.CryptoSuiteGroups {
		p := fmt.Sprintf("media.crypto_suite_groups[%d]", i)
		names[i] = g.Name
		v.name(p+".name", g.Name)
		if len(g.Suites) == 0 {
			v.add(p+".suites", "is empty; list at least one suite")
		}
		v.enumSet(p+".suites", g.Suites, CryptoSuites)
	}
	v.unique("media.crypto_suite_groups", "name", names)
	policy := func(p, group, req string) {
		v.ref(p+".group", group, v.groups, "media.crypto_suite_groups")
		v.enum(p+".requirement", req, Requirements)
		v.policyMeets(p+".requirement", group, req, "")
	}
	ifaces := map[string]int{}
	for i, pol := range m.Policies {
		p := fmt.Sprintf("media.policies[%d]", i)
		v.ref(p+".interface", pol.Interface, v.interfaces, "network.interfaces")
		if j, dup := ifaces[pol.Interface]; dup {
			v.add(p+".interface", "%q already has a policy at media.policies[%d]", pol.Interface, j)
		} else {
			ifaces[pol.Interface] = i
		}
		policy(p, pol.Group, pol.Requirement)
	}
	policy("media.default_policy", m.DefaultPolicy.Group, m.DefaultPolicy.Requirement)
	v.enum("media.default_policy.rtp_profile", m.DefaultPolicy.RTPProfile, RTPProfiles)
	v.duration("media.inactivity_timeout", m.InactivityTimeout)
	v.duration("media.batch_interval", m.BatchInterval)
	if m.BatchInterval > MaxBatchInterval {
		v.add("media.batch_interval", "%s is above %s (every packet may wait this long)", m.BatchInterval.D(), MaxBatchInterval.D())
	}
	if m.RealtimePriority < 0 || m.RealtimePriority > 99 {
		v.add("media.realtime_priority", "%d is not between 0 (normal scheduling) and 99", m.RealtimePriority)
	}
}

// MaxBatchInterval bounds media.batch_interval: a relayed packet may wait
// up to that long.
const MaxBatchInterval = Duration(5 * time.Millisecond)

func (v *validator) registrar() {
	r := v.c.Registrar
	if r.Enabled && len(r.Domains) == 0 {
		v.add("registrar.domains", "is empty, but the registrar is enabled")
	}
	doms := make([]string, len(r.Domains))
	for i, d := range r.Domains {
		doms[i] = strings.ToLower(d)
		if _, err := netip.ParseAddr(d); err != nil && !hostname(d) {
			v.add(fmt.Sprintf("registrar.domains[%d]", i), "%q is not a domain name or IP address", d)
		}
	}
	// unique() reports empty entries too.
	v.uniqueStrings("registrar.domains", doms)
	users := make([]string, len(r.Users))
	for i, u := range r.Users {
		users[i] = u.Username
		p := fmt.Sprintf("registrar.users[%d]", i)
		v.noNewline(p+".username", u.Username)
		if u.Password == "" {
			v.add(p+".password", "is empty")
		}
	}
	v.unique("registrar.users", "username", users)
	if r.MinExpires < 1 {
		v.add("registrar.min_expires", "%d is below 1 second", r.MinExpires)
	}
	if r.MaxExpires < r.MinExpires {
		v.add("registrar.max_expires", "%d is below registrar.min_expires %d", r.MaxExpires, r.MinExpires)
	}
}

// uniqueStrings is unique() for a list of plain strings.
func (v *validator) uniqueStrings(listPath string, items []string) {
	seen := map[string]int{}
	for i, s := range items {
		p := fmt.Sprintf("%s[%d]", listPath, i)
		if s == "" {
			v.add(p, "is empty")
			continue
		}
		if j, dup := seen[s]; dup {
			v.add(p, "%q is already listed at %s[%d]", s, listPath, j)
			continue
		}
		seen[s] = i
	}
}

func (v *validator) observe() {
	o := v.c.Observe
	if o.TraceBufferCalls < 0 || o.TraceBufferCalls > 1_000_000 {
		v.add("observe.trace_buffer_calls", "%d is outside 0-1000000", o.TraceBufferCalls)
	}
	v.duration("observe.trace_failed_keep", o.TraceFailedKeep)
	v.duration("observe.cdr_retention", o.CDRRetention)
	v.enum("observe.log_level", o.LogLevel, LogLevels)
	v.syslog()
}
