package routing

import (
	"strconv"
	"testing"

	"github.com/palisade-sbc/palisade/internal/config"
)

func TestPeerHops(t *testing.T) {
	cfg := config.Default()
	cfg.Peers = []config.Peer{{Name: "teams", Kind: "itsp", Interface: "outside", Domain: "sip.pstnhub.microsoft.com", Transport: "tls",
		Headers: map[string]string{"X-MS-SBC": "Palisade/SBC/1"},
		Trunk:   config.PeerTrunk{Targets: []string{"sip2.pstnhub.microsoft.com:5061", "sip3.pstnhub.microsoft.com:5061"}}}}
	tb, err := NewTable(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := tb.PeerHops("teams", "+4930123")
	want := []string{"sip.pstnhub.microsoft.com:0", "sip2.pstnhub.microsoft.com:5061", "sip3.pstnhub.microsoft.com:5061"}
	if len(got) != len(want) {
		t.Fatalf("hops %+v", got)
	}
	for i, h := range got {
		if hp := h.Host + ":" + strconv.Itoa(h.Port); hp != want[i] || h.User != "+4930123" || h.Peer != "teams" || h.Transport != "tls" || h.Headers["X-MS-SBC"] == "" {
			t.Errorf("hop %d = %+v, want %s", i, h, want[i])
		}
	}

	// An override of the first name is used, in priority order, and a
	// target it already lists is not tried twice.
	cfg.Routing.DNSOverride = []config.DNSOverride{{Domain: "sip.pstnhub.microsoft.com", Targets: []config.Target{
		{Host: "127.0.0.12", Port: 5071, Transport: "tls", Priority: 2, Weight: 1},
		{Host: "127.0.0.11", Port: 5071, Transport: "tls", Priority: 1, Weight: 1},
		{Host: "sip3.pstnhub.microsoft.com", Port: 5061, Transport: "tls", Priority: 3, Weight: 1},
	}}}
	if tb, err = NewTable(cfg, nil); err != nil {
		t.Fatal(err)
	}
	got = tb.PeerHops("teams", "")
	want = []string{"127.0.0.11:5071", "127.0.0.12:5071", "sip3.pstnhub.microsoft.com:5061", "sip2.pstnhub.microsoft.com:5061"}
	if len(got) != len(want) {
		t.Fatalf("hops %+v", got)
	}
	for i, h := range got {
		if hp := h.Host + ":" + strconv.Itoa(h.Port); hp != want[i] {
			t.Errorf("hop %d = %s, want %s", i, hp, want[i])
		}
	}
	if tb.PeerHops("nobody", "") != nil {
		t.Error("hops for an unknown peer")
	}
}
