// Package profiles holds the ITSP profiles (SPEC §2.6): named sets of
// settings that turn a configuration into one that works with a given
// service. The setup tool and the web admin apply them; a profile changes
// only the sections it needs and adds (or replaces) one ITSP peer.
package profiles

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
)

// Names of the shipped profiles.
const (
	Office365UM        = "office365-um"
	TeamsDirectRouting = "teams-direct-routing"
	Generic            = "generic"
)

// Answers are what the administrator told setup (or the web admin) about the
// ITSP. Empty fields take the profile's default.
type Answers struct {
	PeerName    string // name of the ITSP peer; default "itsp"
	Interface   string // interface facing the ITSP; default "outside" (or the only one)
	Domain      string // SIP domain of the ITSP (RFC 3263), or
	Address     string // host[:port] of the ITSP
	Transport   string // udp | tcp | tls
	Prefix      string // digits that select this ITSP in the dial plan
	Username    string
	Password    string
	Register    bool
	Certificate string // own certificate for the TLS listener facing the ITSP
	Model       string // shown in X-MS-SBC; default "SBC"
	Version     string // shown in X-MS-SBC; default "dev"
}

// Profile is one shipped profile.
type Profile struct {
	Name        string
	Title       string // shown in pickers
	Description string
	apply       func(cfg *config.Config, a Answers) error
}

var all = []Profile{
	{Name: Generic, Title: "Generic SIP trunk",
		Description: "Any ITSP: address or domain, transport and credentials as given; the rest left at the defaults.",
		apply:       applyGeneric},
	{Name: Office365UM, Title: "Microsoft Office 365 UM",
		Description: "Mutual TLS on 5061, SRTP outside with RTP inside (transcoding), REFER handled locally, wildcard server certificates allowed.",
		apply:       applyOffice365},
	{Name: TeamsDirectRouting, Title: "Microsoft Teams Direct Routing",
		Description: "sip, sip2, sip3.pstnhub.microsoft.com:5061 in that order, OPTIONS keepalive that needs 200 OK, FQDN in Contact and Record-Route, X-MS-SBC header, E.164 numbers with +, offers made for INVITEs without SDP, public roots and serverAuth-only certificates trusted for Teams, Microsoft's address ranges, TLS 1.2+, SRTP.",
		apply:       applyTeams},
}

// All returns the shipped profiles in display order.
func All() []Profile { return slices.Clone(all) }

// Names returns the names of the shipped profiles.
func Names() []string {
	out := make([]string, len(all))
	for i, p := range all {
		out[i] = p.Name
	}
	return out
}

// Get returns the profile with the given name.
func Get(name string) (Profile, bool) {
	for _, p := range all {
		if p.Name == name {
			return p, true
		}
	}
	return Profile{}, false
}

// ErrUnknown is returned for a profile name that is not shipped.
var ErrUnknown = errors.New("unknown profile")

// Apply changes cfg to follow the named profile with the given answers. The
// result is meant to pass config validation; Apply itself only refuses
// answers the profile cannot work without (e.g. Teams without an FQDN).
func Apply(cfg *config.Config, name string, a Answers) error {
	p, ok := Get(name)
	if !ok {
		return fmt.Errorf("%w %q (use one of %s)", ErrUnknown, name, strings.Join(Names(), ", "))
	}
	if a.PeerName == "" {
		a.PeerName = "itsp"
	}
	if a.Interface == "" {
		a.Interface = outsideName(cfg)
	}
	if err := p.apply(cfg, a); err != nil {
		return fmt.Errorf("profile %s: %w", name, err)
	}
	return nil
}

// outsideName is the interface facing the ITSP: "outside", or the only
// interface of a one-armed unit.
func outsideName(cfg *config.Config) string {
	for _, i := range cfg.Network.Interfaces {
		if i.Name == "outside" {
			return i.Name
		}
	}
	if len(cfg.Network.Interfaces) > 0 {
		return cfg.Network.Interfaces[0].Name
	}
	return "outside"
}

// keepalive is the OPTIONS interval the profiles use towards their ITSP.
const keepalive = config.Duration(60 * time.Second)

