package b2bua

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/observe"
	"github.com/palisade-sbc/palisade/internal/routing"
)

func init() {
	// sipgo refuses UDP messages over 1300 bytes by default; SDP with many
	// codecs and SRTP keys passes that easily. Loopback and most LANs carry
	// 64 KB datagrams (IP fragmentation).
	sip.UDPMTUSize = 65535
	// A completed transaction only absorbs retransmissions; sipgo keeps it,
	// with its messages, for 64*T1 = 32 s. At thousands of calls per second
	// that is hundreds of MB of dead state. T4 (5 s, as Kamailio's wait
	// timer) covers retransmissions in practice: INVITEs stop at our
	// immediate 100 Trying, a 2xx repeated after that is re-ACKed by
	// onStrayResponse, and a BYE repeated later gets 481 for a call that is
	// over anyway.
	sip.Timer_J = sip.T4
	sip.Timer_L = sip.T4
	sip.Timer_M = sip.T4
}

// endpoint is one interface: its own sipgo transport and transaction layer
// serving all listeners of the interface. It lives as long as the service,
// across applies, so that connections of calls in progress survive.
type endpoint struct {
	name string
	svc  *Service
	tp   *sip.TransportLayer
	tx   *sip.TransactionLayer
	// dialed feeds outbound TLS connections we dialled ourselves into sipgo,
	// which adds them to its pool and reads them like accepted ones.
	dialed    *chanListener
	tlsDialMu sync.Mutex
	// prov maps a client INVITE transaction's key to its *ordered (order.go).
	prov sync.Map

	info atomic.Pointer[ifaceInfo]

	// tlsIDs maps the remote address of an accepted TLS connection with a
	// verified client certificate to its *identConn (identity.go).
	tlsIDs  sync.Map
	certIdx atomic.Pointer[certPeerIndex]
}

// ifaceInfo is what messages on this interface show about the unit.
type ifaceInfo struct {
	addr      netip.Addr
	ip        net.IP         // addr for sipgo's Laddr, made once
	host      string         // fqdn, else advertised address, else address
	ports     map[string]int // transport (udp|tcp|tls) → bound port
	userAgent string
	hide      bool // sip.topology_hiding
}

func newEndpoint(svc *Service, name string) *endpoint {
	e := &endpoint{name: name, svc: svc}
	logger := slog.New(&sipgoLogHandler{svc: svc})
	e.tp = sip.NewTransportLayer(net.DefaultResolver, newWireParser(), nil, // wire.go
		sip.WithTransportLayerLogger(logger), sip.WithTransportLayerReadFilter(wireFilter))
	e.tx = sip.NewTransactionLayer(e.tp, sip.WithTransactionLayerLogger(logger),
		sip.WithTransactionLayerUnhandledResponseHandler(func(r *sip.Response) { svc.onStrayResponse(e, r) }),
		// A TCP/TLS peer that closes the connection (e.g. a TLS 1.3 trunk
		// refusing our certificate after Finished) fails the transactions
		// on it at once (503, next target) instead of after 32 s.
		sip.WithTransactionLayerTerminateOnConnClose())
	e.tx.OnRequest(func(req *sip.Request, tx *sip.ServerTx) { svc.onRequest(e, req, tx) })
	e.tp.OnMessage(e.onWire) // provisional responses in wire order (order.go)
	e.dialed = newChanListener()
	go e.tp.ServeTLS(e.dialed) //nolint:errcheck // ends when the listener closes
	info := &ifaceInfo{ports: map[string]int{}}
	e.info.Store(info)
	return e
}

// port returns the local port for transport, falling back to any listener.
func (i *ifaceInfo) port(tr string) int {
	if p := i.ports[tr]; p != 0 {
		return p
	}
	for _, t := range []string{"udp", "tcp", "tls"} {
		if p := i.ports[t]; p != 0 {
			return p
		}
	}
	return 5060
}

// hostPort is host:port as written in Via and Contact.
func (i *ifaceInfo) hostPort(tr string) string {
	h := i.host
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	return h + ":" + strconv.Itoa(i.port(tr))
}

// contact is the unit's Contact on this interface.
func (i *ifaceInfo) contact(tr string) *sip.ContactHeader {
	u := sip.Uri{Scheme: "sip", Host: i.host, Port: i.port(tr)}
	if tr != "udp" {
		u.UriParams = sip.NewParams()
		u.UriParams.Add("transport", tr)
	}
	return &sip.ContactHeader{Address: u}
}

