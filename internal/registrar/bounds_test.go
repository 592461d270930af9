package registrar

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// TestFloodBounds: REGISTER floods with ever new users or sources cannot
// grow the registrar's memory without bound.
func TestFloodBounds(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	m := newAlgMemo(clock)
	g := newGuard(clock)
	for i := 0; i < 3*maxGuardEntries; i++ {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		m.challenged(ip, fmt.Sprint("u", i))
		g.fail(ip, fmt.Sprint("u", i))
	}
	if len(m.pending) > maxAlgEntries || len(m.md5Only) > maxAlgEntries {
		t.Fatalf("algorithm memory grew to %d/%d entries", len(m.pending), len(m.md5Only))
	}
	if len(g.m) > maxGuardEntries {
		t.Fatalf("failure memory grew to %d entries", len(g.m))
	}
	// a lockout in progress survives the flood's clean-ups
	victim := netip.MustParseAddr("192.0.2.99")
	for i := 0; i < failsPerUser; i++ {
		g.fail(victim, "alice")
	}
	for i := 0; i < 2*maxGuardEntries; i++ {
		g.fail(netip.AddrFrom4([4]byte{11, byte(i >> 16), byte(i >> 8), byte(i)}), "x")
	}
	if !g.locked(victim, "alice") {
		t.Fatal("lockout forgotten under a flood")
	}
}

func TestBindingHop(t *testing.T) {
	tests := []struct {
		name      string
		b         Binding
		host      string
		port      int
		transport string
	}{
		{"udp, contact is the source", Binding{Contact: "sip:a@192.0.2.5:5062", Source: "192.0.2.5:5062", Transport: "udp"}, "192.0.2.5", 5062, "udp"},
		{"udp, contact port differs: contact wins", Binding{Contact: "sip:a@192.0.2.5:5070", Source: "192.0.2.5:5062", Transport: "udp"}, "192.0.2.5", 5070, "udp"},
		{"udp behind NAT", Binding{Contact: "sip:a@10.0.0.5:5060", Source: "198.51.100.1:40000", Transport: "udp"}, "198.51.100.1", 40000, "udp"},
		{"tcp: the connection", Binding{Contact: "sip:a@192.0.2.5:5060;transport=tcp", Source: "192.0.2.5:51000", Transport: "tcp"}, "192.0.2.5", 51000, "tcp"},
		{"tls: the connection", Binding{Contact: "sips:a@phone.example", Source: "192.0.2.6:52000", Transport: "tls"}, "192.0.2.6", 52000, "tls"},
		{"host name contact over udp", Binding{Contact: "sip:a@phone.example:5060", Source: "192.0.2.7:5060", Transport: "udp"}, "192.0.2.7", 5060, "udp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, ok := tt.b.hop()
			if !ok || h.Host != tt.host || h.Port != tt.port || h.Transport != tt.transport || h.User != "a" {
				t.Fatalf("hop %+v", h)
			}
		})
	}
	if _, ok := (Binding{Contact: "not a uri <"}).hop(); ok {
		t.Fatal("a broken stored contact gives a hop")
	}
}