func applyGeneric(cfg *config.Config, a Answers) error {
	if a.Domain == "" && a.Address == "" {
		return errors.New("the ITSP needs a domain or an address")
	}
	if a.Transport == "" {
		a.Transport = "udp"
	}
	port := 5060
	if a.Transport == "tls" {
		port = 5061
	}
	ensureListener(cfg, config.Listener{Interface: a.Interface, Transport: a.Transport, Port: port, Certificate: tlsCert(cfg, a)})
	p := peer(a, Generic, a.Transport, keepalive)
	// SRTP where the trunk offers it, RTP otherwise.
	group := "RTP"
	if a.Transport == "tls" {
		group = "SRTP"
	}
	setPeerPolicy(cfg, &p, config.MediaPolicy{Interface: a.Interface, Group: group, Requirement: "either"})
	setPeer(cfg, p)
	return nil
}

func applyOffice365(cfg *config.Config, a Answers) error {
	if a.Domain == "" && a.Address == "" {
		return errors.New("Office 365 UM needs the forwarding address of the UM IP gateway (e.g. <id>.um.outlook.com) as domain")
	}
	ensureListener(cfg, config.Listener{Interface: a.Interface, Transport: "tls", Port: 5061,
		Certificate: tlsCert(cfg, a), RequireClientCert: true})
	if a.Certificate != "" {
		cfg.TLS.ClientCertificate = a.Certificate
	}
	cfg.TLS.CheckServerDomain = true
	// UM presents *.um.outlook.com.
	cfg.TLS.AllowWildcardServerCertificates = true
	raiseMinTLS(cfg, "1.2")
	p := peer(a, Office365UM, "tls", keepalive)
	srtpOutside(cfg, &p)
	// UM transfers with REFER to targets inside or outside; the unit acts on it.
	cfg.Routing.Refer.Always = true
	setPeer(cfg, p)
	return nil
}

// Teams Direct Routing signalling proxies, tried in this order.
var teamsProxies = []string{"sip.pstnhub.microsoft.com", "sip2.pstnhub.microsoft.com", "sip3.pstnhub.microsoft.com"}

func applyTeams(cfg *config.Config, a Answers) error {
	iface := findInterface(cfg, a.Interface)
	if iface == nil || iface.FQDN == "" {
		return fmt.Errorf("Teams Direct Routing needs the FQDN of interface %q (network.interfaces[].fqdn): it goes into Contact and Record-Route and must match the certificate", a.Interface)
	}
	ensureListener(cfg, config.Listener{Interface: a.Interface, Transport: "tls", Port: 5061,
		Certificate: tlsCert(cfg, a), RequireClientCert: true})
	if a.Certificate != "" {
		cfg.TLS.ClientCertificate = a.Certificate
	}
	cfg.TLS.CheckServerDomain = true
	cfg.TLS.AllowWildcardServerCertificates = true
	raiseMinTLS(cfg, "1.2")
	cfg.SIP.TopologyHiding = true
	// Teams transfers with REFER; act on it when the PBX cannot.
	cfg.Routing.Refer.NoReferSupport = true

	ov := config.DNSOverride{Domain: teamsProxies[0]}
	for i, h := range teamsProxies {
		ov.Targets = append(ov.Targets, config.Target{Host: h, Port: 5061, Transport: "tls", Priority: i + 1, Weight: 1})
	}
	cfg.Routing.DNSOverride = slices.DeleteFunc(cfg.Routing.DNSOverride, func(o config.DNSOverride) bool { return o.Domain == ov.Domain })
	cfg.Routing.DNSOverride = append(cfg.Routing.DNSOverride, ov)

	a.Domain, a.Address = teamsProxies[0], ""
	p := peer(a, TeamsDirectRouting, "tls", keepalive)
	model, version := a.Model, a.Version
	if model == "" {
		model = "SBC"
	}
	// A development build reports "(devel)"; the header wants a plain token.
	version = strings.Trim(version, "()")
	if version == "" {
		version = "dev"
	}
	p.Headers = map[string]string{"X-MS-SBC": "Palisade/" + model + "/" + version}
	p.Trunk = teamsTrunk()
	srtpOutside(cfg, &p)
	setPeer(cfg, p)
	return nil
}

