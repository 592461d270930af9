package routing

import (
	"context"
	"errors"
	"testing"

	"github.com/palisade-sbc/palisade/internal/routing/dnstest"
)

var zone = []string{
	"example.test. 60 IN NAPTR 10 10 \"S\" \"SIP+D2T\" \"\" _sip._tcp.example.test.",
	"example.test. 60 IN NAPTR 20 10 \"S\" \"SIP+D2U\" \"\" _sip._udp.example.test.",
	"_sip._tcp.example.test. 60 IN SRV 10 60 5070 a.example.test.",
	"_sip._tcp.example.test. 60 IN SRV 10 40 5071 b.example.test.",
	"_sip._tcp.example.test. 60 IN SRV 20 0 5072 c.example.test.",
	"_sip._udp.example.test. 60 IN SRV 10 0 5080 c.example.test.",
	"a.example.test. 60 IN A 127.0.0.11",
	"b.example.test. 60 IN A 127.0.0.12",
	"c.example.test. 0 IN A 127.0.0.13",
	"plain.test. 60 IN A 127.0.0.14",
}

func TestResolveRFC3263(t *testing.T) {
	srv, err := dnstest.Start(zone...)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	r, err := NewResolver([]string{srv.Addr})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		hop  Hop
		want []string // transport/addr, in order (first two may swap for weights)
	}{
		{"NAPTR picks TCP, SRV priority", Hop{Host: "example.test"}, []string{"tcp/127.0.0.1x:507x", "tcp/127.0.0.1x:507x", "tcp/127.0.0.13:5072"}},
		{"transport given: SRV of that transport", Hop{Host: "example.test", Transport: "udp"}, []string{"udp/127.0.0.13:5080"}},
		{"port given: A only", Hop{Host: "a.example.test", Port: 5099, Transport: "tcp"}, []string{"tcp/127.0.0.11:5099"}},
		{"no SRV: A with default port", Hop{Host: "plain.test"}, []string{"udp/127.0.0.14:5060"}},
		{"IP literal", Hop{Host: "127.0.0.9", Transport: "tls"}, []string{"tls/127.0.0.9:5061"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts, err := r.Resolve(ctx, tc.hop)
			if err != nil {
				t.Fatal(err)
			}
			if len(ts) != len(tc.want) {
				t.Fatalf("got %v, want %v", ts, tc.want)
			}
			for i, tg := range ts {
				got := tg.Transport + "/" + tg.Addr.String()
				if !match(tc.want[i], got) {
					t.Fatalf("target %d = %s, want %s (all %v)", i, got, tc.want[i], ts)
				}
			}
		})
	}
	t.Run("weights", func(t *testing.T) {
		first := map[string]int{}
		for i := 0; i < 2000; i++ {
			ts, err := r.Resolve(ctx, Hop{Host: "example.test", Transport: "tcp"})
			if err != nil {
				t.Fatal(err)
			}
			first[ts[0].Addr.String()]++
		}
		a := first["127.0.0.11:5070"]
		if a < 1000 || a > 1400 { // weight 60 of 100
			t.Fatalf("weight 60 target first %d of 2000 (%v)", a, first)
		}
	})
	t.Run("cache by TTL", func(t *testing.T) {
		_, _ = r.Resolve(ctx, Hop{Host: "a.example.test", Port: 1})
		n := srv.Queries()
		_, _ = r.Resolve(ctx, Hop{Host: "a.example.test", Port: 1})
		if srv.Queries() != n {
			t.Fatalf("TTL 60 answer asked again (%d → %d queries)", n, srv.Queries())
		}
		_, _ = r.Resolve(ctx, Hop{Host: "c.example.test", Port: 1})
		n = srv.Queries()
		_, _ = r.Resolve(ctx, Hop{Host: "c.example.test", Port: 1})
		if srv.Queries() == n {
			t.Fatal("TTL 0 answer served from the cache")
		}
	})
}

// match compares with 'x' in want matching any digit.
func match(want, got string) bool {
	if len(want) != len(got) {
		return false
	}
	for i := range want {
		if want[i] != got[i] && !(want[i] == 'x' && got[i] >= '0' && got[i] <= '9') {
			return false
		}
	}
	return true
}

// TestDnsmasqInterop resolves a domain served by dnsmasq (NAPTR, SRV with
// priority and weight, A records).
func TestDnsmasqInterop(t *testing.T) {
	dm, err := dnstest.StartDnsmasq(
		"--naptr-record=trunk.test,10,10,S,SIP+D2U,,_sip._udp.trunk.test",
		"--naptr-record=trunk.test,20,10,S,SIP+D2T,,_sip._tcp.trunk.test",
		"--srv-host=_sip._udp.trunk.test,p1.trunk.test,5060,10,80",
		"--srv-host=_sip._udp.trunk.test,p2.trunk.test,5062,10,20",
		"--srv-host=_sip._udp.trunk.test,backup.trunk.test,5064,20,0",
		"--host-record=p1.trunk.test,127.0.0.21",
		"--host-record=p2.trunk.test,127.0.0.22",
		"--host-record=backup.trunk.test,127.0.0.23",
	)
	if errors.Is(err, dnstest.ErrNoDnsmasq) {
		t.Skip(err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	defer dm.Close()
	ctx := context.Background()
	r, err := NewResolver([]string{dm.Addr})
	if err != nil {
		t.Fatal(err)
	}
	ts, err := r.Resolve(ctx, Hop{Host: "trunk.test"})
	if err != nil {
		t.Fatalf("resolve via dnsmasq: %v", err)
	}
	if len(ts) != 3 || ts[2].Addr.String() != "127.0.0.23:5064" || ts[0].Transport != "udp" {
		t.Fatalf("targets %v", ts)
	}
	first := map[string]int{}
	for i := 0; i < 1000; i++ {
		ts, err := r.Resolve(ctx, Hop{Host: "trunk.test"})
		if err != nil {
			t.Fatal(err)
		}
		first[ts[0].Addr.String()]++
	}
	if p1 := first["127.0.0.21:5060"]; p1 < 700 || p1 > 900 {
		t.Fatalf("weight 80 target first %d of 1000 (%v)", p1, first)
	}
}
