package b2bua

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/observe"
)

// testSDP is a minimal offer/answer body.
func testSDP(ip string, port int) []byte {
	return []byte("v=0\r\no=- 1 1 IN IP4 " + ip + "\r\ns=-\r\nc=IN IP4 " + ip + "\r\nt=0 0\r\nm=audio " +
		itoa(port) + " RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n")
}

func itoa(i int) string { return strings.TrimSpace(strings.Repeat(" ", 0) + fmtInt(i)) }

func fmtInt(i int) string {
	if i == 0 {
		return "0"
	}
	var b [20]byte
	n := len(b)
	for i > 0 {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
	}
	return string(b[n:])
}

// wireLog records every raw message a test UA receives.
type wireLog struct {
	mu   sync.Mutex
	msgs []string
	// drop, when set, makes the UA ignore messages it returns true for
	// (the message is still recorded).
	drop func(msg string) bool
}

func (w *wireLog) record(_ sip.TransportReadProps, data []byte) ([]byte, error) {
	w.mu.Lock()
	w.msgs = append(w.msgs, string(data))
	drop := w.drop
	w.mu.Unlock()
	if drop != nil && drop(string(data)) {
		return nil, nil
	}
	return data, nil
}

func (w *wireLog) setDrop(f func(string) bool) {
	w.mu.Lock()
	w.drop = f
	w.mu.Unlock()
}

// count returns how many recorded messages start with prefix.
func (w *wireLog) count(prefix string) int {
	n := 0
	for _, m := range w.all() {
		if strings.HasPrefix(m, prefix) {
			n++
		}
	}
	return n
}

func (w *wireLog) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.msgs...)
}

// peerUA is a sipgo user agent playing a PBX or a trunk in tests.
type peerUA struct {
	t    *testing.T
	name string
	ip   string
	addr netip.AddrPort
	ua   *sipgo.UserAgent
	srv  *sipgo.Server
	cli  *sipgo.Client
	dc   *sipgo.DialogClientCache
	ds   *sipgo.DialogServerCache
	wire *wireLog

	mu sync.Mutex
	// onInvite answers an incoming INVITE; the default rings and answers.
	onInvite func(s *sipgo.DialogServerSession, req *sip.Request)
	reqs     chan *sip.Request
	pending  []*sip.Request
	sessions chan *sipgo.DialogServerSession
	accepts  *countingListener
	// respond decides the answer to in-dialog and standalone requests
	// other than INVITE/ACK/BYE (default 200 OK).
	respond func(req *sip.Request) (int, []byte)
}

func newPeerUA(t *testing.T, name, ip, transport string) *peerUA {
	t.Helper()
	return newPeerUAWith(t, name, ip, transport, nil)
}

// newPeerUAWith is newPeerUA with setup run before the UA serves (handlers
// replaced there are race-free).
func newPeerUAWith(t *testing.T, name, ip, transport string, setup func(*peerUA)) *peerUA {
	t.Helper()
	p := &peerUA{t: t, name: name, ip: ip, wire: &wireLog{}, reqs: make(chan *sip.Request, 100),
		sessions: make(chan *sipgo.DialogServerSession, 10)}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent(name), sipgo.WithUserAgentHostname(ip),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerReadFilter(p.wire.record)))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	var serve func()
	switch transport {
	case "tcp":
		l, err := net.Listen("tcp", ip+":0")
		if err != nil {
			t.Fatal(err)
		}
		p.addr = netip.MustParseAddrPort(l.Addr().String())
		p.accepts = &countingListener{Listener: l}
		serve = func() { go srv.ServeTCP(p.accepts) }
		t.Cleanup(func() { l.Close() })
	default:
		conn, err := net.ListenPacket("udp", ip+":0")
		if err != nil {
			t.Fatal(err)
		}
		p.addr = netip.MustParseAddrPort(conn.LocalAddr().String())
		serve = func() { go srv.ServeUDP(conn) }
		t.Cleanup(func() { conn.Close() })
	}
	opts := []sipgo.ClientOption{sipgo.WithClientHostname(ip), sipgo.WithClientPort(int(p.addr.Port()))}
	if transport == "udp" {
		// send from the listening socket, as a real PBX or trunk does
		opts = append(opts, sipgo.WithClientConnectionAddr(p.addr.String()))
	}
	cli, err := sipgo.NewClient(ua, opts...)
	if err != nil {
		t.Fatal(err)
	}
	contact := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: name, Host: ip, Port: int(p.addr.Port())}}
	if transport == "tcp" {
		contact.Address.UriParams = sip.NewParams()
		contact.Address.UriParams.Add("transport", "tcp")
	}
	p.ua, p.srv, p.cli = ua, srv, cli
	p.dc = sipgo.NewDialogClientCache(cli, contact)
	p.ds = sipgo.NewDialogServerCache(cli, contact)
	srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		p.push(req)
		if req.To() != nil && getTag(req.To().Params) != "" {
			p.answerInDialog(req, tx)
			return
		}
		s, err := p.ds.ReadInvite(req, tx)
		if err != nil {
			return
		}
		p.mu.Lock()
		h := p.onInvite
		p.mu.Unlock()
		publish := func() {
			select {
			case p.sessions <- s:
			default:
			}
		}
		if h == nil {
			// the default answers at once: the test gets the session only
			// after the answer was written (its fields change there)
			ringAndAnswer(s, req)
			publish()
		} else {
			publish()
			h(s, req)
		}
		<-s.Context().Done()
	})
	srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) {
		p.push(req)
		_ = p.ds.ReadAck(req, tx)
	})
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		p.push(req)
		if err := p.ds.ReadBye(req, tx); err != nil {
			if err := p.dc.ReadBye(req, tx); err != nil {
				_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "No dialog", nil))
			}
		}
	})
	for _, m := range []sip.RequestMethod{sip.INFO, sip.MESSAGE, sip.UPDATE, sip.PRACK, sip.OPTIONS, sip.NOTIFY, sip.REFER} {
		srv.OnRequest(m, func(req *sip.Request, tx sip.ServerTransaction) {
			p.push(req)
			p.answerInDialog(req, tx)
		})
	}
	if setup != nil {
		setup(p)
	}
	serve()
	t.Cleanup(func() { ua.Close() })
	if transport == "udp" {
		// sipgo adds the socket to its pool in the serving goroutine; a
		// request sent before that makes the client bind a second socket on
		// the same address and fail ("address already in use"), which a
		// busy machine hit now and then.
		for i := 0; ; i++ {
			if c, _ := ua.TransportLayer().GetConnection("udp", p.addr.String()); c != nil {
				c.TryClose()
				break
			}
			if i == 5000 {
				t.Fatalf("%s: the UDP socket never reached sipgo's pool", name)
			}
			time.Sleep(time.Millisecond)
		}
	}
	return p
}

