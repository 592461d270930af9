package config

// HEP exports every traced SIP message to HEP v3 (Homer) collectors.
type HEP struct {
	Enabled    bool           `json:"enabled"`
	Collectors []HEPCollector `json:"collectors"`
	// NodeID is the HEP capture agent id; collectors tell units apart by it.
	NodeID int `json:"node_id"`
	// NodeName is sent as the capture agent name; "" = unit.name.
	NodeName string `json:"node_name"`
	// Password is the HEP authentication key some collectors require; "" = none.
	Password string `json:"password"`
	// QueueSize bounds the messages waiting for each collector; more are dropped.
	QueueSize int `json:"queue_size"`
}

// HEPCollector is one HEP receiver.
type HEPCollector struct {
	Address   string `json:"address"`   // host:port
	Transport string `json:"transport"` // udp | tcp
}

// ACME obtains and renews public certificates from an ACME CA (RFC 8555).
type ACME struct {
	Enabled bool `json:"enabled"`
	// DirectoryURL is the CA's ACME directory.
	DirectoryURL string `json:"directory_url"`
	Email        string `json:"email"` // account contact; "" = none
	// CACertificates names CA store entries that the CA's HTTPS server is
	// checked against; [] = the system roots.
	CACertificates []string `json:"ca_certificates"`
	EAB            ACMEEAB  `json:"eab"`
	// Challenge is how the CA checks that we own the names.
	Challenge string `json:"challenge"` // http-01 | tls-alpn-01 | dns-01
	// ChallengeListen is host:port where the unit answers http-01 or
	// tls-alpn-01 (the CA connects to port 80 or 443 of the name; forward
	// those there when the port differs).
	ChallengeListen string `json:"challenge_listen"`
	// DNSProvider names one of the DNS providers for dns-01 (docs/acme.md).
	DNSProvider string `json:"dns_provider"`
	// DNSSettings are the provider's settings, by the names its
	// documentation gives them (e.g. CLOUDFLARE_DNS_API_TOKEN).
	DNSSettings map[string]string `json:"dns_settings,omitempty"`
	// DNSResolvers (host:port) are asked for the dns-01 TXT record before
	// the CA is told to look; [] = the zone's authoritative servers, found
	// through the system's resolvers (split-horizon DNS needs these).
	DNSResolvers []string          `json:"dns_resolvers,omitempty"`
	KeyType      string            `json:"key_type"` // key of each certificate, as 'cert new --key'
	Certificates []ACMECertificate `json:"certificates"`
}

// ACMEEAB is the External Account Binding a commercial CA hands out.
type ACMEEAB struct {
	KeyID   string `json:"key_id"`
	HMACKey string `json:"hmac_key"` // base64url, as the CA gives it
}

// ACMECertificate is a private certificate entry that ACME keeps issued.
type ACMECertificate struct {
	Name    string   `json:"name"`    // entry in certificates.private
	Domains []string `json:"domains"` // first = subject CN; all are SANs
}

// ACMEManages reports whether the private entry name is kept by ACME: it
// then always uses its newest material, whatever the entry names.
func (c *Config) ACMEManages(name string) bool {
	if !c.ACME.Enabled {
		return false
	}
	for _, a := range c.ACME.Certificates {
		if a.Name == name {
			return true
		}
	}
	return false
}