// Microsoft's documented signalling ranges of Direct Routing ("Plan Direct
// Routing", SIP Signaling: FQDNs and firewall ports): requests from Teams
// come from these, and its addresses within them change without notice.
var teamsRanges = []string{"52.112.0.0/14", "52.120.0.0/14"}

// teamsE164 writes numbers towards Teams in E.164 with "+" ("Direct
// Routing - SIP protocol": the Request-URI, To and From of its examples
// carry +<country code><number>, and a number is looked up in the tenant
// as E.164): an international prefix 00 becomes "+", a national
// significant number of 7 to 15 digits gets "+"; short extensions and
// numbers that already have "+" stay as they are. Administrators with
// another dialling plan edit the rules (trunk.numbers.outbound).
var teamsE164 = []config.NumberRule{
	{Match: `00([1-9][0-9]{5,14})`, Replace: "+$1"},
	{Match: `[1-9][0-9]{6,14}`, AddPrefix: "+"},
}

// teamsTrunk is what Teams Direct Routing needs of a trunk, each setting
// from Microsoft's documentation:
//   - targets: sip2 and sip3 after sip.pstnhub.microsoft.com, in that order
//     ("Plan Direct Routing": the SBC tries the three FQDNs in this order;
//     sip2/sip3 are the failover datacentres);
//   - keepalive.up 2xx: calls flow only after an OPTIONS is answered 200 OK
//     ("Direct Routing - SIP protocol", processing the incoming request);
//   - offer.required: Teams does not take an INVITE without SDP (no delayed
//     offer), so the unit makes the offer;
//   - trust: Microsoft's SIP proxies present certificates from public roots
//     (DigiCert Global Root G2, Microsoft RSA/ECC Root CA 2017), which the
//     system store has; from 2026 those certificates carry serverAuth only,
//     also when Teams is the TLS client;
//   - ranges: see teamsRanges;
//   - own_allow: the unit's own Allow, so that Teams sends REFER when the
//     unit handles it, whatever the PBX lists.
func teamsTrunk() config.PeerTrunk {
	var targets []string
	for _, h := range teamsProxies[1:] {
		targets = append(targets, h+":5061")
	}
	return config.PeerTrunk{
		Targets:   targets,
		Ranges:    slices.Clone(teamsRanges),
		Keepalive: config.PeerKeepalive{Up: "2xx"},
		Numbers:   config.PeerNumbers{Outbound: slices.Clone(teamsE164)},
		Trust:     config.PeerTrust{SystemRoots: true, ServerAuthClientCert: true},
		Offer:     config.PeerOffer{Required: true, Codecs: []string{"PCMU", "PCMA", "telephone-event"}},
		OwnAllow:  true,
	}
}

func peer(a Answers, profile, transport string, interval config.Duration) config.Peer {
	if a.Transport != "" {
		transport = a.Transport
	}
	p := config.Peer{
		Name: a.PeerName, Kind: "itsp", Profile: profile, Type: "generic", Interface: a.Interface,
		Domain: a.Domain, Transport: transport, Prefix: a.Prefix, OptionsInterval: interval,
		Auth: config.PeerAuth{Username: a.Username, Password: a.Password, Register: a.Register},
	}
	if a.Domain == "" {
		p.Address = a.Address
	}
	return p
}

// setPeer replaces the peer of the same name, or appends it.
func setPeer(cfg *config.Config, p config.Peer) {
	for i := range cfg.Peers {
		if cfg.Peers[i].Name == p.Name {
			cfg.Peers[i] = p
			return
		}
	}
	cfg.Peers = append(cfg.Peers, p)
}

// ensureListener makes sure a listener for the interface and transport
// exists, updating its certificate and client-certificate requirement.
func ensureListener(cfg *config.Config, l config.Listener) {
	if l.Transport != "tls" {
		l.Certificate = ""
	}
	for i := range cfg.SIP.Listeners {
		c := &cfg.SIP.Listeners[i]
		if c.Interface == l.Interface && c.Transport == l.Transport {
			if l.Transport == "tls" {
				c.Certificate = l.Certificate
				c.RequireClientCert = c.RequireClientCert || l.RequireClientCert
			}
			if c.Port == 0 {
				c.Port = l.Port
			}
			return
		}
	}
	cfg.SIP.Listeners = append(cfg.SIP.Listeners, l)
}

