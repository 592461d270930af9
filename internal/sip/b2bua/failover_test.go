package b2bua

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/routing/dnstest"
)

// blackHole is a UDP socket that reads and records everything sent to it
// and answers nothing: a target that is down without refusing (a host
// gone, a firewall dropping).
type blackHole struct {
	addr netip.AddrPort
	conn net.PacketConn
	mu   sync.Mutex
	msgs []string
	from net.Addr // source of the last datagram
}

func newBlackHole(t *testing.T, ip string) *blackHole {
	t.Helper()
	return newChallengingHole(t, ip, nil)
}

// newChallengingHole is a blackHole that answers the requests reply
// returns a response for (nil: silence).
func newChallengingHole(t *testing.T, ip string, reply func(*sip.Request) *sip.Response) *blackHole {
	t.Helper()
	conn, err := net.ListenPacket("udp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	b := &blackHole{addr: netip.MustParseAddrPort(conn.LocalAddr().String()), conn: conn}
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			b.mu.Lock()
			b.msgs = append(b.msgs, string(buf[:n]))
			b.from = from
			b.mu.Unlock()
			if reply == nil {
				continue
			}
			if m, err := sip.ParseMessage(buf[:n]); err == nil {
				if req, ok := m.(*sip.Request); ok {
					if res := reply(req); res != nil {
						_, _ = conn.WriteTo([]byte(res.String()), from)
					}
				}
			}
		}
	}()
	return b
}

// count returns how many received datagrams start with prefix.
func (b *blackHole) count(prefix string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, m := range b.msgs {
		if strings.HasPrefix(m, prefix) {
			n++
		}
	}
	return n
}

// find returns the received datagrams that start with prefix.
func (b *blackHole) find(prefix string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, m := range b.msgs {
		if strings.HasPrefix(m, prefix) {
			out = append(out, m)
		}
	}
	return out
}

// send writes m to the source of the last datagram received.
func (b *blackHole) send(t *testing.T, m sip.Message) {
	t.Helper()
	b.mu.Lock()
	to := b.from
	b.mu.Unlock()
	if _, err := b.conn.WriteTo([]byte(m.String()), to); err != nil {
		t.Fatal(err)
	}
}

// branches returns the distinct Via branches of the INVITEs received: one
// means retransmissions of one request, not new attempts.
func (b *blackHole) branches() map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string]int{}
	for _, m := range b.msgs {
		if !strings.HasPrefix(m, "INVITE ") {
			continue
		}
		for _, l := range strings.Split(m, "\r\n") {
			if strings.HasPrefix(l, "Via: ") {
				if _, br, ok := strings.Cut(l, "branch="); ok {
					br, _, _ = strings.Cut(br, ";")
					out[br]++
				}
				break
			}
		}
	}
	return out
}

// callDomain places a call from p to sip:user@domain, sent to the unit's
// inside listener (the PBX uses the unit as outbound proxy).
func callDomain(ctx context.Context, p *peerUA, u *testUnit, user, domain string) (*sipgo.DialogClientSession, error) {
	req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: user, Host: domain})
	req.SetDestination(u.inside().String())
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(testSDP(p.IP, 7000))
	return p.DC.WriteInvite(ctx, req)
}

// answeredCall is callDomain to trunk.test for a call that must be
// answered with 200.
func answeredCall(t *testing.T, ctx context.Context, p *peerUA, u *testUnit) *sipgo.DialogClientSession {
	t.Helper()
	sess, err := callDomain(ctx, p, u, "4930123456", "trunk.test")
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		t.Fatalf("the caller got no 200: %v", err)
	}
	return sess
}

// hangUp ends an answered call from the caller's side and waits until the
// callee (when given) has the BYE and the unit no call.
func hangUp(t *testing.T, ctx context.Context, sess *sipgo.DialogClientSession, callee *peerUA, u *testUnit) {
	t.Helper()
	if err := sess.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	if callee != nil {
		callee.Next(sip.BYE)
	}
	waitNoCalls(t, u.Service)
}