func (i *ifaceInfo) via(tr string) *sip.ViaHeader {
	v := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: strings.ToUpper(tr),
		Host: i.host, Port: i.port(tr), Params: sip.NewParams()}
	v.Params.Add("branch", sip.GenerateBranch())
	v.Params.Add("rport", "")
	return v
}

// prepare fixes the transport, destination and source socket of req.
func (e *endpoint) prepare(req *sip.Request, dst routing.Target) {
	tr := dst.Transport
	if tr == "" {
		tr = "udp"
	}
	req.SetTransport(strings.ToUpper(tr))
	req.SetDestination(dst.Addr.String())
	info := e.info.Load()
	if info.ip != nil {
		la := sip.Addr{IP: info.ip}
		if tr == "udp" {
			// sending from the listening socket keeps the source port
			// equal to what Via and Contact say
			la.Port = info.ports["udp"]
		}
		req.Laddr = la
	}
}

// request starts a client transaction for req towards dst.
func (e *endpoint) request(ctx context.Context, req *sip.Request, dst routing.Target, callID string) (*sip.ClientTx, error) {
	e.prepare(req, dst)
	if dst.Transport == "tls" {
		if err := e.ensureTLS(ctx, dst); err != nil {
			return nil, fmt.Errorf("%w: %w", err, sip.ErrTransactionTransport)
		}
	}
	e.svc.trace(callID, e, observe.Sent, req, dst.Addr)
	tx, err := e.tx.Request(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("send %s to %s: %w: %w", req.Method, dst.Addr, err, sip.ErrTransactionTransport)
	}
	return tx, nil
}

// send writes a message without a transaction (ACK for 2xx).
func (e *endpoint) send(req *sip.Request, dst routing.Target, callID string) error {
	e.prepare(req, dst)
	e.svc.trace(callID, e, observe.Sent, req, dst.Addr)
	return e.tp.WriteMsg(req)
}

// ensureTLS makes sure a TLS connection to dst is in sipgo's pool, dialling
// it ourselves so that the server name is the SIP domain (not the IP), the
// client certificate and trust come from the PKI provider, and the
// handshake has a deadline.
func (e *endpoint) ensureTLS(ctx context.Context, dst routing.Target) error {
	addr := dst.Addr.String()
	if c, _ := e.tp.GetConnection("tls", addr); c != nil {
		c.TryClose()
		return nil
	}
	e.tlsDialMu.Lock()
	defer e.tlsDialMu.Unlock()
	if c, _ := e.tp.GetConnection("tls", addr); c != nil {
		c.TryClose()
		return nil
	}
	rt := e.svc.rt.Load()
	if e.svc.deps.TLS == nil {
		return fmt.Errorf("tls to %s: no TLS provider", addr)
	}
	cfg, err := e.svc.deps.TLS.ClientConfig(dst.ServerName)
	if err != nil {
		return fmt.Errorf("tls to %s: %w", addr, err)
	}
	if cfg.ServerName == "" {
		cfg = cfg.Clone()
		cfg.ServerName = dst.ServerName
		if cfg.ServerName == "" {
			cfg.ServerName = dst.Addr.Addr().String()
		}
	}
	d := net.Dialer{Timeout: rt.handshakeTimeout}
	if info := e.info.Load(); info.addr.IsValid() && !info.addr.IsUnspecified() {
		d.LocalAddr = &net.TCPAddr{IP: net.IP(info.addr.AsSlice())}
	}
	hctx, cancel := context.WithTimeout(ctx, rt.handshakeTimeout)
	defer cancel()
	raw, err := d.DialContext(hctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("tls dial %s: %w", addr, err)
	}
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(hctx); err != nil {
		raw.Close()
		e.svc.reportHandshake("client", e.name, addr, err)
		return fmt.Errorf("tls handshake with %s: %w", addr, err)
	}
	conn := &refusedConn{Conn: tc, report: func(err error) { e.svc.reportHandshake("client", e.name, addr, err) }}
	if !e.dialed.push(conn) {
		tc.Close()
		return fmt.Errorf("tls to %s: endpoint closed", addr)
	}
	// sipgo registers the connection in its accept loop; wait for it.
	for i := 0; i < 200; i++ {
		if c, _ := e.tp.GetConnection("tls", addr); c != nil {
			c.TryClose()
			return nil
		}
		time.Sleep(time.Millisecond)
	}
	return fmt.Errorf("tls to %s: connection not registered", addr)
}

// chanListener is a net.Listener whose connections are pushed by us.
type chanListener struct {
	ch     chan net.Conn
	done   chan struct{}
	closed sync.Once
}

func newChanListener() *chanListener {
	return &chanListener{ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) push(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.closed.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4zero} }
