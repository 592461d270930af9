package b2bua

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/observe"
	"github.com/palisade-sbc/palisade/internal/testkit/siptest"
)

func itoa(i int) string { return strconv.Itoa(i) }

// The test peers are siptest's (internal/testkit/siptest).
type peerUA = siptest.Peer

func newPeerUA(t *testing.T, name, ip, transport string) *peerUA {
	t.Helper()
	return siptest.NewPeer(t, name, ip, transport)
}

func newPeerUAWith(t *testing.T, name, ip, transport string, setup func(*peerUA)) *peerUA {
	t.Helper()
	return siptest.NewPeerWith(t, name, ip, transport, setup)
}

// newUDPPeers is the usual pair: the PBX on 127.0.0.1 and the trunk on
// 127.0.0.3, both on UDP.
func newUDPPeers(t *testing.T) (pbx, itsp *peerUA) {
	t.Helper()
	return newPeerUA(t, "pbx", "127.0.0.1", "udp"), newPeerUA(t, "trunk", "127.0.0.3", "udp")
}

// uriAt is sip:user@addr.
func uriAt(addr netip.AddrPort, user string) sip.Uri {
	return sip.Uri{Scheme: "sip", User: user, Host: addr.Addr().String(), Port: int(addr.Port())}
}

func testSDP(ip string, port int) []byte { return siptest.SDP(ip, port) }

func ringAndAnswer(s *sipgo.DialogServerSession, req *sip.Request) { siptest.RingAndAnswer(s, req) }

type testUnit struct {
	*Service
	cfg *config.Config
}

func (u *testUnit) inside() netip.AddrPort  { return u.ListenAddr("inside", "udp") }
func (u *testUnit) outside() netip.AddrPort { return u.ListenAddr("outside", "udp") }

// newTestUnit starts the SIP subsystem with an inside (127.0.0.1) and an
// outside (127.0.0.2) UDP listener, the PBX as peer "pbx" and the trunk as
// peer "itsp".
func newTestUnit(t *testing.T, pbx, itsp *peerUA, mut func(*config.Config)) *testUnit {
	t.Helper()
	return newTestUnitWith(t, pbx, itsp, Deps{}, mut)
}

func newTestUnitWith(t *testing.T, pbx, itsp *peerUA, d Deps, mut func(*config.Config)) *testUnit {
	t.Helper()
	cfg := config.Default()
	cfg.Network.Interfaces = []config.Interface{{Name: "inside", Address: "127.0.0.1"}, {Name: "outside", Address: "127.0.0.2"}}
	cfg.SIP.Listeners = []config.Listener{
		{Interface: "inside", Transport: "udp"}, {Interface: "outside", Transport: "udp"},
	}
	cfg.Peers = nil
	if pbx != nil {
		cfg.Peers = append(cfg.Peers, config.Peer{Name: "pbx", Kind: "pbx", Interface: "inside", Address: pbx.Addr.String(), Transport: "udp"})
	}
	if itsp != nil {
		cfg.Peers = append(cfg.Peers, config.Peer{Name: "itsp", Kind: "itsp", Interface: "outside", Address: itsp.Addr.String(), Transport: "udp"})
	}
	cfg.Network.DNSServers = []string{"127.0.0.1:9"}
	if mut != nil {
		mut(cfg)
	}
	d.Logger = testLogger()
	if os.Getenv("SIP_TEST_LOG") != "" {
		d.Tracer = printTracer{}
	}
	s := New(d)
	if err := s.Apply(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &testUnit{Service: s, cfg: cfg}
}

type printTracer struct{}

func (printTracer) TraceSIP(m observe.SIPMessage) {
	dir := "<<<"
	if m.Dir == observe.Sent {
		dir = ">>>"
	}
	os.Stderr.WriteString(m.Leg + " " + dir + " " + m.Remote.String() + "\n" + string(m.Raw) + "\n")
}

func testLogger() *slog.Logger {
	if os.Getenv("SIP_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}