// overrideTo sends the domain trunk.test to the given targets, in order.
func overrideTo(c *config.Config, targets ...config.Target) {
	for i := range targets {
		targets[i].Priority = 10 * (i + 1)
	}
	c.Routing.DNSOverride = []config.DNSOverride{{Domain: "trunk.test", Targets: targets}}
}

func udpTarget(ap netip.AddrPort) config.Target {
	return config.Target{Host: ap.Addr().String(), Port: int(ap.Port()), Transport: "udp"}
}

// TestInviteTimeoutFailover: the first DNS override target swallows the
// INVITE (no 100 Trying, nothing); after sip.invite_timeout the unit gives
// it up and the second target answers the call, long before Timer B (32 s).
func TestInviteTimeoutFailover(t *testing.T) {
	pbx := newPeerUA(t, "pbx", "127.0.0.1", "udp")
	dead := newBlackHole(t, "127.0.0.3")
	second := newPeerUA(t, "second", "127.0.0.4", "udp")
	u := newTestUnit(t, pbx, nil, func(c *config.Config) {
		c.SIP.InviteTimeout = config.Duration(1500 * time.Millisecond)
		overrideTo(c, udpTarget(dead.addr), udpTarget(second.Addr))
	})
	before := counterValue(failovers.WithLabelValues("timeout"))
	ctx := ctxT(t) // 15 s: less than Timer B
	sess, err := callDomain(ctx, pbx, u, "4930123456", "trunk.test")
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		t.Fatalf("the caller got no 200 through the second target: %v", err)
	}
	if sess.InviteResponse.StatusCode != 200 {
		t.Fatalf("caller got %d", sess.InviteResponse.StatusCode)
	}
	_ = sess.Ack(ctx)
	inv := second.Next(sip.INVITE)
	if inv.Recipient.User != "4930123456" {
		t.Fatalf("second target got Request-URI %s", inv.Recipient.String())
	}
	// The dead target saw the INVITE and its retransmissions (one
	// transaction: one branch), and no CANCEL: nothing came back to cancel.
	br := dead.branches()
	if len(br) != 1 {
		t.Fatalf("dead target saw %d INVITE transactions %v, want 1", len(br), br)
	}
	for b, n := range br {
		if n < 2 {
			t.Errorf("dead target saw the INVITE (branch %s) %d times, want it retransmitted", b, n)
		}
	}
	if n := dead.count("CANCEL "); n != 0 {
		t.Errorf("dead target got %d CANCELs before any response", n)
	}
	if got := counterValue(failovers.WithLabelValues("timeout")) - before; got != 1 {
		t.Errorf("failovers_total{cause=timeout} grew by %v, want 1", got)
	}
	hangUp(t, ctx, sess, second, u)
	// nothing more went to the dead target once it was given up
	n := dead.count("")
	sleepMS(600) // one T1: a retransmission still running would show
	if m := dead.count(""); m != n {
		t.Errorf("dead target got %d more messages after the failover", m-n)
	}
}

// TestInviteTimeoutAllTargetsSilent: when every target stays silent the
// caller gets 408 Request Timeout after one invite_timeout per target.
func TestInviteTimeoutAllTargetsSilent(t *testing.T) {
	pbx := newPeerUA(t, "pbx", "127.0.0.1", "udp")
	a, b := newBlackHole(t, "127.0.0.3"), newBlackHole(t, "127.0.0.4")
	u := newTestUnit(t, pbx, nil, func(c *config.Config) {
		c.SIP.InviteTimeout = config.Duration(700 * time.Millisecond)
		overrideTo(c, udpTarget(a.addr), udpTarget(b.addr))
	})
	ctx := ctxT(t)
	sess, err := callDomain(ctx, pbx, u, "4930123456", "trunk.test")
	if err != nil {
		t.Fatal(err)
	}
	err = sess.WaitAnswer(ctx, sipgo.AnswerOptions{})
	var de *sipgo.ErrDialogResponse
	if !errors.As(err, &de) {
		t.Fatalf("caller got %v, want a final response", err)
	}
	if de.Res.StatusCode != 408 {
		t.Fatalf("caller got %d %s, want 408", de.Res.StatusCode, de.Res.Reason)
	}
	if a.count("INVITE ") == 0 || b.count("INVITE ") == 0 {
		t.Fatalf("INVITEs: first target %d, second %d; both should have been tried", a.count("INVITE "), b.count("INVITE "))
	}
	waitNoCalls(t, u.Service)
}

