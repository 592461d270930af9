// Package config holds Palisade's configuration document: one JSON document
// whose top-level sections follow the admin tabs (SPEC §4.3). The document is
// plain data; validation lives in validate.go, defaults in defaults.go.
//
// Ownership of sections: each feature package reads only its own sections.
// New fields are added inside a section, documented in docs/configuration.md,
// and given an explicit default in defaults.go.
package config

import "time"

// SchemaVersion is the version of the document layout written by this build.
const SchemaVersion = 1

// Config is the whole configuration document.
type Config struct {
	Schema       int          `json:"schema"`
	Unit         Unit         `json:"unit"`
	Admin        Admin        `json:"admin"`
	Network      Network      `json:"network"`
	SIP          SIP          `json:"sip"`
	TLS          TLS          `json:"tls"`
	Certificates Certificates `json:"certificates"`
	Media        Media        `json:"media"`
	Routing      Routing      `json:"routing"`
	Peers        []Peer       `json:"peers"`
	DialPlan     DialPlan     `json:"dial_plan"`
	Registrar    Registrar    `json:"registrar"`
	Observe      Observe      `json:"observe"`
	HEP          HEP          `json:"hep"`
	ACME         ACME         `json:"acme"`
	HA           HA           `json:"ha"`
	// Units holds the own values of each unit of a cluster, by unit name
	// (palisade run --unit); a single unit ignores it (units.go).
	Units map[string]UnitSettings `json:"units,omitempty"`
}

// Unit describes the box itself.
type Unit struct {
	Name     string `json:"name"`
	Topology string `json:"topology"` // standalone | one-armed
}

// Admin is the administration listener and who may reach it.
type Admin struct {
	Listen          string   `json:"listen"`           // host:port of the HTTPS admin/API listener
	PasswordHash    string   `json:"password_hash"`    // argon2id or bcrypt encoded hash
	AllowedNetworks []string `json:"allowed_networks"` // CIDRs allowed to reach the admin listener
	SessionTimeout  Duration `json:"session_timeout"`
	Certificate     string   `json:"certificate"` // private certificate for the admin listener; "" = generated
}

// Network lists the interfaces (named sides) and host network settings.
type Network struct {
	Interfaces []Interface `json:"interfaces"`
	Gateway    string      `json:"gateway"`
	DNSServers []string    `json:"dns_servers"` // IP or IP:port; empty = system resolver
}

// Interface is a named side of the unit (inside, outside, or one for both).
type Interface struct {
	Name              string `json:"name"`
	Address           string `json:"address"`            // bind IP
	AdvertisedAddress string `json:"advertised_address"` // public IP shown in SIP/SDP, "" = Address
	FQDN              string `json:"fqdn"`               // host name used in Contact/Record-Route
}

// SIP holds the signalling listeners and general SIP behaviour.
type SIP struct {
	Listeners      []Listener `json:"listeners"`
	AllowedMethods []string   `json:"allowed_methods"`
	TopologyHiding bool       `json:"topology_hiding"`
	UserAgent      string     `json:"user_agent"` // User-Agent/Server header value; "" = none
	// MaxForwards is the Max-Forwards set on requests the unit originates.
	MaxForwards int `json:"max_forwards"`
	// NoAnswerTimeout is how long a forwarded INVITE may go unanswered
	// before the next dial plan row is tried.
	NoAnswerTimeout Duration `json:"no_answer_timeout"`
	// InviteTimeout is how long an INVITE sent to one target may go without
	// any response (not even 100 Trying) before that target is given up and
	// the next one tried; 0 leaves it to the transaction timeout (32 s).
	InviteTimeout Duration `json:"invite_timeout"`
	// Access control and overload limits (internal/guard, docs/security.md).
	// UnknownSource: what a restricted interface does with dialog-creating
	// requests from sources that are no configured peer: "reject" (403),
	// "drop" (no answer) or "accept"; "" = "reject".
	UnknownSource        string   `json:"unknown_source"`
	RestrictedInterfaces []string `json:"restricted_interfaces"` // interfaces where only peers may start dialogs
	MaxCalls             int      `json:"max_calls"`             // concurrent calls; 0 = no limit
	MaxCallRate          int      `json:"max_call_rate"`         // new calls per second; 0 = no limit
	SourceRateLimit      int      `json:"source_rate_limit"`     // requests per second per non-peer source; 0 = no limit
	SourceBlockTime      Duration `json:"source_block_time"`     // how long a source over its limit is ignored
}

// Listener is one SIP socket on an interface.
type Listener struct {
	Interface         string `json:"interface"`
	Transport         string `json:"transport"` // udp | tcp | tls
	Port              int    `json:"port"`
	Certificate       string `json:"certificate"` // private certificate name (tls)
	RequireClientCert bool   `json:"require_client_cert"`
}

