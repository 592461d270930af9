package pki

import (
	"context"
	"crypto/x509"
	"net"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/palisade-sbc/palisade/internal/pki/pkitest"
)

func handshakeCount(side, result string) float64 {
	var m dto.Metric
	if err := handshakes.WithLabelValues(side, result).Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// echoServer runs the unit's TLS listener on a free port, echoing what a
// peer sends.
func (u *unitFixture) echoServer(t *testing.T) string {
	t.Helper()
	ln, addr := u.listen(t)
	go acceptEach(ln, func(c net.Conn) {
		var b [16]byte
		n, _ := c.Read(b[:])
		c.Write(b[:n])
	})
	return addr
}

// acceptEach serves every connection of ln with fn (then closes it) until
// ln is closed.
func acceptEach(ln net.Listener, fn func(net.Conn)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			fn(c)
		}()
	}
}

// palisade_pki_tls_handshakes_total counts good and failed handshakes on
// both sides: listeners with and without client certificates, and the
// unit dialling out.
func TestHandshakesCounted(t *testing.T) {
	u := newUnit(t)
	h := u.h
	good := peerCert(t, h.inter, pkitest.Leaf{CN: "pbx.example.com"}, h.inter.Cert)
	stranger := peerCert(t, h.other, pkitest.Leaf{CN: "pbx.example.com"})
	roots := x509.NewCertPool()
	roots.AddCert(h.root.Cert)

	type delta struct{ ok, failed float64 }
	measure := func(side string, fn func()) delta {
		ok0, f0 := handshakeCount(side, "ok"), handshakeCount(side, "failed")
		fn()
		return delta{handshakeCount(side, "ok") - ok0, handshakeCount(side, "failed") - f0}
	}
	cases := []struct {
		name string
		side string
		run  func(t *testing.T)
		want delta
	}{
		{"server, client certificate accepted", "server", func(t *testing.T) {
			if _, err := dialAsPeer(t, u.echoServer(t), &good, nil); err != nil {
				t.Fatalf("refused: %v", err)
			}
		}, delta{1, 0}},
		{"server, client certificate refused", "server", func(t *testing.T) {
			if _, err := dialAsPeer(t, u.echoServer(t), &stranger, nil); err == nil {
				t.Fatal("a stranger's certificate was accepted")
			}
		}, delta{0, 1}},
		{"server without client certificates", "server", func(t *testing.T) {
			// The listener takes its settings from the applied configuration.
			u.cfg.SIP.Listeners[2].RequireClientCert = false
			if err := u.s.Apply(u.ctx, u.cfg); err != nil {
				t.Fatal(err)
			}
			defer func() {
				u.cfg.SIP.Listeners[2].RequireClientCert = true
				if err := u.s.Apply(u.ctx, u.cfg); err != nil {
					t.Fatal(err)
				}
			}()
			if _, err := dialAsPeer(t, u.echoServer(t), nil, nil); err != nil {
				t.Fatalf("refused: %v", err)
			}
		}, delta{1, 0}},
		{"client, server accepted", "client", func(t *testing.T) {
			c, err := u.s.Dial(context.Background(), "tcp", peerServer(t, good, roots), "pbx.example.com")
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
		}, delta{1, 0}},
		{"client, server refused", "client", func(t *testing.T) {
			if _, err := u.s.Dial(context.Background(), "tcp", peerServer(t, stranger, nil), "pbx.example.com"); err == nil {
				t.Fatal("a stranger's server certificate was accepted")
			}
		}, delta{0, 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := measure(tc.side, func() { tc.run(t) }); got != tc.want {
				t.Errorf("%s handshakes: +%v ok, +%v failed; want +%v, +%v", tc.side, got.ok, got.failed, tc.want.ok, tc.want.failed)
			}
		})
	}
}
