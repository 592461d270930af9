package media

import (
	"errors"
	"strings"
	"testing"

	"github.com/palisade-sbc/palisade/internal/config"
)

// Two trunks on the outside interface: Teams inherits the interface's SRTP
// requirement, the lab trunk has plain RTP of its own. The same offer from
// the inside PBX goes out as RTP/SAVP with a=crypto towards Teams and as
// RTP/AVP without towards the lab; a plain answer is taken from the lab
// only, and the refusal towards Teams names the peer and its setting.
func TestPeerPolicies(t *testing.T) {
	cfg := testConfig(t, 20)
	cfg.Peers = []config.Peer{
		{Name: "teams", Kind: "itsp", Interface: "outside", Domain: "sip.pstnhub.microsoft.com", Transport: "tls",
			Media: config.PeerMedia{Requirement: "srtp"}},
		{Name: "lab", Kind: "itsp", Interface: "outside", Address: "192.0.2.7", Transport: "udp",
			Media: config.PeerMedia{Group: "RTP", Requirement: "rtp"}},
	}
	r := newTestRelay(t, cfg)
	for _, tc := range []struct {
		peer   string
		proto  string
		crypto bool
		source string
	}{
		{"teams", "RTP/SAVP", true, "peers[0].media"},
		{"lab", "RTP/AVP", false, "peers[1].media"},
		{"", "RTP/SAVP", true, "media.policies[0]"}, // no peer: the interface's
	} {
		t.Run("peer "+tc.peer, func(t *testing.T) {
			if p := r.PolicyForPeer("outside", tc.peer); p.Source != tc.source {
				t.Errorf("policy from %s, want %s", p.Source, tc.source)
			}
			mc, err := r.NewCall(t.Name(), Leg{Interface: "inside", Bind: lo}, Leg{Interface: "outside", Bind: lo, Peer: tc.peer})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(mc.Close)
			pbx, ext := newEndpoint(t), newEndpoint(t)
			out, err := mc.Offer(SideA, pbx.sdpBody("RTP/AVP"))
			if err != nil {
				t.Fatal(err)
			}
			if s := string(out); !strings.Contains(s, " "+tc.proto+" ") || strings.Contains(s, "a=crypto:") != tc.crypto {
				t.Fatalf("offer towards %q, want %s (crypto %v):\n%s", tc.peer, tc.proto, tc.crypto, s)
			}
			_, err = mc.Answer(SideB, ext.sdpBody("RTP/AVP"))
			switch {
			case tc.crypto && !errors.Is(err, ErrNotAcceptable):
				t.Fatalf("plain answer from %q taken: %v", tc.peer, err)
			case tc.crypto && !strings.Contains(err.Error(), tc.source):
				t.Errorf("refusal does not name %s: %v", tc.source, err)
			case !tc.crypto && err != nil:
				t.Fatalf("plain answer from the lab refused: %v", err)
			}
		})
	}
	if p := r.PolicyForPeer("outside", "teams"); !strings.Contains(p.hintSRTP(), `peers[0].media.requirement`) || p.Peer != "teams" {
		t.Errorf("hint %q", p.hintSRTP())
	}
	// Media encryption switched off: the peers' settings do not bring it back.
	cfg.Media.EncryptionEnabled = false
	if p := newTestRelay(t, cfg).PolicyForPeer("outside", "teams"); p.Requirement != RequireRTP || len(p.Suites) != 0 {
		t.Errorf("encryption off: %+v", p)
	}
}