// TLS is the signalling-encryption policy.
type TLS struct {
	CACertificates                  []string `json:"ca_certificates"`    // names from certificates.ca trusted for peers
	ClientCertificate               string   `json:"client_certificate"` // default own certificate for outgoing TLS
	CheckServerDomain               bool     `json:"check_server_domain"`
	AllowWildcardServerCertificates bool     `json:"allow_wildcard_server_certificates"`
	MinVersion                      string   `json:"min_version"` // "1.0" | "1.1" | "1.2" | "1.3"
	MaxVersion                      string   `json:"max_version"`
	UseSystemRoots                  bool     `json:"use_system_roots"`
	HandshakeTimeout                Duration `json:"handshake_timeout"`
	IdleTimeout                     Duration `json:"idle_timeout"`
}

// Certificates lists certificate entries by name; key material lives in the store.
type Certificates struct {
	Private []PrivateCertificate `json:"private"`
	CA      []CACertificate      `json:"ca"`
}

// PrivateCertificate is an own key with its certificate or pending request.
type PrivateCertificate struct {
	Name string `json:"name"`
	// Fingerprint (SHA-256, hex) of the certificate in the store that this
	// entry refers to; ties the configuration version to exact key material.
	Fingerprint string `json:"fingerprint,omitempty"`
	// Material is the store id of the exact version of this entry (key,
	// request, chain; see internal/pki storage.go). Set by the pki commands;
	// "" = the newest material stored under this name.
	Material string `json:"material,omitempty"`
}

// CACertificate is a trusted CA certificate (and optional CRL) in the store.
type CACertificate struct {
	Name        string `json:"name"`
	Fingerprint string `json:"fingerprint,omitempty"`
	// CRL is the SHA-256 (hex) of the CRL imported for this CA; "" = none.
	CRL string `json:"crl,omitempty"`
}

// Media holds the media relay and media-encryption settings.
type Media struct {
	PortMin           int                `json:"port_min"`
	PortMax           int                `json:"port_max"`
	EncryptionEnabled bool               `json:"encryption_enabled"`
	CryptoSuiteGroups []CryptoSuiteGroup `json:"crypto_suite_groups"`
	Policies          []MediaPolicy      `json:"policies"`
	DefaultPolicy     DefaultMediaPolicy `json:"default_policy"`
	InactivityTimeout Duration           `json:"inactivity_timeout"`
	BatchInterval     Duration           `json:"batch_interval"`
	// RealtimePriority: 1-99 runs the batch workers' threads under
	// SCHED_FIFO at this priority; 0 under the normal scheduler.
	RealtimePriority int `json:"realtime_priority"`
}

// CryptoSuiteGroup names a set of acceptable media suites.
type CryptoSuiteGroup struct {
	Name   string   `json:"name"`
	Suites []string `json:"suites"` // cleartext | AES_CM_128_HMAC_SHA1_80 | AES_CM_128_HMAC_SHA1_32 | AEAD_AES_128_GCM
}

// MediaPolicy is the media-encryption policy for media via one interface.
type MediaPolicy struct {
	Interface   string `json:"interface"`
	Group       string `json:"group"`
	Requirement string `json:"requirement"` // rtp | srtp | either
}

// DefaultMediaPolicy applies to interfaces without their own policy.
type DefaultMediaPolicy struct {
	Group            string `json:"group"`
	Requirement      string `json:"requirement"` // rtp | srtp | either
	AllowTranscoding bool   `json:"allow_transcoding"`
	RTPProfile       string `json:"rtp_profile"` // avp | savp | prefer-savp
}

// Routing holds how requests find their destination.
type Routing struct {
	Order               []string             `json:"order"` // dns_override | registrar | dial_plan
	DNSOverride         []DNSOverride        `json:"dns_override"`
	Redirects           string               `json:"redirects"` // forward | follow
	StaticRegistrations []StaticRegistration `json:"static_registrations"`
	Refer               Refer                `json:"refer"`
}

// DNSOverride sends requests for a domain to fixed targets.
type DNSOverride struct {
	Domain  string   `json:"domain"`
	Targets []Target `json:"targets"`
}

// Target is one relay destination.
type Target struct {
	Host      string `json:"host"`
	Port      int    `json:"port"`
	Transport string `json:"transport"` // udp | tcp | tls
	Priority  int    `json:"priority"`
	Weight    int    `json:"weight"`
}

// StaticRegistration forwards requests to a user also to a fixed URI.
type StaticRegistration struct {
	User      string `json:"user"`
	ForwardTo string `json:"forward_to"` // sip: or sips: URI
	Transport string `json:"transport"`
}

