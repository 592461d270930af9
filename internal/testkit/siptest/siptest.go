// Package siptest holds the sipgo scaffolding that SIP tests share: a
// client sending over UDP from a free port, a UDP server, the test peer
// playing a PBX or a trunk (Peer) and the one SDP builder (SDP). It is
// apart from testkit so that tests of packages without SIP (media) do not
// link sipgo. Import it only from _test.go files.
package siptest

import (
	"net"
	"strconv"
	"testing"

	"github.com/emiago/sipgo"
	"github.com/palisade-sbc/palisade/internal/testkit"
)

// UDPClient is a sipgo client of a user agent named name that sends over
// UDP from a free port on ip (its own socket, so requests leave from that
// port). The user agent closes when the test ends.
func UDPClient(t testing.TB, name, ip string) (*sipgo.Client, int) {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent(name), sipgo.WithUserAgentHostname(ip))
	if err != nil {
		t.Fatal(err)
	}
	port := testkit.FreePort(t, "udp", ip)
	cli, err := sipgo.NewClient(ua, sipgo.WithClientHostname(ip), sipgo.WithClientPort(port),
		sipgo.WithClientConnectionAddr(net.JoinHostPort(ip, strconv.Itoa(port))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ua.Close() })
	return cli, port
}

// UDPServer runs a sipgo server of a user agent named name on a UDP port of
// ip chosen by the system, with the handlers that handle sets, and returns
// its address. Socket and user agent close when the test ends.
func UDPServer(t testing.TB, name, ip string, handle func(*sipgo.Server)) string {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent(name))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	handle(srv)
	conn, err := net.ListenPacket("udp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeUDP(conn)
	t.Cleanup(func() { conn.Close(); ua.Close() })
	return conn.LocalAddr().String()
}