// TestProvisionalStopsInviteTimeout: a target that answers 180 is alive;
// it may ring longer than invite_timeout and the call still connects to
// it, without trying the next target.
func TestProvisionalStopsInviteTimeout(t *testing.T) {
	pbx := newPeerUA(t, "pbx", "127.0.0.1", "udp")
	first := newPeerUA(t, "first", "127.0.0.3", "udp")
	answered := make(chan struct{})
	first.SetOnInvite(func(s *sipgo.DialogServerSession, _ *sip.Request) {
		_ = s.Respond(180, "Ringing", nil)
		time.Sleep(2500 * time.Millisecond) // > 2 × invite_timeout
		_ = s.RespondSDP(testSDP("127.0.0.3", 5000))
		close(answered)
	})
	second := newPeerUA(t, "second", "127.0.0.4", "udp")
	u := newTestUnit(t, pbx, nil, func(c *config.Config) {
		c.SIP.InviteTimeout = config.Duration(time.Second)
		overrideTo(c, udpTarget(first.Addr), udpTarget(second.Addr))
	})
	ctx := ctxT(t)
	sess := answeredCall(t, ctx, pbx, u)
	recv(t, answered, "the first target's answer")
	_ = sess.Ack(ctx)
	first.Next(sip.ACK)
	if n := second.Wire.Count("INVITE "); n != 0 {
		t.Fatalf("the second target got %d INVITEs although the first was ringing", n)
	}
	if n := first.Wire.Count("CANCEL "); n != 0 {
		t.Fatalf("the ringing target got %d CANCELs", n)
	}
	hangUp(t, ctx, sess, first, u)
}

// TestDNSOverrideFailover: the first DNS override target answers 503 or
// refuses the TCP connection; the call goes to the second target.
// (dns_test.go covers the same for RFC 3263 SRV targets.)
func TestDNSOverrideFailover(t *testing.T) {
	tests := []struct {
		name  string
		first func(t *testing.T) (config.Target, *peerUA)
	}{
		{"503", func(t *testing.T) (config.Target, *peerUA) {
			p := newPeerUA(t, "first", "127.0.0.3", "udp")
			p.SetOnInvite(func(s *sipgo.DialogServerSession, _ *sip.Request) { _ = s.Respond(503, "Overloaded", nil) })
			return udpTarget(p.Addr), p
		}},
		{"tcp refused", func(t *testing.T) (config.Target, *peerUA) {
			// nobody listens on the port: connection refused at once
			return config.Target{Host: "127.0.0.3", Port: freePort(t, "tcp", "127.0.0.3"), Transport: "tcp"}, nil
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pbx := newPeerUA(t, "pbx", "127.0.0.1", "udp")
			first, firstUA := tc.first(t)
			second := newPeerUA(t, "second", "127.0.0.4", "udp")
			u := newTestUnit(t, pbx, nil, func(c *config.Config) {
				// a 503 or a refused connection fails over at once,
				// whatever invite_timeout says
				c.SIP.InviteTimeout = config.Duration(30 * time.Second)
				c.SIP.Listeners = append(c.SIP.Listeners, config.Listener{Interface: "outside", Transport: "tcp"})
				overrideTo(c, first, udpTarget(second.Addr))
			})
			ctx := ctxT(t)
			sess := answeredCall(t, ctx, pbx, u)
			_ = sess.Ack(ctx)
			second.Next(sip.INVITE)
			if firstUA != nil {
				firstUA.Next(sip.INVITE) // it was tried first
			}
			hangUp(t, ctx, sess, second, u)
		})
	}
}

