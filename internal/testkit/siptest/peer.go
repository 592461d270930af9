package siptest

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// SDP is a minimal offer/answer body (PCMU and telephone-event): the one
// SDP builder of the SIP tests.
func SDP(ip string, port int) []byte {
	return []byte("v=0\r\no=- 1 1 IN IP4 " + ip + "\r\ns=-\r\nc=IN IP4 " + ip + "\r\nt=0 0\r\nm=audio " +
		strconv.Itoa(port) + " RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n")
}

// WireLog records every raw message a test UA receives.
type WireLog struct {
	mu   sync.Mutex
	msgs []string
	// drop, when set, makes the UA ignore messages it returns true for
	// (the message is still recorded).
	drop func(msg string) bool
}

func (w *WireLog) Record(_ sip.TransportReadProps, data []byte) ([]byte, error) {
	w.mu.Lock()
	w.msgs = append(w.msgs, string(data))
	drop := w.drop
	w.mu.Unlock()
	if drop != nil && drop(string(data)) {
		return nil, nil
	}
	return data, nil
}

func (w *WireLog) SetDrop(f func(string) bool) {
	w.mu.Lock()
	w.drop = f
	w.mu.Unlock()
}

// Count returns how many recorded messages start with prefix.
func (w *WireLog) Count(prefix string) int {
	n := 0
	for _, m := range w.All() {
		if strings.HasPrefix(m, prefix) {
			n++
		}
	}
	return n
}

func (w *WireLog) All() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.msgs...)
}

// Peer is a sipgo user agent playing a PBX or a trunk in tests: it answers
// INVITEs (ringing, then 200 with SDP, unless OnInvite says otherwise) and
// in-dialog requests, queues every request it gets (Next) and records
// every raw message (Wire).
type Peer struct {
	t    *testing.T
	Name string
	IP   string
	Addr netip.AddrPort
	UA   *sipgo.UserAgent
	Srv  *sipgo.Server
	Cli  *sipgo.Client
	DC   *sipgo.DialogClientCache
	DS   *sipgo.DialogServerCache
	Wire *WireLog

	mu sync.Mutex
	// OnInvite answers an incoming INVITE; the default rings and answers.
	OnInvite func(s *sipgo.DialogServerSession, req *sip.Request)
	Reqs     chan *sip.Request
	pending  []*sip.Request
	Sessions chan *sipgo.DialogServerSession
	Accepts  *CountingListener
	// Respond decides the answer to in-dialog and standalone requests
	// other than INVITE/ACK/BYE (default 200 OK).
	Respond func(req *sip.Request) (int, []byte)
}

// NewPeer starts a Peer named name on a free port of ip over transport
// (udp or tcp); it stops when the test ends.
func NewPeer(t *testing.T, name, ip, transport string) *Peer {
	t.Helper()
	return NewPeerWith(t, name, ip, transport, nil)
}

