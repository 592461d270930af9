package b2bua

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/pki"
)

// reportingPKI is testPKI that records the handshake failures reported to it.
type reportingPKI struct {
	*testPKI
	mu  sync.Mutex
	got []string // role iface err
	ch  chan struct{}
}

func (p *reportingPKI) HandshakeFailed(role, iface, remote string, err error) pki.Diagnosis {
	p.mu.Lock()
	p.got = append(p.got, role+" "+iface+" "+err.Error())
	p.mu.Unlock()
	select {
	case p.ch <- struct{}{}:
	default:
	}
	return pki.Diagnosis{Cause: "test", Message: "explained"}
}

// wait returns the first report of role.
func (p *reportingPKI) wait(t *testing.T, role string) string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		p.mu.Lock()
		for _, g := range p.got {
			if strings.HasPrefix(g, role+" ") {
				p.mu.Unlock()
				return g
			}
		}
		p.mu.Unlock()
		select {
		case <-p.ch:
		case <-deadline:
			t.Fatalf("no %s handshake failure reported (got %q)", role, p.got)
		}
	}
}

// Handshake failures of the TLS listener and of our own TLS dialer (before
// and after Finished) reach the PKI provider's HandshakeReporter.
func TestTLSHandshakeFailuresReported(t *testing.T) {
	cases := []struct {
		name string
		peer func(t *testing.T, p *testPKI) netip.AddrPort // the trunk
		want string
	}{
		{"peer is not TLS", plainTCPPeer, "client outside"},
		{"peer refuses our certificate after Finished", certRefusingPeer, "client outside"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := &reportingPKI{testPKI: newTestPKI(t), ch: make(chan struct{}, 1)}
			pbx := newPeerUA(t, "pbx", "127.0.0.1", "udp")
			addr := tc.peer(t, p.testPKI)
			u := newTestUnitWith(t, pbx, nil, Deps{TLS: p, Handshakes: p}, func(c *config.Config) {
				c.SIP.Listeners = append(c.SIP.Listeners, config.Listener{Interface: "outside", Transport: "tls"})
				c.Peers = append(c.Peers, config.Peer{Name: "itsp", Kind: "itsp", Interface: "outside", Address: addr.String(), Transport: "tls"})
				c.TLS.HandshakeTimeout = config.Duration(2 * time.Second)
			})
			ctx := ctxT(t)
			sess, err := pbx.Call(ctx, u.inside(), "4930123456", testSDP("127.0.0.1", 7000))
			if err != nil {
				t.Fatal(err)
			}
			err = sess.WaitAnswer(ctx, sipgo.AnswerOptions{})
			var de *sipgo.ErrDialogResponse
			if !errors.As(err, &de) || de.Res.StatusCode != 503 {
				t.Fatalf("caller got %v, want 503", err)
			}
			if g := p.wait(t, "client"); !strings.HasPrefix(g, tc.want) {
				t.Fatalf("report %q, want %q", g, tc.want)
			}
		})
	}
	t.Run("listener", func(t *testing.T) {
		p := &reportingPKI{testPKI: newTestPKI(t), ch: make(chan struct{}, 1)}
		u := newTestUnitWith(t, nil, nil, Deps{TLS: p, Handshakes: p}, func(c *config.Config) {
			c.SIP.Listeners = append(c.SIP.Listeners, config.Listener{Interface: "outside", Transport: "tls"})
		})
		c, err := net.Dial("tcp", u.ListenAddr("outside", "tls").String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = c.Write([]byte("OPTIONS sip:x SIP/2.0\r\n\r\n")) // SIP without TLS
		if g := p.wait(t, "server"); !strings.HasPrefix(g, "server outside") {
			t.Fatalf("report %q", g)
		}
	})
}

// plainTCPPeer answers a ClientHello with bytes that are not TLS.
func plainTCPPeer(t *testing.T, _ *testPKI) netip.AddrPort {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.3:0")
	if err != nil {
		t.Fatal(err)
	}
	return servePeer(t, l, func(c net.Conn) {
		_, _ = c.Write([]byte("SIP/2.0 400 Bad Request\r\n\r\n"))
	})
}

// servePeer accepts connections on l until the test ends, handles each in
// its own goroutine and closes it afterwards; it returns l's address.
func servePeer(t *testing.T, l net.Listener, handle func(net.Conn)) netip.AddrPort {
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				handle(c)
				c.Close()
			}()
		}
	}()
	return netip.MustParseAddrPort(l.Addr().String())
}

// certRefusingPeer is a TLS 1.3 server that trusts no client certificate:
// our handshake completes, its alert comes on the first read.
func certRefusingPeer(t *testing.T, p *testPKI) netip.AddrPort {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.3:0", &tls.Config{Certificates: []tls.Certificate{p.cert},
		MinVersion: tls.VersionTLS13, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: x509.NewCertPool()})
	if err != nil {
		t.Fatal(err)
	}
	return servePeer(t, l, func(c net.Conn) {
		_ = c.(*tls.Conn).Handshake() // fails on the server: alert to the client
	})
}