// TestInviteTimeoutAfterChallenge: the first SRV target of a trunk with
// credentials challenges the INVITE and then swallows the authorized
// retry; the retry gets its own invite_timeout and the call goes to the
// second target.
func TestInviteTimeoutAfterChallenge(t *testing.T) {
	pbx := newPeerUA(t, "pbx", "127.0.0.1", "udp")
	first := newChallengingHole(t, "127.0.0.3", func(req *sip.Request) *sip.Response {
		if req.Method != sip.INVITE || req.GetHeader("Proxy-Authorization") != nil {
			return nil
		}
		res := sip.NewResponseFromRequest(req, 407, "Proxy Authentication Required", nil)
		res.AppendHeader(sip.NewHeader("Proxy-Authenticate", `Digest realm="trunk.example", nonce="n1", algorithm=MD5, qop="auth"`))
		return res
	})
	second := newPeerUA(t, "second", "127.0.0.4", "udp")
	dns, err := dnstest.Start(
		"_sip._udp.trunk.test. 60 IN SRV 10 0 "+strconv.Itoa(int(first.addr.Port()))+" a.trunk.test.",
		"_sip._udp.trunk.test. 60 IN SRV 20 0 "+strconv.Itoa(int(second.Addr.Port()))+" b.trunk.test.",
		"a.trunk.test. 60 IN A 127.0.0.3",
		"b.trunk.test. 60 IN A 127.0.0.4",
	)
	if err != nil {
		t.Fatal(err)
	}
	defer dns.Close()
	u := newTestUnit(t, pbx, nil, func(c *config.Config) {
		c.Network.DNSServers = []string{dns.Addr}
		c.SIP.InviteTimeout = config.Duration(time.Second)
		c.Peers = append(c.Peers, config.Peer{Name: "trunk", Kind: "itsp", Interface: "outside", Domain: "trunk.test",
			Transport: "udp", Auth: config.PeerAuth{Username: "palisade", Password: "s3cret"}})
	})
	ctx := ctxT(t)
	sess, err := pbx.Call(ctx, u.inside(), "4930123456", testSDP("127.0.0.1", 7000))
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		t.Fatalf("caller got no 200 through the second target: %v", err)
	}
	_ = sess.Ack(ctx)
	if second.Next(sip.INVITE).GetHeader("Proxy-Authorization") != nil {
		t.Error("the second target got the first target's credentials")
	}
	if br := first.branches(); len(br) != 2 {
		t.Fatalf("first target saw %d INVITE transactions, want the challenged one and the retry", len(br))
	}
	hangUp(t, ctx, sess, second, u)
}

// silentTCP accepts TCP connections and reads them without ever answering:
// a target whose SIP stack hangs while its kernel still accepts.
type silentTCP struct {
	addr netip.AddrPort
	mu   sync.Mutex
	data strings.Builder
}

func newSilentTCP(t *testing.T, ip string) *silentTCP {
	t.Helper()
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	s := &silentTCP{addr: netip.MustParseAddrPort(l.Addr().String())}
	var conns []net.Conn
	t.Cleanup(func() {
		l.Close()
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			conns = append(conns, c)
			s.mu.Unlock()
			go func() {
				buf := make([]byte, 65535)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					s.mu.Lock()
					s.data.Write(buf[:n])
					s.mu.Unlock()
				}
			}()
		}
	}()
	return s
}

func (s *silentTCP) count(sub string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Count(s.data.String(), sub)
}

