package b2bua

import (
	"context"
	"crypto/tls"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/routing/dnstest"
	"github.com/palisade-sbc/palisade/internal/sip/accounts"
)

// TestAccountContactFollowsTransport: the trunk registration's Contact
// names the transport the REGISTER really travels on, with the port of the
// unit's listener for it: configured TCP or TLS, or TCP chosen by NAPTR for
// a peer known by its domain.
func TestAccountContactFollowsTransport(t *testing.T) {
	tests := []struct {
		name string
		tr   string // what the REGISTER must use
		// peer starts the registrar and returns the peer entry (without
		// name and auth) and the DNS server to use ("" = none)
		peer func(t *testing.T, regs chan<- *sip.Request) (config.Peer, string)
	}{
		{"tcp", "tcp", func(t *testing.T, regs chan<- *sip.Request) (config.Peer, string) {
			p := newPeerUAWith(t, "trunk", "127.0.0.3", "tcp", func(p *peerUA) { p.Srv.OnRegister(trunkRegistrar(regs)) })
			return config.Peer{Address: p.Addr.String(), Transport: "tcp"}, ""
		}},
		{"tls", "tls", func(t *testing.T, regs chan<- *sip.Request) (config.Peer, string) {
			return config.Peer{Address: tlsRegistrar(t, regs).String(), Transport: "tls"}, ""
		}},
		{"domain, NAPTR picks TCP", "tcp", func(t *testing.T, regs chan<- *sip.Request) (config.Peer, string) {
			p := newPeerUAWith(t, "trunk", "127.0.0.3", "tcp", func(p *peerUA) { p.Srv.OnRegister(trunkRegistrar(regs)) })
			dns, err := dnstest.Start(
				`trunk.test. 60 IN NAPTR 10 10 "S" "SIP+D2T" "" _sip._tcp.trunk.test.`,
				"_sip._tcp.trunk.test. 60 IN SRV 10 0 "+strconv.Itoa(int(p.Addr.Port()))+" a.trunk.test.",
				"a.trunk.test. 60 IN A 127.0.0.3",
			)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { dns.Close() })
			return config.Peer{Domain: "trunk.test", Transport: "any"}, dns.Addr
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			regs := make(chan *sip.Request, 10)
			peer, dnsAddr := tc.peer(t, regs)
			peer.Name, peer.Kind, peer.Interface = "itsp", "itsp", "outside"
			peer.Auth = config.PeerAuth{Username: "palisade", Password: "s3cret", Register: true}
			pk := newTestPKI(t)
			u := newTestUnitWith(t, nil, nil, Deps{TLS: pk}, func(c *config.Config) {
				c.SIP.Listeners = append(c.SIP.Listeners,
					config.Listener{Interface: "outside", Transport: "tcp"},
					config.Listener{Interface: "outside", Transport: "tls"})
				c.TLS.HandshakeTimeout = config.Duration(2 * time.Second)
				if dnsAddr != "" {
					c.Network.DNSServers = []string{dnsAddr}
				}
				c.Peers = append(c.Peers, peer)
			})
			acc := accounts.New(u.Service, testLogger())
			if err := acc.Apply(context.Background(), u.cfg); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { acc.Close() })
			var reg *sip.Request
			select {
			case reg = <-regs:
			case <-time.After(10 * time.Second):
				t.Fatal("no REGISTER reached the trunk")
			}
			if got := strings.ToLower(reg.Transport()); got != tc.tr {
				t.Fatalf("REGISTER came over %s, want %s", got, tc.tr)
			}
			if v := reg.Via(); !strings.EqualFold(v.Transport, tc.tr) {
				t.Errorf("Via transport %s, want %s", v.Transport, tc.tr)
			}
			ct := reg.Contact()
			if ct == nil {
				t.Fatal("REGISTER without Contact")
			}
			if p, _ := ct.Address.UriParams.Get("transport"); p != tc.tr {
				t.Errorf("Contact %s: transport parameter %q, want %q", ct.Address.String(), p, tc.tr)
			}
			if want := u.ListenAddr("outside", tc.tr); ct.Address.Port != int(want.Port()) || ct.Address.Host != want.Addr().String() {
				t.Errorf("Contact %s, want the outside %s listener %s", ct.Address.String(), tc.tr, want)
			}
			if ct.Address.User != "palisade" {
				t.Errorf("Contact user %q", ct.Address.User)
			}
		})
	}
}

// tlsRegistrar serves trunkRegistrar over TLS on 127.0.0.3.
func tlsRegistrar(t *testing.T, regs chan<- *sip.Request) netip.AddrPort {
	t.Helper()
	pk := newTestPKI(t)
	p := newPeerUAWith(t, "trunk", "127.0.0.3", "udp", func(p *peerUA) { p.Srv.OnRegister(trunkRegistrar(regs)) })
	l, err := tls.Listen("tcp", "127.0.0.3:0", &tls.Config{Certificates: []tls.Certificate{pk.cert}})
	if err != nil {
		t.Fatal(err)
	}
	go p.Srv.ServeTLS(l)
	t.Cleanup(func() { l.Close() })
	return netip.MustParseAddrPort(l.Addr().String())
}
