package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"github.com/palisade-sbc/palisade/internal/testkit"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDefaultIsValid(t *testing.T) {
	if errs := Default().Validate(); errs != nil {
		t.Fatalf("Default() does not validate:\n%v", errs)
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	d := Default()
	d.Peers = append(d.Peers, Peer{Name: "pbx", Kind: "pbx", Interface: "inside", Address: "10.0.0.10",
		Transport: "udp", Headers: map[string]string{"X-B": "2", "X-A": "1"}})
	b1, err := Encode(d)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Decode(b1)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := Encode(c)
	if !bytes.Equal(b1, b2) {
		t.Fatalf("round trip changed the document:\n%s\n---\n%s", b1, b2)
	}
	if !Equal(d, c) {
		t.Fatal("Equal(d, decoded) is false")
	}
	if bytes.Contains(b1, []byte("null")) {
		t.Errorf("encoded document contains null:\n%s", b1)
	}
}

func TestDecodeFillsMissingFromDefaults(t *testing.T) {
	doc := `{
	  "peers": [{"name": "pbx", "kind": "pbx", "interface": "inside", "address": "10.0.0.10", "transport": "udp"}],
	  "sip": {"user_agent": "Palisade"},
	  "media": null
	}`
	c, err := Decode([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	d := Default()
	if c.Schema != SchemaVersion || c.Admin.Listen != d.Admin.Listen || len(c.Network.Interfaces) != 2 {
		t.Errorf("missing sections were not defaulted: %+v", c)
	}
	if c.SIP.UserAgent != "Palisade" || c.SIP.MaxForwards != 70 || len(c.SIP.Listeners) != 3 {
		t.Errorf("sip section: missing members not defaulted: %+v", c.SIP)
	}
	if c.Media.PortMin != d.Media.PortMin {
		t.Errorf("null section not defaulted: %+v", c.Media)
	}
	if len(c.Peers) != 1 || c.Peers[0].OptionsInterval != 0 || c.Peers[0].Auth.Username != "" {
		t.Errorf("list element: %+v", c.Peers)
	}
	if errs := c.Validate(); errs != nil {
		t.Errorf("Validate: %v", errs)
	}
	// An empty document is the default configuration.
	e, err := Decode([]byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if !Equal(e, d) {
		t.Error("{} does not decode to Default()")
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string // every FieldError.Error() expected, in order
	}{
		{"syntax", "{\n  \"schema\": 1,\n  \"unit\": {\"name\": }\n}", []string{"(document): line 3, column 20: invalid character '}' looking for beginning of value"}},
		{"truncated", `{"unit": {"name": "x"`, []string{"(document): line 1, column 22: the document ends too early"}},
		{"trailing", `{} {}`, []string{"(document): line 1, column 5: unexpected data after the document"}},
		{"not an object", `[1]`, []string{"(document): must be a JSON object, not a list"}},
		{"duplicate", `{"unit": {"name": "a", "name": "b"}}`, []string{"unit.name: appears twice"}},
		{"null element", `{"peers": [null]}`, []string{"peers[0]: a list element cannot be null"}},
		{"int range", `{"sip": {"max_forwards": 99999999999999999999}}`, []string{"sip.max_forwards: 99999999999999999999 is too large"}},
		{"map value", `{"peers": [{"headers": {"X-A": 1}}]}`, []string{"peers[0].headers.X-A: expected a string, got the number 1"}},
		{"typo", `{"unit": {"topolgy": "x"}, "sip": {"listners": []}}`, []string{`unit.topolgy: unknown field (did you mean "topology"?)`, `sip.listners: unknown field (did you mean "listeners"?)`}},
		{"odd key", `{"peers": [{"headers": {"X A": 1}}]}`, []string{`peers[0].headers["X A"]: expected a string, got the number 1`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.doc))
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %v is not Errors", err)
			}
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
			}
			// The decode problems come first; validation problems of the
			// rest of the document may follow.
			if len(got) > len(tt.want) {
				got = got[:len(tt.want)]
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestGoldenErrors decodes and validates documents full of mistakes and
// compares the complete error list with testdata/<name>.errors.
func TestGoldenErrors(t *testing.T) {
	for _, name := range []string{"many-mistakes", "unknown-fields"} {
		t.Run(name, func(t *testing.T) {
			doc, err := os.ReadFile(filepath.Join("testdata", name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			c, err := Decode(doc)
			var errs Errors
			if err != nil {
				if !errors.As(err, &errs) {
					t.Fatalf("Decode error %v is not Errors", err)
				}
			} else {
				errs = c.Validate()
			}
			if len(errs) == 0 {
				t.Fatal("no errors found")
			}
			testkit.Golden(t, filepath.Join("testdata", name+".errors"), []byte(errs.Error()+"\n"))
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *Config)
		want   string // one expected error (path: message prefix); "" = valid
	}{
		{"default", func(c *Config) {}, ""},
		{"port", func(c *Config) { c.SIP.Listeners[2].Port = 70000 }, "sip.listeners[2].port: 70000 is not a port number"},
		{"schema", func(c *Config) { c.Schema = 2 }, "schema: version 2 is not supported"},
		{"one-armed", func(c *Config) { c.Unit.Topology = "one-armed" }, "network.interfaces: the one-armed topology uses exactly one interface"},
		{"admin listen host only", func(c *Config) { c.Admin.Listen = "127.0.0.1" }, `admin.listen: "127.0.0.1" is not host:port`},
		{"admin listen any", func(c *Config) { c.Admin.Listen = ":8443" }, ""},
		{"admin listen port 0", func(c *Config) { c.Admin.Listen = "127.0.0.1:0" }, ""},
		{"bcrypt hash", func(c *Config) { c.Admin.PasswordHash = "$2a$10$abcdefghijklmnopqrstuv" }, ""},
		{"admin cert", func(c *Config) { c.Admin.Certificate = "web" }, `admin.certificate: "web" is not defined in certificates.private`},
		{"ipv6 interface", func(c *Config) { c.Network.Interfaces[1].Address = "::1" }, ""},
		{"dns with port", func(c *Config) { c.Network.DNSServers = []string{"127.0.0.1:5353", "[::1]:53"} }, ""},
		{"tls listener no cert", func(c *Config) { c.SIP.Listeners[2].Certificate = "" }, "sip.listeners[2].certificate: is empty; a TLS listener needs a certificate"},
		{"tcp and tls same port", func(c *Config) { c.SIP.Listeners[2].Interface = "inside"; c.SIP.Listeners[2].Port = 5060 }, "sip.listeners[2]: uses the same address, protocol and port as sip.listeners[1]"},
		{"udp and tcp same port", func(c *Config) {}, ""},
		{"method", func(c *Config) { c.SIP.AllowedMethods = append(c.SIP.AllowedMethods, "bye") }, `sip.allowed_methods[13]: "bye" is not a SIP method name`},
		{"invite timeout negative", func(c *Config) { c.SIP.InviteTimeout = Duration(-time.Second) }, "sip.invite_timeout: -1s is negative"},
		{"invite timeout beyond timer B", func(c *Config) { c.SIP.InviteTimeout = Duration(40 * time.Second) }, "sip.invite_timeout: 40s is longer than the SIP transaction timeout"},
		{"invite timeout off", func(c *Config) { c.SIP.InviteTimeout = 0 }, ""},
		{"user agent newline", func(c *Config) { c.SIP.UserAgent = "a\r\nX-Evil: 1" }, "sip.user_agent: must not contain line breaks"},
		{"tls version", func(c *Config) { c.TLS.MinVersion = "1.4" }, `tls.min_version: "1.4" is not one of 1.0, 1.1, 1.2, 1.3`},
		{"tls old allowed", func(c *Config) { c.TLS.MinVersion = "1.0" }, ""},
		{"ca ref", func(c *Config) { c.TLS.CACertificates = []string{"Root"} }, `tls.ca_certificates[0]: "Root" is not defined in certificates.ca`},
		{"ca ok", func(c *Config) {
			c.TLS.CACertificates = []string{"Root"}
			c.Certificates.CA = []CACertificate{{Name: "Root", Fingerprint: strings.Repeat("ab", 32)}}
		}, ""},
		{"cert name slash", func(c *Config) {
			c.Certificates.Private = append(c.Certificates.Private, PrivateCertificate{Name: "a/b"})
		}, `certificates.private[1].name: "a/b" contains a control character or '/'`},
		{"odd port_min", func(c *Config) { c.Media.PortMin = 20001 }, "media.port_min: 20001 is odd"},
		{"suite", func(c *Config) { c.Media.CryptoSuiteGroups[1].Suites[0] = "AES_256" }, `media.crypto_suite_groups[1].suites[0]: "AES_256" is not one of`},
		{"empty group", func(c *Config) { c.Media.CryptoSuiteGroups[0].Suites = nil }, "media.crypto_suite_groups[0].suites: is empty"},
		{"rtp needs cleartext", func(c *Config) { c.Media.DefaultPolicy.Group = "SRTP" }, `media.default_policy.requirement: rtp needs the cleartext suite, but group "SRTP" lacks it`},
		{"srtp needs encryption", func(c *Config) { c.Media.EncryptionEnabled = false }, "media.policies[0].requirement: srtp is required but media.encryption_enabled is false"},
		{"either", func(c *Config) { c.Media.Policies[0].Requirement = "either" }, ""},
		{"rtp profile", func(c *Config) { c.Media.DefaultPolicy.RTPProfile = "SAVP" }, `media.default_policy.rtp_profile: "SAVP" is not one of avp, savp, prefer-savp`},
		{"policy iface", func(c *Config) { c.Media.Policies[0].Interface = "dmz" }, `media.policies[0].interface: "dmz" is not defined in network.interfaces`},
		{"order empty", func(c *Config) { c.Routing.Order = nil }, "routing.order: is empty"},
		{"order dup", func(c *Config) { c.Routing.Order = []string{"dial_plan", "dial_plan"} }, `routing.order[1]: "dial_plan" is already listed at routing.order[0]`},
		{"redirects", func(c *Config) { c.Routing.Redirects = "follow" }, ""},
		{"target", func(c *Config) {
			c.Routing.DNSOverride = []DNSOverride{{Domain: "example.com", Targets: []Target{{Host: "bad host", Transport: "udp"}}}}
		}, `routing.dns_override[0].targets[0].host: "bad host" is not a host name or IP address`},
		{"static reg uri", func(c *Config) {
			c.Routing.StaticRegistrations = []StaticRegistration{{User: "100", ForwardTo: "tel:+100"}}
		}, `routing.static_registrations[0].forward_to: "tel:+100" is not a sip: or sips: URI`},
		{"peer address and domain", func(c *Config) {
			c.Peers = []Peer{{Name: "p", Kind: "itsp", Interface: "outside", Address: "1.2.3.4", Domain: "example.com", Transport: "tls"}}
		}, "peers[0].domain: give an address or a domain, not both"},
		{"peer neither", func(c *Config) {
			c.Peers = []Peer{{Name: "p", Kind: "itsp", Interface: "outside", Transport: "tls"}}
		}, "peers[0]: needs an address or a domain"},
		{"peer address port", func(c *Config) {
			c.Peers = []Peer{{Name: "p", Kind: "pbx", Interface: "inside", Address: "pbx.local:99999", Transport: "udp"}}
		}, `peers[0].address: "pbx.local:99999": "99999" is not a port number`},
		{"peer ok ipv6", func(c *Config) {
			c.Peers = []Peer{{Name: "p", Kind: "pbx", Interface: "inside", Address: "[2001:db8::1]:5060", Transport: "any", Profile: "generic", Type: "cisco-cucm"}}
		}, ""},
		{"peer named like iface", func(c *Config) {
			c.Peers = []Peer{{Name: "inside", Kind: "pbx", Interface: "inside", Address: "10.0.0.1", Transport: "udp"}}
		}, `peers[0].name: "inside" is also an interface name`},
		{"peer header", func(c *Config) {
			c.Peers = []Peer{{Name: "p", Kind: "pbx", Interface: "inside", Address: "10.0.0.1", Transport: "udp", Headers: map[string]string{"X-MS-SBC": "a\nb"}}}
		}, "peers[0].headers.X-MS-SBC: must not contain line breaks"},
		{"peer options negative", func(c *Config) {
			c.Peers = []Peer{{Name: "p", Kind: "pbx", Interface: "inside", Address: "10.0.0.1", Transport: "udp", OptionsInterval: Duration(-time.Second)}}
		}, "peers[0].options_interval: -1s is negative"},
		{"rule regex", func(c *Config) {
			c.DialPlan.Rules = []DialRule{{Name: "r", Regex: "(", ForwardTo: []Forward{{URI: "sip:pbx.example.com"}}}}
		}, "dial_plan.rules[0].regex: does not compile: missing closing ): `(`"},
		{"rule two matchers", func(c *Config) {
			c.DialPlan.Rules = []DialRule{{Name: "r", Prefix: "0", Head: "1", ForwardTo: []Forward{{URI: "sip:pbx.example.com"}}}}
		}, "dial_plan.rules[0]: sets more than one of prefix, head and regex"},
		{"rule rewrite group", func(c *Config) {
			c.DialPlan.Rules = []DialRule{{Name: "r", Regex: `^0(\d+)$`, ForwardTo: []Forward{{URI: "sip:x@pbx.example.com", Rewrite: "+46$1"}}}}
		}, ""},
		{"rule tail", func(c *Config) {
			c.DialPlan.Rules = []DialRule{{Name: "r", Prefix: "9", Tail: "z-a", ForwardTo: []Forward{{URI: "sip:pbx.example.com"}}}}
		}, `dial_plan.rules[0].tail: "z-a" is not a character set`},
		{"rule source", func(c *Config) {
			c.DialPlan.Rules = []DialRule{{Name: "r", Source: "inside", ForwardTo: []Forward{{URI: "sips:pbx.example.com:5061;transport=tls"}}}}
		}, ""},
		{"time class overnight", func(c *Config) {
			c.DialPlan.TimeClasses = []TimeClass{{Name: "night", TimeZone: "UTC", Windows: []TimeWindow{{Days: []string{"mon"}, Start: "22:00", End: "06:00"}}}}
		}, ""},
		{"time class 24:00", func(c *Config) {
			c.DialPlan.TimeClasses = []TimeClass{{Name: "day", Windows: []TimeWindow{{Days: []string{"sun"}, Start: "00:00", End: "24:00"}}}}
		}, ""},
		{"time zone path", func(c *Config) {
			c.DialPlan.TimeClasses = []TimeClass{{Name: "x", TimeZone: "../../etc/passwd", Windows: []TimeWindow{{Days: []string{"sun"}, Start: "00:00", End: "24:00"}}}}
		}, `dial_plan.time_classes[0].time_zone: "../../etc/passwd" is not a known time zone`},
		{"registrar", func(c *Config) { c.Registrar.Enabled = true }, "registrar.domains: is empty, but the registrar is enabled"},
		{"log level", func(c *Config) { c.Observe.LogLevel = "trace" }, `observe.log_level: "trace" is not one of debug, info, warn, error`},
		{"cidr", func(c *Config) { c.Admin.AllowedNetworks = []string{"10.0.0.0/33"} }, `admin.allowed_networks[0]: "10.0.0.0/33" is not a network in CIDR form`},
		{"hep ok", func(c *Config) {
			c.HEP.Enabled = true
			c.HEP.Collectors = []HEPCollector{{Address: "homer.example.com:9060", Transport: "udp"}, {Address: "[::1]:9061", Transport: "tcp"}}
		}, ""},
		{"hep no collector", func(c *Config) { c.HEP.Enabled = true }, "hep.collectors: is empty"},
		{"hep transport", func(c *Config) { c.HEP.Collectors = []HEPCollector{{Address: "h:9060", Transport: "sctp"}} }, `hep.collectors[0].transport: "sctp" is not one of udp, tcp`},
		{"hep address", func(c *Config) { c.HEP.Collectors = []HEPCollector{{Address: "h", Transport: "udp"}} }, `hep.collectors[0].address: "h" is not host:port`},
		{"hep twice", func(c *Config) {
			c.HEP.Collectors = []HEPCollector{{Address: "h:1", Transport: "udp"}, {Address: "h:1", Transport: "udp"}}
		}, "hep.collectors[1]: udp h:1 is already listed"},
		{"hep node id", func(c *Config) { c.HEP.NodeID = 1 << 32 }, "hep.node_id: 4294967296 is outside"},
		{"hep queue", func(c *Config) { c.HEP.QueueSize = 0 }, "hep.queue_size: 0 is outside"},
		{"hep node name", func(c *Config) { c.HEP.NodeName = "a\nb" }, "hep.node_name: must not contain line breaks"},
		{"acme ok", func(c *Config) {
			c.Certificates.Private = append(c.Certificates.Private, PrivateCertificate{Name: "public"})
			c.ACME = ACME{Enabled: true, DirectoryURL: "https://acme.example.com/directory", Email: "ops@example.com",
				CACertificates: []string{}, EAB: ACMEEAB{KeyID: "k", HMACKey: "m"}, Challenge: "tls-alpn-01", ChallengeListen: ":443",
				KeyType: "rsa-2048", Certificates: []ACMECertificate{{Name: "public", Domains: []string{"sbc.example.com", "admin.example.com"}}}}
		}, ""},
		{"acme url", func(c *Config) { c.ACME.Enabled = true; c.ACME.DirectoryURL = "http://ca/dir" }, `acme.directory_url: "http://ca/dir" is not an https URL`},
		{"acme no certificates", func(c *Config) { c.ACME.Enabled = true; c.ACME.DirectoryURL = "https://ca/dir" }, "acme.certificates: is empty"},
		{"acme entry", func(c *Config) {
			c.ACME.Certificates = []ACMECertificate{{Name: "public", Domains: []string{"a.example.com"}}}
		}, `acme.certificates[0].name: "public" is not defined in certificates.private`},
		{"acme no domains", func(c *Config) { c.ACME.Certificates = []ACMECertificate{{Name: "default"}} }, "acme.certificates[0].domains: is empty"},
		{"acme wildcard http", func(c *Config) {
			c.ACME.Certificates = []ACMECertificate{{Name: "default", Domains: []string{"*.example.com"}}}
		}, `acme.certificates[0].domains[0]: "*.example.com": a wildcard name can only be proved with dns-01`},
		{"acme wildcard dns", func(c *Config) {
			c.ACME.Challenge, c.ACME.DNSProvider = "dns-01", "pdns"
			c.ACME.Certificates = []ACMECertificate{{Name: "default", Domains: []string{"*.example.com"}}}
		}, ""},
		{"acme dns provider", func(c *Config) { c.ACME.Challenge = "dns-01"; c.ACME.DNSProvider = "route66" }, `acme.dns_provider: "route66" is not one of`},
		{"acme eab half", func(c *Config) { c.ACME.EAB.KeyID = "k" }, "acme.eab: key_id and hmac_key go together"},
		{"acme challenge", func(c *Config) { c.ACME.Challenge = "dns" }, `acme.challenge: "dns" is not one of http-01, tls-alpn-01, dns-01`},
		{"acme listen", func(c *Config) { c.ACME.ChallengeListen = "80" }, `acme.challenge_listen: "80" is not host:port`},
		{"acme dns resolver", func(c *Config) { c.ACME.DNSResolvers = []string{"10.0.0.53"} }, `acme.dns_resolvers[0]: "10.0.0.53" is not host:port`},
		{"acme email", func(c *Config) { c.ACME.Email = "ops" }, `acme.email: "ops" is not an e-mail address`},
		{"acme ca", func(c *Config) { c.ACME.CACertificates = []string{"x"} }, `acme.ca_certificates[0]: "x" is not defined in certificates.ca`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.change(c)
			errs := c.Validate()
			if tt.want == "" {
				if errs != nil {
					t.Fatalf("unexpected errors:\n%v", errs)
				}
				return
			}
			for _, e := range errs {
				if strings.HasPrefix(e.Error(), tt.want) {
					return
				}
			}
			t.Fatalf("want an error starting %q, got:\n%v", tt.want, errs)
		})
	}
}

func TestDecodeReportsValidationToo(t *testing.T) {
	// Three different mistakes: a misspelt field, a wrong type and a bad
	// value. All three are reported at once, with nothing invented for the
	// repaired values.
	doc := `{"sip": {"listeners": [
		{"interface": "inside", "transport": "udp", "Port": 5060},
		{"interface": "inside", "transport": "tcp", "port": "5060"},
		{"interface": "outside", "transport": "tls", "port": 70000, "certificate": "default"}]}}`
	_, err := Decode([]byte(doc))
	want := `sip.listeners[0].Port: unknown field (did you mean "port"?)
sip.listeners[1].port: expected a number, got the string "5060"
sip.listeners[0].port: 0 is not a port number (1-65535)
sip.listeners[2].port: 70000 is not a port number (1-65535)`
	if err == nil || err.Error() != want {
		t.Fatalf("got\n%v\nwant\n%s", err, want)
	}
}

func TestErrorsAreJSON(t *testing.T) {
	// The admin API returns Errors as JSON: path and message per entry.
	b, _ := json.Marshal(Errors{{Path: "a.b", Message: "bad"}})
	if string(b) != `[{"path":"a.b","message":"bad"}]` {
		t.Fatalf("got %s", b)
	}
}

func TestWarnings(t *testing.T) {
	if w := Default().Warnings(); w != nil {
		t.Fatalf("default configuration has warnings: %v", w)
	}
	c := Default()
	c.TLS.MinVersion = "1.0"
	c.SIP.TopologyHiding = false
	c.Admin.AllowedNetworks = append(c.Admin.AllowedNetworks, "0.0.0.0/0")
	c.SIP.Listeners[0].RequireClientCert = true
	want := "tls.min_version: TLS 1.0 is enabled; versions below 1.2 are weak and only for peers that cannot do better\n" +
		"sip.topology_hiding: is off: inside addresses and Call-IDs are visible outside\n" +
		"admin.allowed_networks[2]: 0.0.0.0/0 lets every address reach the admin listener\n" +
		"sip.listeners[0].require_client_cert: has no effect on a udp listener"
	if w := c.Warnings(); w.Error() != want {
		t.Fatalf("got\n%v\nwant\n%s", w, want)
	}
	if errs := c.Validate(); errs != nil {
		t.Fatalf("warnings must not be errors: %v", errs)
	}
	c = Default()
	c.SIP.Listeners[2].RequireClientCert = true
	c.Peers = []Peer{{Name: "itsp", Kind: "itsp", Interface: "outside", Domain: "example.com", Transport: "tls"}}
	w := c.Warnings()
	if len(w) != 2 || w[0].Path != "sip.listeners[2].require_client_cert" || w[1].Path != "peers[0].transport" {
		t.Fatalf("TLS without trusted CAs: %v", w)
	}
	c.Certificates.CA = []CACertificate{{Name: "Root"}} // [] in tls.ca_certificates = the whole CA store
	if w := c.Warnings(); w != nil {
		t.Fatalf("with a trusted CA: %v", w)
	}
}

// TestEveryFieldIsDocumented checks that docs/configuration.md names every
// field of the document, so that a field added without documentation fails
// here rather than surprising an administrator.
func TestEveryFieldIsDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "configuration.md"))
	if err != nil {
		t.Skip("docs/configuration.md not found:", err)
	}
	seen := map[reflect.Type]bool{}
	var walk func(rt reflect.Type, path string)
	walk = func(rt reflect.Type, path string) {
		switch rt.Kind() {
		case reflect.Slice, reflect.Map:
			walk(rt.Elem(), path+"[]")
			return
		case reflect.Struct:
		default:
			return
		}
		if seen[rt] {
			return
		}
		seen[rt] = true
		f := fieldsOf(rt)
		for _, name := range f.names {
			p := joinKey(path, name)
			found := false
			for _, form := range []string{"`" + name + "`", "`" + name + "[]`", "`" + name + ".", "." + name + "`"} {
				found = found || bytes.Contains(doc, []byte(form))
			}
			if !found {
				t.Errorf("%s: not documented in docs/configuration.md", p)
			}
			walk(f.byName[name].Type, p)
		}
	}
	walk(reflect.TypeFor[Config](), "")
}