// NewPeerWith is NewPeer with setup run before the UA serves (handlers
// replaced there are race-free).
func NewPeerWith(t *testing.T, name, ip, transport string, setup func(*Peer)) *Peer {
	t.Helper()
	p := &Peer{t: t, Name: name, IP: ip, Wire: &WireLog{}, Reqs: make(chan *sip.Request, 100),
		Sessions: make(chan *sipgo.DialogServerSession, 10)}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent(name), sipgo.WithUserAgentHostname(ip),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerReadFilter(p.Wire.Record)))
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
		p.Addr = netip.MustParseAddrPort(l.Addr().String())
		p.Accepts = &CountingListener{Listener: l}
		serve = func() { go srv.ServeTCP(p.Accepts) }
		t.Cleanup(func() { l.Close() })
	default:
		conn, err := net.ListenPacket("udp", ip+":0")
		if err != nil {
			t.Fatal(err)
		}
		p.Addr = netip.MustParseAddrPort(conn.LocalAddr().String())
		serve = func() { go srv.ServeUDP(conn) }
		t.Cleanup(func() { conn.Close() })
	}
	opts := []sipgo.ClientOption{sipgo.WithClientHostname(ip), sipgo.WithClientPort(int(p.Addr.Port()))}
	if transport == "udp" {
		// send from the listening socket, as a real PBX or trunk does
		opts = append(opts, sipgo.WithClientConnectionAddr(p.Addr.String()))
	}
	cli, err := sipgo.NewClient(ua, opts...)
	if err != nil {
		t.Fatal(err)
	}
	contact := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: name, Host: ip, Port: int(p.Addr.Port())}}
	if transport == "tcp" {
		contact.Address.UriParams = sip.NewParams()
		contact.Address.UriParams.Add("transport", "tcp")
	}
	p.UA, p.Srv, p.Cli = ua, srv, cli
	p.DC = sipgo.NewDialogClientCache(cli, contact)
	p.DS = sipgo.NewDialogServerCache(cli, contact)
	srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		p.Push(req)
		if req.To() != nil && tagOf(req.To().Params) != "" {
			p.AnswerInDialog(req, tx)
			return
		}
		s, err := p.DS.ReadInvite(req, tx)
		if err != nil {
			return
		}
		p.mu.Lock()
		h := p.OnInvite
		p.mu.Unlock()
		publish := func() {
			select {
			case p.Sessions <- s:
			default:
			}
		}
		if h == nil {
			// the default answers at once: the test gets the session only
			// after the answer was written (its fields change there)
			RingAndAnswer(s, req)
			publish()
		} else {
			publish()
			h(s, req)
		}
		<-s.Context().Done()
	})
	srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) {
		p.Push(req)
		_ = p.DS.ReadAck(req, tx)
	})
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		p.Push(req)
		if err := p.DS.ReadBye(req, tx); err != nil {
			if err := p.DC.ReadBye(req, tx); err != nil {
				_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "No dialog", nil))
			}
		}
	})
	for _, m := range []sip.RequestMethod{sip.INFO, sip.MESSAGE, sip.UPDATE, sip.PRACK, sip.OPTIONS, sip.NOTIFY, sip.REFER} {
		srv.OnRequest(m, func(req *sip.Request, tx sip.ServerTransaction) {
			p.Push(req)
			p.AnswerInDialog(req, tx)
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
			if c, _ := ua.TransportLayer().GetConnection("udp", p.Addr.String()); c != nil {
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

func (p *Peer) SetOnInvite(f func(s *sipgo.DialogServerSession, req *sip.Request)) {
	p.mu.Lock()
	p.OnInvite = f
	p.mu.Unlock()
}

func (p *Peer) SetRespond(f func(req *sip.Request) (int, []byte)) {
	p.mu.Lock()
	p.Respond = f
	p.mu.Unlock()
}

func (p *Peer) Push(req *sip.Request) {
	select {
	case p.Reqs <- req:
	default:
	}
}

func (p *Peer) AnswerInDialog(req *sip.Request, tx sip.ServerTransaction) {
	code, body := 200, []byte(nil)
	p.mu.Lock()
	f := p.Respond
	p.mu.Unlock()
	if f != nil {
		code, body = f(req)
	} else if req.Method == sip.INVITE || (req.Method == sip.UPDATE && len(req.Body()) > 0) {
		body = SDP(p.IP, 4000)
	}
	res := sip.NewResponseFromRequest(req, code, "Test", body)
	if len(body) > 0 {
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	if req.Method == sip.INVITE || req.Method == sip.UPDATE {
		res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: p.Name, Host: p.IP, Port: int(p.Addr.Port())}})
	}
	_ = tx.Respond(res)
}

// Next returns the next request of method the UA received; requests of
// other methods stay queued for later calls. None within 10 s fails the
// test.
func (p *Peer) Next(method sip.RequestMethod) *sip.Request {
	p.t.Helper()
	r, ok := p.NextWithin(method, 10*time.Second)
	if !ok {
		p.t.Fatalf("%s: no %s received", p.Name, method)
	}
	return r
}

// NextWithin is Next that reports false instead of failing when no such
// request came within d.
func (p *Peer) NextWithin(method sip.RequestMethod, d time.Duration) (*sip.Request, bool) {
	deadline := time.After(d)
	for {
		p.mu.Lock()
		for i, r := range p.pending {
			if r.Method == method {
				p.pending = append(p.pending[:i], p.pending[i+1:]...)
				p.mu.Unlock()
				return r, true
			}
		}
		p.mu.Unlock()
		select {
		case r := <-p.Reqs:
			p.mu.Lock()
			p.pending = append(p.pending, r)
			p.mu.Unlock()
		case <-deadline:
			return nil, false
		}
	}
}

// Session returns the next dialog the UA answered.
func (p *Peer) Session() *sipgo.DialogServerSession {
	p.t.Helper()
	select {
	case s := <-p.Sessions:
		return s
	case <-time.After(10 * time.Second):
		p.t.Fatalf("%s: no call arrived", p.Name)
		return nil
	}
}

// CountingListener counts accepted connections.
type CountingListener struct {
	net.Listener
	mu sync.Mutex
	n  int
}

func (l *CountingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.n++
		l.mu.Unlock()
	}
	return c, err
}

func (l *CountingListener) Count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

// RingAndAnswer answers an INVITE with 180 and a 200 with SDP.
func RingAndAnswer(s *sipgo.DialogServerSession, req *sip.Request) {
	_ = s.Respond(180, "Ringing", nil)
	_ = s.RespondSDP(SDP("127.0.0.3", 5000))
}

// Call places a call from p to user at dst (the unit's listener).
func (p *Peer) Call(ctx context.Context, dst netip.AddrPort, user string, body []byte, hdrs ...sip.Header) (*sipgo.DialogClientSession, error) {
	u := sip.Uri{Scheme: "sip", User: user, Host: dst.Addr().String(), Port: int(dst.Port())}
	if body != nil {
		hdrs = append(hdrs, sip.NewHeader("Content-Type", "application/sdp"))
	}
	return p.DC.Invite(ctx, u, body, hdrs...)
}

// tagOf is the tag parameter of a From or To header, "" when none.
func tagOf(p sip.HeaderParams) string {
	if p == nil {
		return ""
	}
	v, _ := p.Get("tag")
	return v
}