// Refer selects when the unit handles REFER itself instead of relaying it.
type Refer struct {
	Always            bool     `json:"always"`
	NoReferSupport    bool     `json:"no_refer_support"`
	NoReplacesSupport bool     `json:"no_replaces_support"`
	FromURIs          []string `json:"from_uris"`
	UserAgents        []string `json:"user_agents"`
}

// Peer is a PBX or ITSP the unit talks to.
type Peer struct {
	Name            string   `json:"name"`
	Kind            string   `json:"kind"`    // pbx | itsp
	Profile         string   `json:"profile"` // generic | office365-um | teams-direct-routing
	Type            string   `json:"type"`    // pbx type: generic | cisco-cucm | dialogic-dmg | asterisk | freeswitch
	Interface       string   `json:"interface"`
	Address         string   `json:"address,omitempty"` // host[:port]
	Domain          string   `json:"domain,omitempty"`  // SIP domain resolved by RFC 3263
	Transport       string   `json:"transport"`
	Prefix          string   `json:"prefix"`
	Auth            PeerAuth `json:"auth"`
	OptionsInterval Duration `json:"options_interval"` // 0 = no keepalive
	// Headers are extra headers added to requests sent to this peer
	// (e.g. X-MS-SBC for Teams Direct Routing).
	Headers map[string]string `json:"headers,omitempty"`
	// Trunk holds the trunk and cloud settings (peer_trunk.go).
	Trunk PeerTrunk `json:"trunk,omitzero"`
	// Media is the peer's own media encryption policy, over its
	// interface's (peer_media.go); empty fields inherit.
	Media PeerMedia `json:"media,omitzero"`
}

// PeerAuth holds the credentials the unit uses towards a peer.
type PeerAuth struct {
	Username string   `json:"username"`
	Password string   `json:"password"`
	Realm    string   `json:"realm,omitempty"`
	Register bool     `json:"register"`
	Expires  Duration `json:"expires,omitempty"`
}

// DialPlan holds the dial plan rules and time classes.
type DialPlan struct {
	Rules       []DialRule  `json:"rules"`
	TimeClasses []TimeClass `json:"time_classes"`
}

// DialRule matches a request and lists where to forward it.
type DialRule struct {
	Name string `json:"name"`
	// Match on the Request-URI user; at most one of Prefix/Head/Regex is set.
	Prefix    string    `json:"prefix,omitempty"` // matched and stripped
	Head      string    `json:"head,omitempty"`   // matched and kept
	Tail      string    `json:"tail,omitempty"`   // characters allowed after prefix/head, e.g. "0-9"
	Regex     string    `json:"regex,omitempty"`  // with $n groups in forward_to user
	FromURI   string    `json:"from_uri,omitempty"`
	Source    string    `json:"source,omitempty"` // peer name or interface name
	TimeClass string    `json:"time_class,omitempty"`
	ForwardTo []Forward `json:"forward_to"`
}

// Forward is one destination of a dial plan rule, tried in order.
type Forward struct {
	Peer    string   `json:"peer,omitempty"`    // peer name, or
	URI     string   `json:"uri,omitempty"`     // explicit URI
	Rewrite string   `json:"rewrite,omitempty"` // new user part; $1.. from regex, ${user} for the stripped number
	Timeout Duration `json:"timeout,omitempty"`
}

// TimeClass is a named set of day/time windows.
type TimeClass struct {
	Name     string       `json:"name"`
	TimeZone string       `json:"time_zone"`
	Windows  []TimeWindow `json:"windows"`
}

// TimeWindow is days of week and a daily time range ("08:00"-"17:00").
type TimeWindow struct {
	Days  []string `json:"days"` // mon..sun
	Start string   `json:"start"`
	End   string   `json:"end"`
}

// Registrar is the local registrar for inside phones.
type Registrar struct {
	Enabled    bool            `json:"enabled"`
	Domains    []string        `json:"domains"`
	Users      []RegistrarUser `json:"users"`
	MinExpires int             `json:"min_expires"`
	MaxExpires int             `json:"max_expires"`
}

// RegistrarUser is a phone allowed to register.
type RegistrarUser struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// Observe holds tracing, call records and logging.
type Observe struct {
	TraceCalls       bool     `json:"trace_calls"`
	TraceBufferCalls int      `json:"trace_buffer_calls"` // calls kept in the trace ring
	TraceFailedKeep  Duration `json:"trace_failed_keep"`  // failed calls kept this long
	CDRRetention     Duration `json:"cdr_retention"`
	LogLevel         string   `json:"log_level"` // debug | info | warn | error
	Syslog           Syslog   `json:"syslog"`    // remote syslog collectors (syslog.go)
}

// Duration is a time.Duration that encodes as a Go duration string ("60s").
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
