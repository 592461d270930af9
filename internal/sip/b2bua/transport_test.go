package b2bua

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/testkit/siptest"
)

// TestTCPDialogReusesConnection: in-dialog requests towards a TCP peer go
// over the connection the dialog was set up on, in both directions
// (sipgo issue 361).
func TestTCPDialogReusesConnection(t *testing.T) {
	pbx := newPeerUA(t, "pbx", "127.0.0.1", "tcp")
	itsp := newPeerUA(t, "trunk", "127.0.0.3", "udp")
	u := newTestUnit(t, pbx, itsp, func(c *config.Config) {
		c.SIP.Listeners = append(c.SIP.Listeners, config.Listener{Interface: "inside", Transport: "tcp"})
		c.Peers[0].Transport = "tcp"
	})
	ctx := ctxT(t)

	t.Run("inside calls out", func(t *testing.T) {
		in := u.ListenAddr("inside", "tcp")
		callOverTCP(t, ctx, pbx, in)
		srv := itsp.Session()
		// a re-INVITE and a BYE from the far end travel to the PBX
		re := sip.NewRequest(sip.INVITE, srv.InviteRequest.Contact().Address)
		re.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		re.SetBody(testSDP("127.0.0.3", 5010))
		if res, err := srv.Do(ctx, re); err != nil || res.StatusCode != 200 {
			t.Fatalf("re-INVITE: %v %v", res, err)
		}
		_ = srv.WriteRequest(sip.NewRequest(sip.ACK, srv.InviteRequest.Contact().Address))
		pbx.Next(sip.INVITE) // initial not queued on the caller; this is the re-INVITE
		if err := srv.Bye(ctx); err != nil {
			t.Fatal(err)
		}
		pbx.Next(sip.BYE)
		if n := pbx.Accepts.Count(); n != 0 {
			t.Fatalf("the unit opened %d new connections to the PBX instead of reusing the PBX's", n)
		}
		waitNoCalls(t, u.Service)
	})
	t.Run("outside calls in", func(t *testing.T) {
		sess, srv := establish(t, u, itsp, pbx, viaOutside(u))
		re := sip.NewRequest(sip.INVITE, sess.InviteResponse.Contact().Address)
		re.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		re.SetBody(testSDP("127.0.0.3", 5012))
		if res, err := sess.Do(ctx, re); err != nil || res.StatusCode != 200 {
			t.Fatalf("re-INVITE: %v %v", res, err)
		}
		_ = sess.WriteRequest(sip.NewRequest(sip.ACK, sess.InviteResponse.Contact().Address))
		pbx.Next(sip.INVITE)
		if err := sess.Bye(ctx); err != nil {
			t.Fatal(err)
		}
		pbx.Next(sip.BYE)
		_ = srv
		if n := pbx.Accepts.Count(); n != 1 {
			t.Fatalf("the unit opened %d connections to the PBX for one dialog, want 1", n)
		}
		waitNoCalls(t, u.Service)
	})
}

// newTLSPeer is a trunk listening on TLS.
func newTLSPeer(t *testing.T, p *testPKI, ip string) (*peerUA, *siptest.CountingListener) {
	t.Helper()
	peer := newPeerUA(t, "tls-trunk", ip, "udp")
	l, err := tls.Listen("tcp", ip+":0", &tls.Config{Certificates: []tls.Certificate{p.cert}})
	if err != nil {
		t.Fatal(err)
	}
	cl := &siptest.CountingListener{Listener: l}
	go peer.Srv.ServeTLS(cl)
	t.Cleanup(func() { l.Close() })
	peer.Addr = netip.MustParseAddrPort(l.Addr().String())
	return peer, cl
}