// TestInviteTimeoutFailoverTCP: over TCP nothing is retransmitted, and a
// target that accepted the connection but never answers is given up after
// invite_timeout all the same.
func TestInviteTimeoutFailoverTCP(t *testing.T) {
	pbx := newPeerUA(t, "pbx", "127.0.0.1", "udp")
	dead := newSilentTCP(t, "127.0.0.3")
	second := newPeerUA(t, "second", "127.0.0.4", "udp")
	u := newTestUnit(t, pbx, nil, func(c *config.Config) {
		c.SIP.InviteTimeout = config.Duration(time.Second)
		c.SIP.Listeners = append(c.SIP.Listeners, config.Listener{Interface: "outside", Transport: "tcp"})
		overrideTo(c, config.Target{Host: "127.0.0.3", Port: int(dead.addr.Port()), Transport: "tcp"}, udpTarget(second.Addr))
	})
	ctx := ctxT(t)
	sess := answeredCall(t, ctx, pbx, u)
	_ = sess.Ack(ctx)
	second.Next(sip.INVITE)
	if n := dead.count("INVITE sip:"); n != 1 {
		t.Errorf("the silent TCP target got %d INVITEs, want 1 (no retransmission over TCP)", n)
	}
	if n := dead.count("CANCEL sip:"); n != 0 {
		t.Errorf("the silent TCP target got %d CANCELs", n)
	}
	hangUp(t, ctx, sess, second, u)
}

// TestLateAnswerOfAbandonedTarget: the target given up after
// invite_timeout answers 200 after all, while the call is up through the
// next target. The unit acknowledges that 2xx and sends BYE on the dialog
// it made (its To tag), and the call through the second target goes on.
func TestLateAnswerOfAbandonedTarget(t *testing.T) {
	pbx := newPeerUA(t, "pbx", "127.0.0.1", "udp")
	dead := newChallengingHole(t, "127.0.0.3", func(req *sip.Request) *sip.Response {
		if req.Method == sip.BYE {
			return sip.NewResponseFromRequest(req, 200, "OK", nil)
		}
		return nil
	})
	second := newPeerUA(t, "second", "127.0.0.4", "udp")
	u := newTestUnit(t, pbx, nil, func(c *config.Config) {
		c.SIP.InviteTimeout = config.Duration(700 * time.Millisecond)
		overrideTo(c, udpTarget(dead.addr), udpTarget(second.Addr))
	})
	ctx := ctxT(t)
	sess := answeredCall(t, ctx, pbx, u)
	_ = sess.Ack(ctx)
	second.Next(sip.INVITE)
	second.Next(sip.ACK)

	invs := dead.find("INVITE ")
	if len(invs) == 0 {
		t.Fatal("the first target got no INVITE")
	}
	m, err := sip.ParseMessage([]byte(invs[0]))
	if err != nil {
		t.Fatal(err)
	}
	inv := m.(*sip.Request)
	res := sip.NewResponseFromRequest(inv, 200, "OK", testSDP("127.0.0.3", 5000))
	res.To().Params.Add("tag", "late-tag")
	res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "late", Host: "127.0.0.3", Port: int(dead.addr.Port())}})
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	dead.send(t, res)

	waitFor(t, func() bool { return len(dead.find("ACK ")) > 0 && len(dead.find("BYE ")) > 0 }, "ACK and BYE for the late 200")
	for _, msg := range append(dead.find("ACK "), dead.find("BYE ")...) {
		if !strings.Contains(msg, "tag=late-tag") || callIDOf(msg) != inv.CallID().Value() {
			t.Errorf("not on the late dialog:\n%s", msg)
		}
		if !strings.HasPrefix(msg, "ACK sip:late@127.0.0.3:") && !strings.HasPrefix(msg, "BYE sip:late@127.0.0.3:") {
			t.Errorf("not sent to the late answer's Contact: %s", firstLine(msg))
		}
	}
	// the call through the second target is untouched
	if u.CallCount() != 1 {
		t.Fatalf("%d calls, want the one through the second target", u.CallCount())
	}
	if n := second.Wire.Count("BYE "); n != 0 {
		t.Fatalf("the second target got %d BYEs", n)
	}
	hangUp(t, ctx, sess, second, u)
}
