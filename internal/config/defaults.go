package config

import "time"

// Default returns the configuration a unit starts with when its data
// directory is empty (SPEC §3): inside on 127.0.0.1:5060 (UDP, TCP), outside
// on 127.0.0.2:5061 (TLS, self-signed certificate "default"), admin on
// 127.0.0.1:8443. The admin password hash is filled in by the unit on first
// start. Every default is documented in docs/configuration.md.
func Default() *Config {
	return &Config{
		Schema: SchemaVersion,
		Unit:   Unit{Name: "palisade", Topology: "standalone"},
		Admin: Admin{
			Listen:          "127.0.0.1:8443",
			AllowedNetworks: []string{"127.0.0.0/8", "::1/128"},
			SessionTimeout:  Duration(30 * time.Minute),
		},
		Network: Network{
			Interfaces: []Interface{
				{Name: "inside", Address: "127.0.0.1"},
				{Name: "outside", Address: "127.0.0.2"},
			},
			DNSServers: []string{},
		},
		SIP: SIP{
			Listeners: []Listener{
				{Interface: "inside", Transport: "udp", Port: 5060},
				{Interface: "inside", Transport: "tcp", Port: 5060},
				{Interface: "outside", Transport: "tls", Port: 5061, Certificate: "default"},
			},
			AllowedMethods: []string{"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "PRACK", "UPDATE",
				"INFO", "MESSAGE", "REFER", "NOTIFY", "SUBSCRIBE", "REGISTER"},
			TopologyHiding:       true,
			MaxForwards:          70,
			NoAnswerTimeout:      Duration(60 * time.Second),
			InviteTimeout:        Duration(5 * time.Second),
			UnknownSource:        "reject",
			RestrictedInterfaces: []string{"outside"},
			SourceRateLimit:      100,
			SourceBlockTime:      Duration(60 * time.Second),
		},
		TLS: TLS{
			CACertificates:    []string{},
			ClientCertificate: "default",
			CheckServerDomain: true,
			MinVersion:        "1.2",
			MaxVersion:        "1.3",
			HandshakeTimeout:  Duration(10 * time.Second),
			IdleTimeout:       Duration(10 * time.Minute),
		},
		Certificates: Certificates{
			Private: []PrivateCertificate{{Name: "default"}},
			CA:      []CACertificate{},
		},
		Media: Media{
			PortMin:           20000,
			PortMax:           39999,
			EncryptionEnabled: true,
			CryptoSuiteGroups: []CryptoSuiteGroup{
				{Name: "RTP", Suites: []string{"cleartext"}},
				{Name: "SRTP", Suites: []string{"AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"}},
			},
			Policies: []MediaPolicy{{Interface: "outside", Group: "SRTP", Requirement: "srtp"}},
			DefaultPolicy: DefaultMediaPolicy{
				Group: "RTP", Requirement: "rtp", AllowTranscoding: true, RTPProfile: "prefer-savp",
			},
			InactivityTimeout: Duration(60 * time.Second),
			BatchInterval:     Duration(250 * time.Microsecond),
		},
		Routing: Routing{
			Order:               []string{"dns_override", "registrar", "dial_plan"},
			DNSOverride:         []DNSOverride{},
			Redirects:           "forward",
			StaticRegistrations: []StaticRegistration{},
			Refer:               Refer{FromURIs: []string{}, UserAgents: []string{}},
		},
		Peers:    []Peer{},
		DialPlan: DialPlan{Rules: []DialRule{}, TimeClasses: []TimeClass{}},
		Registrar: Registrar{
			Domains: []string{}, Users: []RegistrarUser{}, MinExpires: 60, MaxExpires: 3600,
		},
		Observe: Observe{
			TraceCalls:       true,
			TraceBufferCalls: 1000,
			TraceFailedKeep:  Duration(24 * time.Hour),
			CDRRetention:     Duration(90 * 24 * time.Hour),
			LogLevel:         "info",
			Syslog:           Syslog{Destinations: []SyslogDestination{}},
		},
		HEP: HEP{Collectors: []HEPCollector{}, QueueSize: 10000},
		ACME: ACME{
			CACertificates: []string{}, Challenge: "http-01", ChallengeListen: ":80",
			KeyType: "ecdsa-p256", Certificates: []ACMECertificate{},
		},
		HA: HA{Floating: []Floating{}, Lease: Duration(2 * time.Second), Preference: []string{}},
	}
}