func (p *peerUA) setOnInvite(f func(s *sipgo.DialogServerSession, req *sip.Request)) {
	p.mu.Lock()
	p.onInvite = f
	p.mu.Unlock()
}

func (p *peerUA) setRespond(f func(req *sip.Request) (int, []byte)) {
	p.mu.Lock()
	p.respond = f
	p.mu.Unlock()
}

func (p *peerUA) push(req *sip.Request) {
	select {
	case p.reqs <- req:
	default:
	}
}

func (p *peerUA) answerInDialog(req *sip.Request, tx sip.ServerTransaction) {
	code, body := 200, []byte(nil)
	p.mu.Lock()
	f := p.respond
	p.mu.Unlock()
	if f != nil {
		code, body = f(req)
	} else if req.Method == sip.INVITE || (req.Method == sip.UPDATE && len(req.Body()) > 0) {
		body = testSDP(p.ip, 4000)
	}
	res := sip.NewResponseFromRequest(req, code, "Test", body)
	if len(body) > 0 {
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	if req.Method == sip.INVITE || req.Method == sip.UPDATE {
		res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: p.name, Host: p.ip, Port: int(p.addr.Port())}})
	}
	_ = tx.Respond(res)
}

// next returns the next request of method the UA received; requests of
// other methods stay queued for later calls.
func (p *peerUA) next(method sip.RequestMethod) *sip.Request {
	p.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		p.mu.Lock()
		for i, r := range p.pending {
			if r.Method == method {
				p.pending = append(p.pending[:i], p.pending[i+1:]...)
				p.mu.Unlock()
				return r
			}
		}
		p.mu.Unlock()
		select {
		case r := <-p.reqs:
			p.mu.Lock()
			p.pending = append(p.pending, r)
			p.mu.Unlock()
		case <-deadline:
			p.t.Fatalf("%s: no %s received", p.name, method)
			return nil
		}
	}
}

// session returns the next dialog the UA answered.
func (p *peerUA) session() *sipgo.DialogServerSession {
	p.t.Helper()
	select {
	case s := <-p.sessions:
		return s
	case <-time.After(10 * time.Second):
		p.t.Fatalf("%s: no call arrived", p.name)
		return nil
	}
}

// countingListener counts accepted connections.
type countingListener struct {
	net.Listener
	mu sync.Mutex
	n  int
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.n++
		l.mu.Unlock()
	}
	return c, err
}

func (l *countingListener) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

func ringAndAnswer(s *sipgo.DialogServerSession, req *sip.Request) {
	_ = s.Respond(180, "Ringing", nil)
	_ = s.RespondSDP(testSDP("127.0.0.3", 5000))
}

// call places a call from p to user via the unit at dst.
func (p *peerUA) call(ctx context.Context, dst netip.AddrPort, user string, body []byte, hdrs ...sip.Header) (*sipgo.DialogClientSession, error) {
	u := sip.Uri{Scheme: "sip", User: user, Host: dst.Addr().String(), Port: int(dst.Port())}
	if body != nil {
		hdrs = append(hdrs, sip.NewHeader("Content-Type", "application/sdp"))
	}
	return p.dc.Invite(ctx, u, body, hdrs...)
}

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
		cfg.Peers = append(cfg.Peers, config.Peer{Name: "pbx", Kind: "pbx", Interface: "inside", Address: pbx.addr.String(), Transport: "udp"})
	}
	if itsp != nil {
		cfg.Peers = append(cfg.Peers, config.Peer{Name: "itsp", Kind: "itsp", Interface: "outside", Address: itsp.addr.String(), Transport: "udp"})
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
