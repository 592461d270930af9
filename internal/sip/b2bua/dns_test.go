package b2bua

import (
	"errors"
	"net/netip"
	"strconv"
	"testing"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/routing/dnstest"
)

// TestRFC3263Failover: a trunk known by its domain; the first SRV target
// answers 503 (UDP) or refuses the connection (TCP), the call goes to the next.
func TestRFC3263Failover(t *testing.T) {
	for _, server := range []string{"miekg", "dnsmasq"} {
		for _, tr := range []string{"udp", "tcp"} {
			t.Run(server+"/"+tr, func(t *testing.T) { testFailover(t, server, tr) })
		}
	}
}

func testFailover(t *testing.T, server, tr string) {
	pbx := newPeerUA(t, "pbx", "127.0.0.1", "udp")
	first := newPeerUA(t, "first", "127.0.0.3", "udp")
	first.SetOnInvite(func(s *sipgo.DialogServerSession, _ *sip.Request) { _ = s.Respond(503, "Overloaded", nil) })
	second := newPeerUA(t, "second", "127.0.0.4", tr)
	firstPort := int(first.Addr.Port())
	if tr == "tcp" {
		firstPort = freePort(t, "tcp", "127.0.0.3") // nobody listens: connection refused
	}
	srvName := "_sip._" + tr + ".trunk.test"
	var dnsAddr string
	if server == "miekg" {
		dns, err := dnstest.Start(
			srvName+". 60 IN SRV 10 0 "+strconv.Itoa(firstPort)+" a.trunk.test.",
			srvName+". 60 IN SRV 20 0 "+strconv.Itoa(int(second.Addr.Port()))+" b.trunk.test.",
			"a.trunk.test. 60 IN A 127.0.0.3",
			"b.trunk.test. 60 IN A 127.0.0.4",
		)
		if err != nil {
			t.Fatal(err)
		}
		defer dns.Close()
		dnsAddr = dns.Addr
	} else {
		dm, err := dnstest.StartDnsmasq(
			"--srv-host="+srvName+",a.trunk.test,"+strconv.Itoa(firstPort)+",10,0",
			"--srv-host="+srvName+",b.trunk.test,"+strconv.Itoa(int(second.Addr.Port()))+",20,0",
			"--host-record=a.trunk.test,127.0.0.3",
			"--host-record=b.trunk.test,127.0.0.4",
		)
		if errors.Is(err, dnstest.ErrNoDnsmasq) {
			t.Skip(err.Error())
		}
		if err != nil {
			t.Fatal(err)
		}
		defer dm.Close()
		dnsAddr = dm.Addr
	}
	u := newTestUnit(t, pbx, nil, func(c *config.Config) {
		c.Network.DNSServers = []string{dnsAddr}
		c.SIP.Listeners = append(c.SIP.Listeners, config.Listener{Interface: "outside", Transport: "tcp"})
		c.Peers = append(c.Peers, config.Peer{Name: "trunk", Kind: "itsp", Interface: "outside", Domain: "trunk.test", Transport: tr})
	})
	ctx := ctxT(t)
	in := u.inside()
	sess, err := pbx.DC.Invite(ctx, uriAt(in, "1"), testSDP("127.0.0.1", 7000))
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		t.Fatal(err)
	}
	if tr == "udp" && first.Wire.Count("INVITE ") == 0 {
		t.Fatal("the priority 10 target was not tried first")
	}
	inv := second.Next(sip.INVITE)
	if inv.Recipient.Host != "trunk.test" {
		t.Fatalf("Request-URI host %q, want the domain", inv.Recipient.Host)
	}
	_ = sess.Ack(ctx)
	_ = sess.Bye(ctx)
	second.Next(sip.BYE)
	waitNoCalls(t, u.Service)
}

// TestSourcePeerByDomain: requests from the addresses a domain peer
// resolves to count as coming from that peer (dial plan source).
func TestSourcePeerByDomain(t *testing.T) {
	pbx := newPeerUA(t, "pbx", "127.0.0.1", "udp")
	trunk := newPeerUA(t, "trunk", "127.0.0.3", "udp")
	dns, err := dnstest.Start(
		"_sip._udp.trunk.test. 60 IN SRV 10 0 "+strconv.Itoa(int(trunk.Addr.Port()))+" a.trunk.test.",
		"a.trunk.test. 60 IN A 127.0.0.3",
	)
	if err != nil {
		t.Fatal(err)
	}
	defer dns.Close()
	u := newTestUnit(t, pbx, nil, func(c *config.Config) {
		c.Network.DNSServers = []string{dns.Addr}
		c.Peers = append(c.Peers, config.Peer{Name: "trunk", Kind: "itsp", Interface: "outside", Domain: "trunk.test", Transport: "udp"})
		c.DialPlan.Rules = []config.DialRule{{Name: "from-trunk", Source: "trunk", ForwardTo: []config.Forward{{Peer: "pbx", Rewrite: "from-trunk-${user}"}}}}
	})
	waitFor(t, func() bool {
		return u.peers.sourcePeer("outside", netip.MustParseAddrPort("127.0.0.3:5060")) == "trunk"
	}, "trunk resolved")
	sess, srv := establish(t, u, trunk, pbx, viaOutside(u))
	if got := srv.InviteRequest.Recipient.User; got != "from-trunk-4930123456" {
		t.Fatalf("PBX got user %q: the trunk was not recognised as the source", got)
	}
	_ = sess.Bye(ctxT(t))
	waitNoCalls(t, u.Service)
}
