package profiles

import (
	"errors"
	"slices"
	"testing"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/numbers"
)

func withFQDN() *config.Config {
	c := config.Default()
	c.Network.Interfaces[1].FQDN = "sbc.example.com"
	return c
}

func TestApply(t *testing.T) {
	tests := []struct {
		name    string
		profile string
		a       Answers
		check   func(t *testing.T, c *config.Config)
	}{
		{"office365", Office365UM, Answers{Domain: "abc.um.outlook.com", Certificate: "sbc"}, func(t *testing.T, c *config.Config) {
			l := listener(t, c, "outside", "tls")
			if l.Port != 5061 || !l.RequireClientCert || l.Certificate != "sbc" {
				t.Errorf("listener = %+v, want 5061 mutual with sbc", l)
			}
			if !c.TLS.AllowWildcardServerCertificates || !c.Routing.Refer.Always {
				t.Errorf("wildcard %v refer.always %v, want both", c.TLS.AllowWildcardServerCertificates, c.Routing.Refer.Always)
			}
			if p := policy(c, "outside"); p.Requirement != "srtp" || p.Group != "SRTP" {
				t.Errorf("outside policy = %+v", p)
			}
			if d := c.Media.DefaultPolicy; d.Requirement != "rtp" || !d.AllowTranscoding {
				t.Errorf("default policy = %+v", d)
			}
			p := c.Peers[0]
			if p.Domain != "abc.um.outlook.com" || p.Transport != "tls" || p.Profile != Office365UM {
				t.Errorf("peer = %+v", p)
			}
		}},
		{"teams", TeamsDirectRouting, Answers{Version: "1.2.3"}, func(t *testing.T, c *config.Config) {
			if len(c.Routing.DNSOverride) != 1 {
				t.Fatalf("dns_override = %+v", c.Routing.DNSOverride)
			}
			var hosts []string
			for i, tg := range c.Routing.DNSOverride[0].Targets {
				if tg.Port != 5061 || tg.Transport != "tls" || tg.Priority != i+1 {
					t.Errorf("target %d = %+v", i, tg)
				}
				hosts = append(hosts, tg.Host)
			}
			if !slices.Equal(hosts, teamsProxies) {
				t.Errorf("targets = %v", hosts)
			}
			p := c.Peers[0]
			if p.Headers["X-MS-SBC"] != "Palisade/SBC/1.2.3" || p.OptionsInterval == 0 || p.Domain != teamsProxies[0] {
				t.Errorf("peer = %+v", p)
			}
			if c.TLS.MinVersion != "1.2" || policy(c, "outside").Requirement != "srtp" {
				t.Errorf("tls min %s, policy %+v", c.TLS.MinVersion, policy(c, "outside"))
			}
			tr := p.Trunk
			if !slices.Equal(tr.Targets, []string{"sip2.pstnhub.microsoft.com:5061", "sip3.pstnhub.microsoft.com:5061"}) ||
				!slices.Equal(tr.Ranges, []string{"52.112.0.0/14", "52.120.0.0/14"}) || tr.Keepalive.Up != "2xx" ||
				!tr.Offer.Required || !tr.Trust.SystemRoots || !tr.Trust.ServerAuthClientCert || !tr.OwnAllow || len(tr.Numbers.Outbound) == 0 {
				t.Errorf("trunk = %+v", tr)
			}
			// The profile's number rules give Teams E.164 with "+".
			set, err := numbers.Compile(config.NumberRules(tr.Numbers.Outbound), tr.Numbers.UserPhone)
			if err != nil {
				t.Fatal(err)
			}
			for in, want := range map[string]string{"004930123456": "+4930123456", "4930123456": "+4930123456", "+4930123456": "+4930123456", "1234": "1234"} {
				if got := set.Number(numbers.RequestURI, in); got != want {
					t.Errorf("%s → %s, want %s", in, got, want)
				}
			}
			if errs := c.Validate(); errs != nil {
				t.Errorf("the profile's configuration does not validate: %v", errs)
			}
		}},
		{"generic udp", Generic, Answers{Address: "203.0.113.5:5060", Prefix: "0", Username: "u", Password: "p", Register: true}, func(t *testing.T, c *config.Config) {
			if l := listener(t, c, "outside", "udp"); l.Port != 5060 {
				t.Errorf("udp listener = %+v", l)
			}
			p := c.Peers[0]
			if p.Address != "203.0.113.5:5060" || p.Transport != "udp" || !p.Auth.Register || p.Prefix != "0" {
				t.Errorf("peer = %+v", p)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := withFQDN()
			if err := Apply(c, tt.profile, tt.a); err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
			// Applying twice changes nothing more (one peer, one override).
			if err := Apply(c, tt.profile, tt.a); err != nil {
				t.Fatal(err)
			}
			if len(c.Peers) != 1 || len(c.Routing.DNSOverride) > 1 {
				t.Errorf("second apply duplicated: peers %d overrides %d", len(c.Peers), len(c.Routing.DNSOverride))
			}
			tt.check(t, c)
		})
	}
}

func TestApplyRefuses(t *testing.T) {
	if err := Apply(config.Default(), TeamsDirectRouting, Answers{}); err == nil {
		t.Error("teams without FQDN accepted")
	}
	if err := Apply(config.Default(), Generic, Answers{}); err == nil {
		t.Error("generic without address accepted")
	}
	if err := Apply(config.Default(), "nope", Answers{}); !errors.Is(err, ErrUnknown) {
		t.Errorf("unknown profile: %v", err)
	}
}

func listener(t *testing.T, c *config.Config, iface, transport string) config.Listener {
	t.Helper()
	for _, l := range c.SIP.Listeners {
		if l.Interface == iface && l.Transport == transport {
			return l
		}
	}
	t.Fatalf("no %s listener on %s", transport, iface)
	return config.Listener{}
}

func policy(c *config.Config, iface string) config.MediaPolicy {
	for _, p := range c.Media.Policies {
		if p.Interface == iface {
			return p
		}
	}
	return config.MediaPolicy{}
}

// Every profile, applied to the defaults with plausible answers, gives a
// configuration that passes validation.
func TestProfilesValidate(t *testing.T) {
	answers := map[string]Answers{
		Generic:            {Domain: "trunk.example.net", Transport: "tls", Prefix: "0", Username: "u", Password: "p", Register: true},
		Office365UM:        {Domain: "abc.um.outlook.com"},
		TeamsDirectRouting: {Version: "1.0"},
	}
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			c := withFQDN()
			if err := Apply(c, name, answers[name]); err != nil {
				t.Fatal(err)
			}
			if errs := c.Validate(); len(errs) > 0 {
				t.Fatalf("profile %s gives an invalid configuration:\n%v", name, errs)
			}
		})
	}
}