func TestTLSOutside(t *testing.T) {
	p := newTestPKI(t)
	pbx := newPeerUA(t, "pbx", "127.0.0.1", "udp")
	itsp, accepts := newTLSPeer(t, p, "127.0.0.3")
	u := newTestUnitWith(t, pbx, nil, Deps{TLS: p}, func(c *config.Config) {
		c.SIP.Listeners = append(c.SIP.Listeners, config.Listener{Interface: "outside", Transport: "tls"})
		c.Peers = append(c.Peers, config.Peer{Name: "itsp", Kind: "itsp", Interface: "outside", Address: itsp.Addr.String(), Transport: "tls"})
		c.TLS.HandshakeTimeout = config.Duration(300 * time.Millisecond)
	})
	ctx := ctxT(t)
	sess, srv := establish(t, u, pbx, itsp, viaInside(u))
	_ = srv
	re := sip.NewRequest(sip.INVITE, sess.InviteResponse.Contact().Address)
	re.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	re.SetBody(testSDP("127.0.0.1", 7020))
	if res, err := sess.Do(ctx, re); err != nil || res.StatusCode != 200 {
		t.Fatalf("re-INVITE: %v %v", res, err)
	}
	_ = sess.WriteRequest(sip.NewRequest(sip.ACK, sess.InviteResponse.Contact().Address))
	if err := sess.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	itsp.Next(sip.BYE)
	if n := accepts.Count(); n != 1 {
		t.Fatalf("%d TLS connections to the trunk for one dialog, want 1", n)
	}
	waitNoCalls(t, u.Service)

	t.Run("silent peer is closed after the handshake timeout", func(t *testing.T) {
		c, err := net.Dial("tcp", u.ListenAddr("outside", "tls").String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = c.Read(make([]byte, 1))
		if err != io.EOF {
			var ne net.Error
			if ok := asNetErr(err, &ne); ok && ne.Timeout() {
				t.Fatal("connection without ClientHello still open after 10 s")
			}
		}
	})
}

func asNetErr(err error, ne *net.Error) bool {
	if e, ok := err.(net.Error); ok {
		*ne = e
		return true
	}
	return false
}

func TestDrain(t *testing.T) {
	pbx, itsp := newUDPPeers(t)
	u := newTestUnit(t, pbx, itsp, nil)
	sess, _ := establish(t, u, pbx, itsp, viaInside(u))
	done := make(chan error, 1)
	go func() { done <- u.Drain(context.Background()) }()
	waitFor(t, func() bool { return u.draining.Load() }, "draining")
	ctx := ctxT(t)
	in := u.inside()
	s2, err := pbx.DC.Invite(ctx, uriAt(in, "9"), nil)
	if err != nil {
		t.Fatal(err)
	}
	err = s2.WaitAnswer(ctx, sipgo.AnswerOptions{})
	var de *sipgo.ErrDialogResponse
	if !asDialogErr(err, &de) || de.Res.StatusCode != 503 {
		t.Fatalf("new call while draining: %v, want 503", err)
	}
	select {
	case err := <-done:
		t.Fatalf("drain returned with a call in progress: %v", err)
	default:
	}
	if err := sess.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("drain did not return after the last call ended")
	}
}

func asDialogErr(err error, de **sipgo.ErrDialogResponse) bool {
	if e, ok := err.(*sipgo.ErrDialogResponse); ok {
		*de = e
		return true
	}
	return false
}

func TestApplyKeepsListenersAndCalls(t *testing.T) {
	pbx, itsp := newUDPPeers(t)
	u := newTestUnit(t, pbx, itsp, nil)
	before := u.inside()
	sess, _ := establish(t, u, pbx, itsp, viaInside(u))

	// a broken configuration changes nothing
	bad := *u.cfg
	bad.SIP.Listeners = append([]config.Listener(nil), u.cfg.SIP.Listeners...)
	bad.SIP.Listeners = append(bad.SIP.Listeners, config.Listener{Interface: "nope", Transport: "udp"})
	if err := u.Apply(context.Background(), &bad); err == nil {
		t.Fatal("apply with an unknown interface succeeded")
	}
	// a new dial plan: same listeners, new routing
	next := *u.cfg
	next.DialPlan.Rules = []config.DialRule{{Name: "all", Regex: "(.*)", ForwardTo: []config.Forward{{Peer: "itsp", Rewrite: "00$1"}}}}
	if err := u.Apply(context.Background(), &next); err != nil {
		t.Fatal(err)
	}
	if after := u.inside(); after != before {
		t.Fatalf("listener reopened: %v → %v", before, after)
	}
	ctx := ctxT(t)
	if err := sess.Bye(ctx); err != nil {
		t.Fatalf("call set up before the apply: %v", err)
	}
	itsp.Next(sip.BYE)
	in := u.inside()
	s2, err := pbx.DC.Invite(ctx, uriAt(in, "55"), testSDP("127.0.0.1", 7000))
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		t.Fatal(err)
	}
	if inv := itsp.Next(sip.INVITE); inv.Recipient.User != "0055" {
		t.Fatalf("new call routed with the old table: user %q", inv.Recipient.User)
	}
	_ = s2.Ack(ctx)
	_ = s2.Bye(ctx)
	waitNoCalls(t, u.Service)
}

