package config

import (
	"encoding/json"
	"strings"
	"testing"
)

// mediaPeers is the defaults (outside: SRTP required, inside: RTP) with a
// Teams trunk and a lab trunk on outside, the lab one on plain RTP.
func mediaPeers(teams, lab PeerMedia) *Config {
	c := Default()
	c.Peers = []Peer{
		{Name: "teams", Kind: "itsp", Interface: "outside", Domain: "sip.pstnhub.microsoft.com", Transport: "tls", Media: teams},
		{Name: "lab", Kind: "itsp", Interface: "outside", Address: "192.0.2.7", Transport: "udp", Media: lab},
	}
	return c
}

func TestPeerMediaValidate(t *testing.T) {
	for _, tc := range []struct {
		name      string
		teams     PeerMedia
		lab       PeerMedia
		edit      func(*Config)
		path, msg string // "" = valid
	}{
		{name: "both inherit"},
		{name: "lab plain RTP, group inherited", lab: PeerMedia{Requirement: "rtp"}},
		{name: "lab plain RTP with its group", lab: PeerMedia{Group: "RTP", Requirement: "rtp"}},
		{name: "lab either", lab: PeerMedia{Group: "SRTP", Requirement: "either"}},
		{name: "teams srtp on an rtp interface", teams: PeerMedia{Group: "SRTP", Requirement: "srtp"},
			edit: func(c *Config) { c.Media.Policies = []MediaPolicy{} }},
		{name: "unknown requirement", lab: PeerMedia{Requirement: "plain"},
			path: "peers[1].media.requirement", msg: `"plain" is not one of`},
		{name: "unknown group", lab: PeerMedia{Group: "LAB"},
			path: "peers[1].media.group", msg: `"LAB"`},
		{name: "srtp with the interface's RTP group", teams: PeerMedia{Requirement: "srtp"},
			edit: func(c *Config) { c.Media.Policies = []MediaPolicy{} },
			path: "peers[0].media.requirement", msg: `group "RTP" has none (the group of media.default_policy (interface outside); set peers[0].media.group)`},
		{name: "srtp with an RTP group", teams: PeerMedia{Group: "RTP", Requirement: "srtp"},
			path: "peers[0].media.requirement", msg: `srtp needs an SRTP suite, but group "RTP" has none`},
		{name: "rtp with an own SRTP-only group", lab: PeerMedia{Group: "SRTP", Requirement: "rtp"},
			path: "peers[1].media.requirement", msg: "rtp needs the cleartext suite"},
		{name: "srtp while encryption is off", teams: PeerMedia{Group: "SRTP", Requirement: "srtp"},
			edit: func(c *Config) { c.Media.EncryptionEnabled = false; c.Media.Policies = []MediaPolicy{} },
			path: "peers[0].media.requirement", msg: "media.encryption_enabled is false"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mediaPeers(tc.teams, tc.lab)
			if tc.edit != nil {
				tc.edit(c)
			}
			errs := c.Validate()
			if tc.path == "" {
				if errs != nil {
					t.Fatalf("refused: %v", errs)
				}
				return
			}
			for _, e := range errs {
				if e.Path == tc.path && strings.Contains(e.Message, tc.msg) {
					return
				}
			}
			t.Fatalf("want an error at %s containing %q, got %v", tc.path, tc.msg, errs)
		})
	}
}

func TestPeerMediaPolicy(t *testing.T) {
	c := mediaPeers(PeerMedia{}, PeerMedia{Group: "RTP", Requirement: "rtp"})
	if g, r := c.PeerMediaPolicy(c.Peers[0]); g != "SRTP" || r != "srtp" {
		t.Errorf("teams (inherits outside) = %s/%s, want SRTP/srtp", g, r)
	}
	if g, r := c.PeerMediaPolicy(c.Peers[1]); g != "RTP" || r != "rtp" {
		t.Errorf("lab = %s/%s, want RTP/rtp", g, r)
	}
	c.Peers[1].Media = PeerMedia{Requirement: "either"}
	if g, r := c.PeerMediaPolicy(c.Peers[1]); g != "SRTP" || r != "either" {
		t.Errorf("lab with requirement only = %s/%s, want SRTP/either", g, r)
	}
	if _, _, src := c.MediaPolicyOf("inside"); src != "media.default_policy" {
		t.Errorf("inside policy from %s", src)
	}
}

// A peer without a policy of its own is written without "media", so that
// documents from before the field read and write as they did.
func TestPeerMediaOmitted(t *testing.T) {
	c := mediaPeers(PeerMedia{}, PeerMedia{Requirement: "rtp"})
	b, err := json.Marshal(c.Peers)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), `"media"`); n != 1 {
		t.Errorf("%d media objects in %s, want 1 (the lab's)", n, b)
	}
	doc, err := Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode(doc)
	if err != nil || back.Peers[1].Media.Requirement != "rtp" || back.Peers[0].Media.Set() {
		t.Fatalf("round trip: %+v %v", back.Peers, err)
	}
	// A misspelt field is refused by name, like every other.
	i := strings.LastIndex(string(doc), `"requirement": "rtp"`) // the lab's: peers follow media
	if i < 0 {
		t.Fatalf("no lab requirement in\n%s", doc)
	}
	bad := string(doc[:i]) + `"requirment"` + string(doc[i+len(`"requirement"`):])
	if _, err := Decode([]byte(bad)); err == nil || !strings.Contains(err.Error(), "peers[1].media.requirment") {
		t.Errorf("misspelt field: %v", err)
	}
}

func TestPeerMediaWarnings(t *testing.T) {
	find := func(w Errors, path, msg string) bool {
		for _, e := range w {
			if e.Path == path && strings.Contains(e.Message, msg) {
				return true
			}
		}
		return false
	}
	c := mediaPeers(PeerMedia{Requirement: "srtp"}, PeerMedia{Group: "SRTP", Requirement: "either"})
	w := c.Warnings()
	if find(w, "peers[0].media", "") {
		t.Errorf("teams over tls warned: %v", w)
	}
	if !find(w, "peers[1].media", "over udp, unencrypted") {
		t.Errorf("no warning for SRTP keys over udp: %v", w)
	}
	c.Peers[1].Media = PeerMedia{Group: "RTP", Requirement: "rtp"}
	if w := c.Warnings(); find(w, "peers[1].media", "") {
		t.Errorf("plain RTP lab warned: %v", w)
	}
	c.Media.EncryptionEnabled = false
	if w := c.Warnings(); !find(w, "peers[1].media", "has no effect") {
		t.Errorf("no warning with encryption off: %v", w)
	}
}
