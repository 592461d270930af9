package guard

import (
	"net/netip"
	"testing"

	"github.com/palisade-sbc/palisade/internal/config"
)

func rangesConfig() *config.Config {
	return testConfig(func(c *config.Config) {
		c.Peers = append(c.Peers,
			config.Peer{Name: "teams-r", Kind: "itsp", Interface: "outside", Domain: "sip.pstnhub.microsoft.com", Transport: "tls",
				Trunk: config.PeerTrunk{Ranges: []string{"52.112.0.0/14", "52.120.0.0/14", "2603:1063::/38"}}},
			// a narrower range of another peer inside Teams' range wins there
			config.Peer{Name: "lab", Kind: "itsp", Interface: "outside", Address: "192.0.2.200", Transport: "udp",
				Trunk: config.PeerTrunk{Ranges: []string{"52.113.7.0/24"}}},
			config.Peer{Name: "pbx-r", Kind: "pbx", Interface: "inside", Address: "10.0.0.11", Transport: "udp",
				Trunk: config.PeerTrunk{Ranges: []string{"10.9.0.0/16"}}})
	})
}

func TestPeerRangesLookup(t *testing.T) {
	pr := NewPeerRanges(rangesConfig().Peers)
	for _, tc := range []struct{ addr, iface, want string }{
		{"52.112.0.1", "outside", "teams-r"},
		{"52.115.255.254", "outside", "teams-r"},
		{"52.116.0.1", "outside", ""}, // just past 52.112.0.0/14
		{"52.121.3.4", "outside", "teams-r"},
		{"::ffff:52.120.0.9", "outside", "teams-r"}, // IPv4-mapped source
		{"2603:1063:1::5", "outside", "teams-r"},
		{"52.113.7.9", "outside", "lab"}, // most specific range
		{"52.112.0.1", "inside", ""},     // wrong interface
		{"10.9.1.1", "inside", "pbx-r"},
		{"10.9.1.1", "outside", ""},
		{"203.0.113.1", "outside", ""},
	} {
		if got := pr.Lookup(netip.MustParseAddr(tc.addr), tc.iface); got != tc.want {
			t.Errorf("Lookup(%s, %s) = %q, want %q", tc.addr, tc.iface, got, tc.want)
		}
	}
	var none *PeerRanges
	if none.Lookup(netip.MustParseAddr("52.112.0.1"), "outside") != "" {
		t.Error("nil ranges matched")
	}
}

// TestCheckRanges: a source inside a peer's range is that peer on a
// restricted interface (allowed, exempt from per-source limits); outside
// every range it is refused as before.
func TestCheckRanges(t *testing.T) {
	cfg := rangesConfig()
	cfg.SIP.SourceRateLimit = 1
	g, _ := newTestGuard(t, cfg)
	for i := 0; i < 20; i++ {
		if v := g.Check(Request{Source: src("52.114.12.3:5061"), Interface: "outside", Method: "INVITE"}); v.Action != Allow {
			t.Fatalf("request %d from Teams' range: %+v", i, v)
		}
	}
	if v := g.Check(Request{Source: src("52.116.0.1:5061"), Interface: "outside", Method: "INVITE"}); v.Action != Reject || v.Code != 403 {
		t.Fatalf("outside the range: %+v", v)
	}
	if got := g.RangePeer(netip.MustParseAddr("52.120.1.1"), "outside"); got != "teams-r" {
		t.Fatalf("RangePeer = %q", got)
	}
}
