package routing

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
)

func testConfig() *config.Config {
	c := config.Default()
	c.Peers = []config.Peer{
		{Name: "pbx", Kind: "pbx", Interface: "inside", Address: "10.0.0.10:5060", Transport: "udp"},
		{Name: "trunk", Kind: "itsp", Interface: "outside", Domain: "sip.example.net", Transport: "tls", Prefix: "0"},
		{Name: "backup", Kind: "itsp", Interface: "outside", Address: "192.0.2.7", Transport: "udp"},
	}
	c.Routing.DNSOverride = []config.DNSOverride{{Domain: "override.example", Targets: []config.Target{
		{Host: "192.0.2.1", Port: 5070, Transport: "tcp", Priority: 20},
		{Host: "192.0.2.2", Port: 5080, Transport: "udp", Priority: 10},
	}}}
	c.DialPlan.Rules = []config.DialRule{
		{Name: "emergency", Head: "11", Tail: "0-9", ForwardTo: []config.Forward{{Peer: "trunk"}}},
		{Name: "intl", Prefix: "00", Tail: "0-9", ForwardTo: []config.Forward{
			{Peer: "trunk", Rewrite: "+${user}", Timeout: config.Duration(5 * time.Second)},
			{Peer: "backup"},
		}},
		{Name: "ext", Regex: `4([0-9]{3})`, Source: "outside", ForwardTo: []config.Forward{{Peer: "pbx", Rewrite: "$1"}}},
		{Name: "vip", FromURI: "sip:ceo@*", ForwardTo: []config.Forward{{URI: "sip:desk@192.0.2.50:5062;transport=tcp"}}},
		{Name: "night", TimeClass: "after-hours", ForwardTo: []config.Forward{{Peer: "pbx"}}},
	}
	return c
}