func TestPeerKeepalive(t *testing.T) {
	pbx, itsp := newUDPPeers(t)
	backup := newPeerUA(t, "backup", "127.0.0.4", "udp")
	status := make(chan int, 1)
	status <- 503
	itsp.SetRespond(func(req *sip.Request) (int, []byte) {
		if req.Method == sip.OPTIONS {
			c := <-status
			status <- c
			return c, nil
		}
		return 200, nil
	})
	u := newTestUnit(t, pbx, itsp, func(c *config.Config) {
		c.Peers[1].OptionsInterval = config.Duration(20 * time.Millisecond)
		c.Peers = append(c.Peers, config.Peer{Name: "backup", Kind: "itsp", Interface: "outside", Address: backup.Addr.String(), Transport: "udp"})
		c.DialPlan.Rules = []config.DialRule{{Name: "out", ForwardTo: []config.Forward{{Peer: "itsp"}, {Peer: "backup"}}}}
	})
	peerState := func(name string) PeerState { return peerStateOf(u, name) }
	waitFor(t, func() bool { return !peerState("itsp").Up }, "itsp marked down")
	if st := peerState("itsp"); st.Failures < 3 {
		t.Fatalf("down after %d failures", st.Failures)
	}
	ctx := ctxT(t)
	in := u.inside()
	sess, err := pbx.DC.Invite(ctx, uriAt(in, "1"), testSDP("127.0.0.1", 7000))
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		t.Fatal(err)
	}
	backup.Next(sip.INVITE)
	if n := itsp.Wire.Count("INVITE "); n != 0 {
		t.Fatalf("a peer marked down got %d INVITEs", n)
	}
	_ = sess.Ack(ctx)
	_ = sess.Bye(ctx)
	<-status
	status <- 200
	waitFor(t, func() bool { return peerState("itsp").Up }, "itsp up again")
}

// TestApplyChangesTLSCertificateInPlace: a TLS listener whose certificate
// changes keeps its socket; new handshakes get the new certificate.
func TestApplyChangesTLSCertificateInPlace(t *testing.T) {
	p := newTestPKI(t)
	p.named = map[string]tls.Certificate{"old": makeCert(t, "old.sbc.test"), "new": makeCert(t, "new.sbc.test")}
	u := newTestUnitWith(t, nil, nil, Deps{TLS: p}, func(c *config.Config) {
		c.SIP.Listeners = append(c.SIP.Listeners, config.Listener{Interface: "outside", Transport: "tls", Certificate: "old"})
	})
	addr := u.ListenAddr("outside", "tls")
	cn := func() string {
		c, err := tls.Dial("tcp", addr.String(), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // test
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if got := cn(); got != "old.sbc.test" {
		t.Fatalf("before: %s", got)
	}
	next := *u.cfg
	next.SIP.Listeners = append([]config.Listener(nil), u.cfg.SIP.Listeners...)
	next.SIP.Listeners[2].Certificate = "new"
	if err := u.Apply(context.Background(), &next); err != nil {
		t.Fatal(err)
	}
	if u.ListenAddr("outside", "tls") != addr {
		t.Fatal("listener reopened")
	}
	if got := cn(); got != "new.sbc.test" {
		t.Fatalf("after apply: %s", got)
	}
}

// callOverTCP places a call from the PBX to the unit's inside address over
// TCP and confirms it.
func callOverTCP(t *testing.T, ctx context.Context, pbx *peerUA, in netip.AddrPort) *sipgo.DialogClientSession {
	t.Helper()
	uri := uriAt(in, "123")
	uri.UriParams = sip.HeaderParams{{K: "transport", V: "tcp"}}
	sess, err := pbx.DC.Invite(ctx, uri, testSDP("127.0.0.1", 7000), sip.NewHeader("Content-Type", "application/sdp"))
	if err != nil {
		t.Fatal(err)
	}
	confirm(t, ctx, sess)
	return sess
}