// Issue 18: a lab trunk (generic profile) applied after the Teams profile
// on the same interface leaves Teams on SRTP: the lab gets a policy of its
// own, and the interface's stays as Teams needs it. Also for a Teams peer
// written before peers had their own policy (it relies on the interface).
func TestSecondProfileKeepsTeamsSRTP(t *testing.T) {
	for _, old := range []bool{false, true} {
		t.Run(map[bool]string{false: "teams with its own policy", true: "teams relying on the interface"}[old], func(t *testing.T) {
			c := withFQDN()
			if err := Apply(c, TeamsDirectRouting, Answers{PeerName: "teams"}); err != nil {
				t.Fatal(err)
			}
			if old {
				c.Peers[0].Media = config.PeerMedia{}
			}
			before := policy(c, "outside")
			if err := Apply(c, Generic, Answers{PeerName: "lab", Address: "198.51.100.7", Transport: "udp"}); err != nil {
				t.Fatal(err)
			}
			if got := policy(c, "outside"); got != before {
				t.Errorf("outside policy %+v → %+v", before, got)
			}
			if g, r := c.PeerMediaPolicy(c.Peers[0]); g != "SRTP" || r != "srtp" {
				t.Errorf("teams media policy %s/%s, want SRTP/srtp", g, r)
			}
			if lab := c.Peers[1]; lab.Media != (config.PeerMedia{Group: "RTP", Requirement: "either"}) {
				t.Errorf("lab media %+v", lab.Media)
			}
			if errs := c.Validate(); errs != nil {
				t.Errorf("invalid: %v", errs)
			}
		})
	}
}

// A profile alone on its interface sets the interface's policy as before,
// and its peer's own.
func TestProfileSetsPeerPolicy(t *testing.T) {
	c := withFQDN()
	if err := Apply(c, Generic, Answers{PeerName: "lab", Address: "198.51.100.7", Transport: "udp"}); err != nil {
		t.Fatal(err)
	}
	if p := policy(c, "outside"); p.Requirement != "either" || p.Group != "RTP" {
		t.Errorf("outside policy %+v", p)
	}
	if got := ReliesOnInterface(c, "outside", ""); len(got) != 0 {
		t.Errorf("relying on outside: %v", got)
	}
	c.Peers = append(c.Peers, config.Peer{Name: "old", Interface: "outside"})
	if got := ReliesOnInterface(c, "outside", "lab"); !slices.Equal(got, []string{"old"}) {
		t.Errorf("relying on outside: %v", got)
	}
}
