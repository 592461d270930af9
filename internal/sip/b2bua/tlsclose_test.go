package b2bua

import (
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/palisade-sbc/palisade/internal/config"
)

// refusingTLSPeer completes the TLS 1.3 handshake from the client's point
// of view and closes the connection once the INVITE has arrived: a trunk
// that refuses our certificate after Finished (TLS 1.3 sends that alert
// after the client's Finished, when the client already wrote its request).
func refusingTLSPeer(t *testing.T, p *testPKI) netip.AddrPort {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.3:0", &tls.Config{Certificates: []tls.Certificate{p.cert},
		MinVersion: tls.VersionTLS13, ClientAuth: tls.RequestClientCert})
	if err != nil {
		t.Fatal(err)
	}
	return servePeer(t, l, func(c net.Conn) {
		if c.(*tls.Conn).Handshake() == nil {
			_, _ = c.Read(make([]byte, 4096)) // the INVITE
		}
		// what a refused certificate ends in: an alert, then close
		_ = c.(*tls.Conn).CloseWrite()
	})
}

// The far end closes the connection right after the handshake: the INVITE
// fails at once with 503 instead of waiting for the transaction timeout.
func TestTLSPeerRefusesAfterHandshake(t *testing.T) {
	p := newTestPKI(t)
	pbx := newPeerUA(t, "pbx", "127.0.0.1", "udp")
	addr := refusingTLSPeer(t, p)
	u := newTestUnitWith(t, pbx, nil, Deps{TLS: p}, func(c *config.Config) {
		c.SIP.Listeners = append(c.SIP.Listeners, config.Listener{Interface: "outside", Transport: "tls"})
		c.Peers = append(c.Peers, config.Peer{Name: "itsp", Kind: "itsp", Interface: "outside", Address: addr.String(), Transport: "tls"})
	})
	ctx := ctxT(t) // 15 s: well below the 32 s transaction timeout
	sess, err := pbx.Call(ctx, u.inside(), "4930123456", testSDP("127.0.0.1", 7000))
	if err != nil {
		t.Fatal(err)
	}
	err = sess.WaitAnswer(ctx, sipgo.AnswerOptions{})
	var de *sipgo.ErrDialogResponse
	if !errors.As(err, &de) || de.Res.StatusCode != 503 {
		t.Fatalf("caller got %v, want 503", err)
	}
	waitNoCalls(t, u.Service)
}

// The same refusal with a backup row: the call goes on to the backup at
// once.
func TestTLSPeerRefusesAfterHandshakeFailover(t *testing.T) {
	p := newTestPKI(t)
	pbx := newPeerUA(t, "pbx", "127.0.0.1", "udp")
	backup := newPeerUA(t, "backup", "127.0.0.4", "udp")
	addr := refusingTLSPeer(t, p)
	u := newTestUnitWith(t, pbx, nil, Deps{TLS: p}, func(c *config.Config) {
		c.SIP.Listeners = append(c.SIP.Listeners, config.Listener{Interface: "outside", Transport: "tls"})
		c.Peers = append(c.Peers,
			config.Peer{Name: "itsp", Kind: "itsp", Interface: "outside", Address: addr.String(), Transport: "tls"},
			config.Peer{Name: "backup", Kind: "itsp", Interface: "outside", Address: backup.Addr.String(), Transport: "udp"})
		c.DialPlan.Rules = []config.DialRule{{Name: "out", Prefix: "0", Tail: "0-9", ForwardTo: []config.Forward{
			{Peer: "itsp"}, {Peer: "backup"},
		}}}
	})
	ctx := ctxT(t) // 15 s: well below the 32 s transaction timeout
	sess, err := pbx.Call(ctx, u.inside(), "0301234", testSDP("127.0.0.1", 7000))
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		t.Fatalf("call not answered by the backup: %v", err)
	}
	backup.Next(sip.INVITE)
	_ = sess.Ack(ctx)
	_ = sess.Bye(ctx)
	waitNoCalls(t, u.Service)
}