// tlsCert is the own certificate for the listener: the answer, or the
// configured client certificate, or "default".
func tlsCert(cfg *config.Config, a Answers) string {
	switch {
	case a.Certificate != "":
		return a.Certificate
	case cfg.TLS.ClientCertificate != "":
		return cfg.TLS.ClientCertificate
	}
	return "default"
}

func raiseMinTLS(cfg *config.Config, v string) {
	if cfg.TLS.MinVersion == "" || cfg.TLS.MinVersion < v {
		cfg.TLS.MinVersion = v
	}
	if cfg.TLS.MaxVersion != "" && cfg.TLS.MaxVersion < cfg.TLS.MinVersion {
		cfg.TLS.MaxVersion = "1.3"
	}
}

// srtpOutside is the seed's §6.9: SRTP mandatory towards the ITSP p, RTP
// allowed elsewhere, transcoding between them.
func srtpOutside(cfg *config.Config, p *config.Peer) {
	m := &cfg.Media
	m.EncryptionEnabled = true
	ensureGroup(cfg, standardGroups["RTP"])
	setPeerPolicy(cfg, p, config.MediaPolicy{Interface: p.Interface, Group: "SRTP", Requirement: "srtp"})
	m.DefaultPolicy = config.DefaultMediaPolicy{Group: "RTP", Requirement: "rtp", AllowTranscoding: true, RTPProfile: "prefer-savp"}
}

// setPeerPolicy gives the profile's peer p its media policy pol as its own
// (peers[].media), so that a later change of its interface's policy does
// not reach it. The interface's policy (media.policies) becomes pol too,
// as the seed's profiles had it, only while p is the interface's only
// peer: a lab trunk added next to a Teams trunk must not turn the
// interface's SRTP into "either" (issue 18), whether Teams relies on it
// or not.
func setPeerPolicy(cfg *config.Config, p *config.Peer, pol config.MediaPolicy) {
	ensureGroup(cfg, standardGroups[pol.Group])
	p.Media = config.PeerMedia{Group: pol.Group, Requirement: pol.Requirement}
	alone := !slices.ContainsFunc(cfg.Peers, func(q config.Peer) bool { return q.Name != p.Name && q.Interface == p.Interface })
	if alone {
		setPolicy(cfg, pol)
	}
}

// ReliesOnInterface names the peers on interface iface, other than except,
// that have no media policy of their own and so take the interface's.
func ReliesOnInterface(cfg *config.Config, iface, except string) []string {
	var out []string
	for _, q := range cfg.Peers {
		// plain RTP needs no suite group: such a peer takes none from the interface
		own := q.Media.Requirement != "" && (q.Media.Group != "" || q.Media.Requirement == "rtp")
		if q.Name != except && q.Interface == iface && !own {
			out = append(out, q.Name)
		}
	}
	return out
}

// standardGroups are the seed's two crypto suite groups.
var standardGroups = map[string]config.CryptoSuiteGroup{
	"RTP":  {Name: "RTP", Suites: []string{"cleartext"}},
	"SRTP": {Name: "SRTP", Suites: []string{"AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"}},
}

func ensureGroup(cfg *config.Config, g config.CryptoSuiteGroup) {
	for _, c := range cfg.Media.CryptoSuiteGroups {
		if c.Name == g.Name {
			return
		}
	}
	cfg.Media.CryptoSuiteGroups = append(cfg.Media.CryptoSuiteGroups, g)
}

func setPolicy(cfg *config.Config, p config.MediaPolicy) {
	if p.Group == "SRTP" || p.Group == "RTP" {
		ensureGroup(cfg, standardGroups[p.Group])
	}
	for i := range cfg.Media.Policies {
		if cfg.Media.Policies[i].Interface == p.Interface {
			cfg.Media.Policies[i] = p
			return
		}
	}
	cfg.Media.Policies = append(cfg.Media.Policies, p)
}

func findInterface(cfg *config.Config, name string) *config.Interface {
	for i := range cfg.Network.Interfaces {
		if cfg.Network.Interfaces[i].Name == name {
			return &cfg.Network.Interfaces[i]
		}
	}
	return nil
}
