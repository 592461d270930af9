package transport

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/routing"
)

// Connect opens a TCP connection to a peer before any request (a unit
// that took calls over): it is pooled, a second Connect reuses it, and a
// request the peer sends over it reaches the endpoint.
func TestConnectTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan *sip.Request, 1)
	e := New("outside", Hooks{
		OnRequest: func(req *sip.Request, _ *sip.ServerTx) { got <- req },
		Local:     func() (netip.Addr, int) { return netip.MustParseAddr("127.0.0.1"), 0 },
	})
	defer e.Close()
	dst := routing.Target{Addr: netip.MustParseAddrPort(l.Addr().String()), Transport: "tcp"}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Connect(ctx, dst); err != nil {
		t.Fatal(err)
	}
	peer, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if !e.HasConn("tcp", dst.Addr.String()) {
		t.Fatal("the connection is not in the pool")
	}
	if err := e.Connect(ctx, dst); err != nil {
		t.Fatal(err)
	}
	l.(*net.TCPListener).SetDeadline(time.Now().Add(200 * time.Millisecond))
	if c, err := l.Accept(); err == nil {
		c.Close()
		t.Fatal("a second Connect opened a second connection")
	}
	local := peer.RemoteAddr().String()
	msg := "OPTIONS sip:x@" + local + " SIP/2.0\r\nVia: SIP/2.0/TCP " + l.Addr().String() + ";branch=z9hG4bK-connect\r\n" +
		"From: <sip:p@127.0.0.1>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: connect-1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
	if _, err := peer.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	select {
	case req := <-got:
		if req.CallID().Value() != "connect-1" {
			t.Fatalf("got %s", req.StartLine())
		}
	case <-ctx.Done():
		t.Fatal("the peer's request over the connection was not read")
	}
	// UDP needs no connection.
	if err := e.Connect(ctx, routing.Target{Addr: dst.Addr, Transport: "udp"}); err != nil {
		t.Fatal(err)
	}
}
