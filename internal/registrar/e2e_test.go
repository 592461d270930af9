package registrar

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/sip/b2bua"
	"github.com/palisade-sbc/palisade/internal/sip/digest"
	"github.com/palisade-sbc/palisade/internal/store"
)

func sdp(ip string, port int) []byte {
	return fmt.Appendf(nil, "v=0\r\no=- 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n", ip, ip, port)
}

// unitConfig is testConfig with an inside (127.0.0.1) and an outside
// (127.0.0.2) interface, each with a UDP listener on a free port.
func unitConfig() *config.Config {
	cfg := testConfig()
	cfg.Network.Interfaces = []config.Interface{{Name: "inside", Address: "127.0.0.1"}, {Name: "outside", Address: "127.0.0.2"}}
	cfg.SIP.Listeners = []config.Listener{{Interface: "inside", Transport: "udp"}, {Interface: "outside", Transport: "udp"}}
	cfg.Network.DNSServers = []string{"127.0.0.1:9"}
	return cfg
}

// startUnit runs a registrar and a B2BUA that uses it, on cfg.
func startUnit(t *testing.T, ctx context.Context, cfg *config.Config) (*Registrar, *b2bua.Service) {
	t.Helper()
	r := New(store.NewMemory(), nil, nil)
	t.Cleanup(func() { r.Close() })
	unit := b2bua.New(b2bua.Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registrar: r})
	t.Cleanup(func() { unit.Close() })
	if err := r.Apply(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if err := unit.Apply(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	return r, unit
}

// answerer is a sipgo UA on one UDP socket that answers every INVITE with
// SDP and reports the INVITEs and BYEs it gets.
type answerer struct {
	ua      *sipgo.UserAgent
	cli     *sipgo.Client
	conn    net.PacketConn
	port    int
	invites chan *sip.Request
	byes    chan *sip.Request
}

func newAnswerer(t *testing.T, ip, user string) *answerer {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("answerer-"+user), sipgo.WithUserAgentHostname(ip))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ua.Close() })
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenPacket("udp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	a := &answerer{ua: ua, conn: conn, port: conn.LocalAddr().(*net.UDPAddr).Port,
		invites: make(chan *sip.Request, 4), byes: make(chan *sip.Request, 4)}
	a.cli, err = sipgo.NewClient(ua, sipgo.WithClientHostname(ip), sipgo.WithClientPort(a.port),
		sipgo.WithClientConnectionAddr(conn.LocalAddr().String()))
	if err != nil {
		t.Fatal(err)
	}
	ds := sipgo.NewDialogServerCache(a.cli, sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: ip, Port: a.port}})
	srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		s, err := ds.ReadInvite(req, tx)
		if err != nil {
			return
		}
		a.invites <- req
		_ = s.RespondSDP(sdp(ip, 4000))
		<-s.Context().Done()
	})
	srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) { _ = ds.ReadAck(req, tx) })
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) { a.byes <- req; _ = ds.ReadBye(req, tx) })
	go srv.ServeUDP(conn)
	// The client sends from the served socket once sipgo has it in its
	// pool; before that it would try to bind the address again.
	for i := 0; i < 1000; i++ {
		if c, _ := ua.TransportLayer().GetConnection("udp", conn.LocalAddr().String()); c != nil {
			c.TryClose()
			break
		}
		time.Sleep(time.Millisecond)
	}
	return a
}

// TestCallToRegisteredPhone: a phone registers through the unit, and a
// call from the trunk for its user reaches it through the B2BUA by the
// registrar routing step.
func TestCallToRegisteredPhone(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, unit := startUnit(t, ctx, unitConfig())

	ph := newAnswerer(t, "127.0.0.1", "alice")
	p := &phone{t: t, cli: ph.cli, srv: unit.ListenAddr("inside", "udp").String(), user: "alice", pw: "wonderland",
		domain: "example.com", port: ph.port, callID: "e2e-register-alice", cseq: 1, auth: digest.NewClient()}
	if res := p.register([]string{p.contact("")}, "60"); res.StatusCode != 200 {
		t.Fatalf("REGISTER: %d", res.StatusCode)
	}
	if regs := r.Registrations(); len(regs) != 1 || regs[0].Interface != "inside" || regs[0].Source != ph.conn.LocalAddr().String() ||
		regs[0].Transport != "udp" {
		t.Fatalf("binding made through the unit: %+v", regs)
	}

	// The trunk calls alice at the unit's outside address.
	tr := newAnswerer(t, "127.0.0.3", "trunk")
	dc := sipgo.NewDialogClientCache(tr.cli, sip.ContactHeader{Address: sip.Uri{Scheme: "sip", Host: "127.0.0.3", Port: tr.port}})
	out := unit.ListenAddr("outside", "udp")
	sess, err := dc.Invite(ctx, sip.Uri{Scheme: "sip", User: "alice", Host: out.Addr().String(), Port: int(out.Port())},
		sdp("127.0.0.3", 6000), sip.NewHeader("Content-Type", "application/sdp"))
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		t.Fatalf("call to the registered phone: %v", err)
	}
	if err := sess.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case req := <-ph.invites:
		if req.Recipient.User != "alice" || req.Recipient.Port != ph.port || req.Source() != unit.ListenAddr("inside", "udp").String() {
			t.Fatalf("INVITE at the phone: %s from %s", req.Recipient.String(), req.Source())
		}
	case <-ctx.Done():
		t.Fatal("the phone got no INVITE")
	}
	if err := sess.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ph.byes:
	case <-ctx.Done():
		t.Fatal("the phone got no BYE")
	}
}