func TestRoute(t *testing.T) {
	tab, err := NewTable(testConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	allUp := func(string) bool { return true }
	for _, tc := range []struct {
		name  string
		req   Request
		up    func(string) bool
		want  []Hop
		noHit bool
	}{
		{"head kept, tail checked", Request{User: "110", SourceInterface: "inside"}, allUp,
			[]Hop{{Step: "dial_plan", Rule: "emergency", Peer: "trunk", User: "110", Host: "sip.example.net", Transport: "tls"}}, false},
		{"prefix stripped, rows in order", Request{User: "0049301234", SourceInterface: "inside"}, allUp,
			[]Hop{
				{Step: "dial_plan", Rule: "intl", Peer: "trunk", User: "+49301234", Host: "sip.example.net", Transport: "tls", Timeout: 5 * time.Second},
				{Step: "dial_plan", Rule: "intl", Peer: "backup", User: "49301234", Host: "192.0.2.7", Transport: "udp"},
			}, false},
		{"peer down is routed around", Request{User: "0049301234"}, func(p string) bool { return p != "trunk" },
			[]Hop{{Step: "dial_plan", Rule: "intl", Peer: "backup", User: "49301234", Host: "192.0.2.7", Transport: "udp"}}, false},
		{"regex with groups and source", Request{User: "4123", SourceInterface: "outside"}, allUp,
			[]Hop{{Step: "dial_plan", Rule: "ext", Peer: "pbx", User: "123", Host: "10.0.0.10", Port: 5060, Transport: "udp"}}, false},
		{"from uri to explicit uri", Request{User: "77", FromURI: "sip:ceo@corp.example"}, allUp,
			[]Hop{{Step: "dial_plan", Rule: "vip", Scheme: "sip", User: "desk", Host: "192.0.2.50", Port: 5062, Transport: "tcp"}}, false},
		{"dns override by priority", Request{User: "5", Host: "override.example"}, allUp,
			[]Hop{
				{Step: "dns_override", Scheme: "sip", User: "5", Host: "192.0.2.2", Port: 5080, Transport: "udp"},
				{Step: "dns_override", Scheme: "sip", User: "5", Host: "192.0.2.1", Port: 5070, Transport: "tcp"},
			}, false},
		{"default: pbx to first itsp with its prefix", Request{User: "0301234", SourcePeer: "pbx"}, allUp,
			[]Hop{{Step: "default", Peer: "trunk", User: "301234", Host: "sip.example.net", Transport: "tls"}}, false},
		{"default: trunk to pbx", Request{User: "200", SourceInterface: "outside"}, allUp,
			[]Hop{{Step: "default", Peer: "pbx", User: "200", Host: "10.0.0.10", Port: 5060, Transport: "udp"}}, false},
		{"unknown source: no route", Request{User: "200", SourceInterface: "dmz"}, allUp, nil, true},
		{"matching rule with every peer down", Request{User: "110"}, func(string) bool { return false }, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hops, err := tab.Route(tc.req, tc.up)
			if tc.noHit {
				if !errors.Is(err, ErrNoRoute) && !errors.Is(err, ErrAllDown) {
					t.Fatalf("want ErrNoRoute, got %v %v", hops, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(hops) != len(tc.want) {
				t.Fatalf("got %d hops %+v, want %+v", len(hops), hops, tc.want)
			}
			for i := range hops {
				g, w := hops[i], tc.want[i]
				if w.Scheme == "" {
					w.Scheme = "sip"
				}
				w.Interface = g.Interface // interface comes from the peer; checked below
				w.Headers = g.Headers
				if g.Step != w.Step || g.Rule != w.Rule || g.Peer != w.Peer || g.User != w.User || g.Host != w.Host ||
					g.Port != w.Port || g.Transport != w.Transport || g.Timeout != w.Timeout || g.Scheme != w.Scheme {
					t.Fatalf("hop %d = %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

func TestNewTableErrors(t *testing.T) {
	for name, mut := range map[string]func(*config.Config){
		"bad regex": func(c *config.Config) {
			c.DialPlan.Rules = []config.DialRule{{Regex: "(", ForwardTo: []config.Forward{{Peer: "pbx"}}}}
		},
		"unknown peer": func(c *config.Config) {
			c.DialPlan.Rules = []config.DialRule{{ForwardTo: []config.Forward{{Peer: "nope"}}}}
		},
		"bad uri": func(c *config.Config) {
			c.DialPlan.Rules = []config.DialRule{{ForwardTo: []config.Forward{{URI: "sip:"}}}}
		},
	} {
		t.Run(name, func(t *testing.T) {
			c := testConfig()
			mut(c)
			if _, err := NewTable(c, nil); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestOrderByPriorityWeight(t *testing.T) {
	ts := []Target{{Priority: 10, Weight: 90}, {Priority: 10, Weight: 10}, {Priority: 5, Weight: 0}, {Priority: 20, Weight: 1}}
	first := map[int]int{}
	seq := 0
	// a deterministic "random" source cycling through the range
	intn := func(n int) int { seq++; return seq % n }
	for i := 0; i < 1000; i++ {
		got := OrderByPriorityWeight(ts, intn)
		if got[0] != 2 || got[3] != 3 {
			t.Fatalf("priorities not respected: %v", got)
		}
		first[got[1]]++
	}
	// weight 90 vs 10: the heavy one should come first about 9 times in 10
	if first[0] < 800 || first[0] > 950 {
		t.Fatalf("weighted choice off: %v", first)
	}
}

func FuzzSplitHostPort(f *testing.F) {
	for _, s := range []string{"a:1", "[::1]:5060", "1.2.3.4", "host", "::1", "[fe80::1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, p := splitHostPort(s)
		if p < 0 || p > 65535 || len(h) > len(s) {
			t.Fatalf("%q → %q %d", s, h, p)
		}
	})
}

// TestSourcePeerOn: peers sharing an IP address are told apart by the
// interface a request arrives on and by their port.
func TestSourcePeerOn(t *testing.T) {
	cfg := config.Default()
	cfg.Network.Interfaces = []config.Interface{{Name: "inside", Address: "10.0.0.1"}, {Name: "outside", Address: "192.0.2.1"}}
	cfg.Peers = []config.Peer{
		{Name: "pbx", Kind: "pbx", Interface: "inside", Address: "127.0.0.1:5070", Transport: "udp"},
		{Name: "trunk", Kind: "itsp", Interface: "outside", Address: "127.0.0.1:5090", Transport: "udp"},
		{Name: "pbx2", Kind: "pbx", Interface: "inside", Address: "10.0.0.20:5060", Transport: "udp"},
		{Name: "pbx3", Kind: "pbx", Interface: "inside", Address: "10.0.0.20:5062", Transport: "udp"},
		{Name: "gw", Kind: "pbx", Interface: "inside", Address: "10.0.0.30", Transport: "tcp"},
	}
	tab, err := NewTable(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		iface, src, want string
	}{
		{"inside", "127.0.0.1:5070", "pbx"},
		{"outside", "127.0.0.1:5090", "trunk"},
		{"inside", "127.0.0.1:5090", "pbx"},    // the trunk is not on the inside: only the PBX is left
		{"outside", "127.0.0.1:5070", "trunk"}, // and the PBX not on the outside
		{"inside", "127.0.0.1:40000", "pbx"},   // the one peer there, from another port
		{"inside", "10.0.0.20:5062", "pbx3"},   // port decides
		{"inside", "10.0.0.20:40000", ""},      // two peers there, neither port: nobody
		{"inside", "10.0.0.30:51234", "gw"},    // no port given: any
		{"outside", "10.0.0.30:51234", ""},     // another interface
		{"inside", "10.9.9.9:5060", ""},
	} {
		if got := tab.SourcePeerOn(tc.iface, netip.MustParseAddrPort(tc.src)); got != tc.want {
			t.Errorf("%s %s: %q, want %q", tc.iface, tc.src, got, tc.want)
		}
	}
}
