package config

import (
	"bytes"
	"strings"
	"testing"
)

func trunkPeer(t PeerTrunk) *Config {
	c := Default()
	c.Peers = []Peer{{Name: "teams", Kind: "itsp", Interface: "outside", Domain: "sip.pstnhub.microsoft.com", Transport: "tls", Trunk: t}}
	return c
}

func TestPeerTrunkValidate(t *testing.T) {
	good := PeerTrunk{
		Targets:   []string{"sip2.pstnhub.microsoft.com:5061", "sip3.pstnhub.microsoft.com:5061"},
		Ranges:    []string{"52.112.0.0/14", "52.120.0.0/14", "2603:1063::/38"},
		Keepalive: PeerKeepalive{Up: "2xx", Headers: map[string]string{"X-Probe": "1"}, DownAfter: 2},
		Numbers: PeerNumbers{Outbound: []NumberRule{{Match: `00([1-9][0-9]+)`, Replace: "+$1"}, {Fields: []string{"from", "pai"}, Match: `[1-9][0-9]{6,14}`, AddPrefix: "+"}},
			Inbound: []NumberRule{{Match: `\+[0-9]+`, StripPrefix: "+"}}, UserPhone: true},
		Trust:       PeerTrust{SystemRoots: true, ServerAuthClientCert: true},
		Offer:       PeerOffer{Required: true, Codecs: []string{"PCMA", "telephone-event"}},
		HistoryInfo: "rewrite", OwnAllow: true,
	}
	if errs := trunkPeer(good).Validate(); errs != nil {
		t.Fatalf("valid trunk refused: %v", errs)
	}
	for _, tc := range []struct {
		name string
		edit func(*PeerTrunk)
		path string
		msg  string
	}{
		{"rule that empties a number", func(p *PeerTrunk) { p.Numbers.Outbound = []NumberRule{{StripPrefix: "0"}} }, "peers[0].trunk.numbers.outbound[0]", "empty number"},
		{"inbound optional group", func(p *PeerTrunk) { p.Numbers.Inbound = []NumberRule{{Match: `\+?([0-9]*)`, Replace: "$1"}} }, "peers[0].trunk.numbers.inbound[0]", "empty number"},
		{"bad regex", func(p *PeerTrunk) { p.Numbers.Outbound = []NumberRule{{Match: `(`}} }, "peers[0].trunk.numbers.outbound[0]", "match"},
		{"bad CIDR", func(p *PeerTrunk) { p.Ranges = []string{"52.112.0.0/33"} }, "peers[0].trunk.ranges[0]", "not a CIDR"},
		{"not a range", func(p *PeerTrunk) { p.Ranges = []string{"teams"} }, "peers[0].trunk.ranges[0]", "not a CIDR"},
		{"host bits", func(p *PeerTrunk) { p.Ranges = []string{"52.113.1.0/14"} }, "peers[0].trunk.ranges[0]", "52.112.0.0/14"},
		{"duplicate range", func(p *PeerTrunk) { p.Ranges = []string{"52.112.0.0/14", "52.112.0.0/14"} }, "peers[0].trunk.ranges[1]", "already listed"},
		{"bad target", func(p *PeerTrunk) { p.Targets = []string{"sip2 .example:5061"} }, "peers[0].trunk.targets[0]", ""},
		{"bad up", func(p *PeerTrunk) { p.Keepalive.Up = "200" }, "peers[0].trunk.keepalive.up", "not one of"},
		{"down_after", func(p *PeerTrunk) { p.Keepalive.DownAfter = -1 }, "peers[0].trunk.keepalive.down_after", "outside"},
		{"header name", func(p *PeerTrunk) { p.Keepalive.Headers = map[string]string{"X MS": "a"} }, `peers[0].trunk.keepalive.headers["X MS"]`, "header name"},
		{"codec", func(p *PeerTrunk) { p.Offer.Codecs = []string{"AMR"} }, "peers[0].trunk.offer.codecs[0]", "not one of"},
		{"codec twice", func(p *PeerTrunk) { p.Offer.Codecs = []string{"PCMA", "PCMA"} }, "peers[0].trunk.offer.codecs[1]", "already listed"},
		{"history_info", func(p *PeerTrunk) { p.HistoryInfo = "hide" }, "peers[0].trunk.history_info", "not one of"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := good
			tc.edit(&tr)
			errs := trunkPeer(tr).Validate()
			for _, e := range errs {
				if e.Path == tc.path && strings.Contains(e.Message, tc.msg) {
					return
				}
			}
			t.Fatalf("want an error at %s containing %q, got %v", tc.path, tc.msg, errs)
		})
	}
}

// TestPeerTrunkDocument: trunk settings survive encode and decode, and a
// peer without them is written as before (no "trunk" member).
func TestPeerTrunkDocument(t *testing.T) {
	c := trunkPeer(PeerTrunk{Ranges: []string{"52.112.0.0/14"}, Keepalive: PeerKeepalive{Up: "2xx"},
		Numbers: PeerNumbers{Outbound: []NumberRule{{Match: `[1-9][0-9]+`, AddPrefix: "+"}}}})
	b, err := Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !Equal(c, back) || back.Peers[0].Trunk.Numbers.Outbound[0].AddPrefix != "+" {
		t.Fatalf("trunk settings lost:\n%s", b)
	}
	c.Peers[0].Trunk = PeerTrunk{}
	if b, _ = Encode(c); bytes.Contains(b, []byte(`"trunk"`)) {
		t.Fatalf("a peer without trunk settings is written with them:\n%s", b)
	}
	d, err := Decode([]byte(`{"peers":[{"name":"t","kind":"itsp","interface":"outside","address":"192.0.2.1","transport":"udp","trunk":{"numbers":{"outbound":[{"strip_prefix":"0"}]}}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if errs := d.Validate(); errs == nil || !strings.Contains(errs.Error(), "peers[0].trunk.numbers.outbound[0]: can make an empty number") {
		t.Fatalf("Validate of an emptying rule: %v", errs)
	}
}

func TestPeerTrunkWarnings(t *testing.T) {
	c := trunkPeer(PeerTrunk{Trust: PeerTrust{SystemRoots: true}, Keepalive: PeerKeepalive{Up: "2xx"}})
	w := c.Warnings()
	has := func(path, text string) bool {
		for _, e := range w {
			if e.Path == path && strings.Contains(e.Message, text) {
				return true
			}
		}
		return false
	}
	if !has("peers[0].trunk.keepalive", "options_interval is 0") || !has("peers[0].trunk.trust.system_roots", "public CA") {
		t.Fatalf("warnings: %v", w)
	}
	// With system roots, an empty CA store no longer means "cannot verify".
	if has("peers[0].transport", "no CA is trusted") {
		t.Fatalf("warnings: %v", w)
	}
	c.Peers[0].OptionsInterval = Duration(60e9)
	c.Peers[0].Transport = "udp"
	if w = c.Warnings(); has("peers[0].trunk.keepalive", "") || !has("peers[0].trunk.trust", "udp") {
		t.Fatalf("warnings: %v", w)
	}
}
