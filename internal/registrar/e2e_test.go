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

// TestCallToRegisteredPhone: a phone registers through the unit, and a
// call from the trunk for its user reaches it through the B2BUA by the
// registrar routing step.
func TestCallToRegisteredPhone(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := testConfig()
	cfg.Network.Interfaces = []config.Interface{{Name: "inside", Address: "127.0.0.1"}, {Name: "outside", Address: "127.0.0.2"}}
	cfg.SIP.Listeners = []config.Listener{{Interface: "inside", Transport: "udp"}, {Interface: "outside", Transport: "udp"}}
	cfg.Network.DNSServers = []string{"127.0.0.1:9"}
	r := New(store.NewMemory(), nil)
	t.Cleanup(func() { r.Close() })
	unit := b2bua.New(b2bua.Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registrar: r})
	t.Cleanup(func() { unit.Close() })
	if err := r.Apply(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if err := unit.Apply(ctx, cfg); err != nil {
		t.Fatal(err)
	}

	// The phone: a sipgo UA on 127.0.0.1 that registers and answers calls
	// on one socket.
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("phone-alice"), sipgo.WithUserAgentHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ua.Close() })
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	port := conn.LocalAddr().(*net.UDPAddr).Port
	cli, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"), sipgo.WithClientPort(port),
		sipgo.WithClientConnectionAddr(conn.LocalAddr().String()))
	if err != nil {
		t.Fatal(err)
	}
	contact := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "alice", Host: "127.0.0.1", Port: port}}
	ds := sipgo.NewDialogServerCache(cli, contact)
	invites := make(chan *sip.Request, 1)
	srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		s, err := ds.ReadInvite(req, tx)
		if err != nil {
			return
		}
		invites <- req
		_ = s.RespondSDP(sdp("127.0.0.1", 4000))
		<-s.Context().Done()
	})
	srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) { _ = ds.ReadAck(req, tx) })
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) { _ = ds.ReadBye(req, tx) })
	go srv.ServeUDP(conn)
	waitServed(ua, conn)

	// The phone registers through the unit's inside listener.
	p := &phone{t: t, cli: cli, srv: unit.ListenAddr("inside", "udp").String(), user: "alice", pw: "wonderland", domain: "example.com", port: port,
		callID: "e2e-register-alice", cseq: 1, auth: digest.NewClient()}
	if res := p.register([]string{p.contact("")}, "60"); res.StatusCode != 200 {
		t.Fatalf("REGISTER: %d", res.StatusCode)
	}
	if regs := r.Registrations(); len(regs) != 1 || regs[0].Interface != "inside" || regs[0].Source != conn.LocalAddr().String() ||
		regs[0].Transport != "udp" {
		t.Fatalf("binding made through the unit: %+v", regs)
	}

	// The trunk calls alice at the unit's outside address.
	tua, err := sipgo.NewUA(sipgo.WithUserAgent("trunk"), sipgo.WithUserAgentHostname("127.0.0.3"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tua.Close() })
	tconn, err := net.ListenPacket("udp", "127.0.0.3:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tconn.Close() })
	tsrv, _ := sipgo.NewServer(tua)
	go tsrv.ServeUDP(tconn)
	waitServed(tua, tconn)
	tport := tconn.LocalAddr().(*net.UDPAddr).Port
	tcli, err := sipgo.NewClient(tua, sipgo.WithClientHostname("127.0.0.3"), sipgo.WithClientPort(tport),
		sipgo.WithClientConnectionAddr(tconn.LocalAddr().String()))
	if err != nil {
		t.Fatal(err)
	}
	dc := sipgo.NewDialogClientCache(tcli, sip.ContactHeader{Address: sip.Uri{Scheme: "sip", Host: "127.0.0.3", Port: tport}})
	tsrv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) { _ = dc.ReadBye(req, tx) })
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
	case req := <-invites:
		if req.Recipient.User != "alice" || req.Recipient.Port != port || req.Source() != unit.ListenAddr("inside", "udp").String() {
			t.Fatalf("INVITE at the phone: %s from %s", req.Recipient.String(), req.Source())
		}
	case <-ctx.Done():
		t.Fatal("the phone got no INVITE")
	}
	if err := sess.Bye(ctx); err != nil {
		t.Fatal(err)
	}
}

// waitServed waits until sipgo has the served socket in its pool, so that
// a client sending from the same address uses it instead of binding again.
func waitServed(ua *sipgo.UserAgent, conn net.PacketConn) {
	for i := 0; i < 1000; i++ {
		if c, _ := ua.TransportLayer().GetConnection("udp", conn.LocalAddr().String()); c != nil {
			c.TryClose()
			return
		}
		time.Sleep(time.Millisecond)
	}
}
