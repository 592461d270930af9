// Package transport is Palisade's adaptation of sipgo: one Endpoint per
// interface with its own transport and transaction layer, the tolerant
// wire parser (wire.go), responses in wire order (order.go), TLS
// connections we dial ourselves (server name, client certificate,
// handshake deadline) and reuse, and the changes to sipgo's package-level
// settings. The B2BUA (internal/sip/b2bua) sees only this narrow API, so a
// sipgo upgrade touches this package.
package transport

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
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
	// immediate 100 Trying, a 2xx repeated after that is re-ACKed by the
	// B2BUA's stray-response hook, and a BYE repeated later gets 481 for a
	// call that is over anyway.
	sip.Timer_J = sip.T4
	sip.Timer_L = sip.T4
	sip.Timer_M = sip.T4
}

// Hooks are how an Endpoint reaches its user. All are optional.
type Hooks struct {
	// Logger gets sipgo's log lines.
	Logger *slog.Logger
	// OnRequest gets every request the transaction layer hands up (one
	// goroutine per request).
	OnRequest func(req *sip.Request, tx *sip.ServerTx)
	// OnStrayResponse gets responses no transaction wants.
	OnStrayResponse func(r *sip.Response)
	// OnAnswer sees every 2xx in the reading goroutine of its connection,
	// before the next message is read: it must be cheap.
	OnAnswer func(r *sip.Response)
	// Sent is told of every message sent (traces).
	Sent func(callID string, m sip.Message, remote netip.AddrPort)
	// KeepRaw says whether UDP datagrams are kept for Raw (traces on).
	KeepRaw func() bool
	// Local is the interface's address and UDP listening port: requests
	// leave from there (source port = Via port over UDP).
	Local func() (netip.Addr, int)
	// TLSClient is the client TLS configuration for a server name.
	TLSClient func(serverName string) (*tls.Config, error)
	// HandshakeTimeout bounds dialling and the TLS handshake.
	HandshakeTimeout func() time.Duration
	// DialedTLS wraps a TLS connection we dialled before sipgo reads it
	// (to report an alert on its first read); HandshakeFailed is told of a
	// failed client handshake.
	DialedTLS       func(c net.Conn, remote string) net.Conn
	HandshakeFailed func(remote string, err error)
	// ServerHandshakeFailed is told of a failed handshake on a TLS listener.
	ServerHandshakeFailed func(remote string, err error)
	// VerifiedNames returns the names of a client certificate somebody
	// verified (nil: none, or not verified): they identify the connection's
	// peer (PeerNames).
	VerifiedNames func(cs tls.ConnectionState, remote net.Addr) []string
}

// Endpoint is one interface: its own sipgo transport and transaction layer
// serving all listeners of the interface. It lives across configuration
// changes so that connections of calls in progress survive.
type Endpoint struct {
	name  string
	hooks Hooks
	tp    *sip.TransportLayer
	tx    *sip.TransactionLayer
	// dialed feeds outbound TLS connections we dialled ourselves into sipgo,
	// which adds them to its pool and reads them like accepted ones.
	dialed *chanListener
	dialMu sync.Mutex
	// tcpDialed feeds TCP connections opened by Connect into sipgo.
	tcpDialed *chanListener
	// prov maps a client INVITE transaction's key to its *Ordered (order.go).
	prov sync.Map
	// tlsIDs maps the remote address of an accepted TLS connection with a
	// verified client certificate to its *identConn (listen.go).
	tlsIDs sync.Map
	// raw holds received datagrams for Raw (rawwire.go).
	raw *rawTable
	// streams: connections read through rawStream, by source string.
	streams sync.Map
}

// New returns the endpoint of interface name.
func New(name string, h Hooks) *Endpoint {
	if h.Logger == nil {
		h.Logger = slog.Default()
	}
	e := &Endpoint{name: name, hooks: h, raw: newRawTable()}
	e.tp = sip.NewTransportLayer(net.DefaultResolver, NewParser(), nil,
		sip.WithTransportLayerLogger(h.Logger), sip.WithTransportLayerReadFilter(ReadFilter))
	e.tp.OnMessage(e.takeRaw) // before the transaction layer's handler
	opts := []sip.TransactionLayerOption{sip.WithTransactionLayerLogger(h.Logger),
		// A TCP/TLS peer that closes the connection (e.g. a TLS 1.3 trunk
		// refusing our certificate after Finished) fails the transactions
		// on it at once (503, next target) instead of after 32 s.
		sip.WithTransactionLayerTerminateOnConnClose()}
	if h.OnStrayResponse != nil {
		opts = append(opts, sip.WithTransactionLayerUnhandledResponseHandler(h.OnStrayResponse))
	}
	e.tx = sip.NewTransactionLayer(e.tp, opts...)
	if h.OnRequest != nil {
		e.tx.OnRequest(h.OnRequest)
	}
	e.tp.OnMessage(e.onWire) // provisional responses in wire order (order.go)
	e.dialed = newChanListener()
	go e.tp.ServeTLS(e.dialed) //nolint:errcheck // ends when the listener closes
	e.tcpDialed = newChanListener()
	go e.tp.ServeTCP(e.tcpDialed) //nolint:errcheck // ends when the listener closes
	return e
}

// Name is the interface's name.
func (e *Endpoint) Name() string { return e.name }

// ServeUDP, ServeTCP and ServeTLS serve a listener of the interface until
// it closes (TLS: connections whose handshake is already done).
func (e *Endpoint) ServeUDP(c net.PacketConn) error { return e.tp.ServeUDP(c) }
func (e *Endpoint) ServeTCP(l net.Listener) error   { return e.tp.ServeTCP(l) }
func (e *Endpoint) ServeTLS(l net.Listener) error   { return e.tp.ServeTLS(l) }

// HasConn reports whether sipgo's pool holds a connection of transport
// to addr (TCP/TLS: in-dialog requests reuse the dialog's connection,
// sipgo issue 361; UDP: a listening socket is served).
func (e *Endpoint) HasConn(transport, addr string) bool {
	c, _ := e.tp.GetConnection(transport, addr)
	if c == nil {
		return false
	}
	c.TryClose()
	return true
}

// Close stops the endpoint's layers and its dialled-connection feed.
func (e *Endpoint) Close() {
	e.dialed.Close()
	e.tcpDialed.Close()
	e.tx.Close()
	e.tp.Close()
}

// prepare fixes the transport, destination and source socket of req.
func (e *Endpoint) prepare(req *sip.Request, dst routing.Target) {
	tr := dst.Transport
	if tr == "" {
		tr = "udp"
	}
	req.SetTransport(strings.ToUpper(tr))
	req.SetDestination(dst.Addr.String())
	if e.hooks.Local == nil {
		return
	}
	addr, udpPort := e.hooks.Local()
	if !addr.IsValid() || addr.IsUnspecified() {
		return
	}
	la := sip.Addr{IP: net.IP(addr.AsSlice())}
	if tr == "udp" {
		// sending from the listening socket keeps the source port equal
		// to what Via and Contact say
		la.Port = udpPort
	}
	req.Laddr = la
}

// Request starts a client transaction for req towards dst; callID names
// the call in the trace.
func (e *Endpoint) Request(ctx context.Context, req *sip.Request, dst routing.Target, callID string) (*sip.ClientTx, error) {
	e.prepare(req, dst)
	if dst.Transport == "tls" {
		if err := e.ensureTLS(ctx, dst); err != nil {
			return nil, fmt.Errorf("%w: %w", err, sip.ErrTransactionTransport)
		}
	}
	e.sent(callID, req, dst.Addr)
	tx, err := e.tx.Request(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("send %s to %s: %w: %w", req.Method, dst.Addr, err, sip.ErrTransactionTransport)
	}
	return tx, nil
}

// Send writes a message without a transaction (ACK for 2xx).
func (e *Endpoint) Send(req *sip.Request, dst routing.Target, callID string) error {
	e.prepare(req, dst)
	e.sent(callID, req, dst.Addr)
	return e.tp.WriteMsg(req)
}

func (e *Endpoint) sent(callID string, m sip.Message, to netip.AddrPort) {
	if e.hooks.Sent != nil {
		e.hooks.Sent(callID, m, to)
	}
}

// Connect opens a TCP or TLS connection to dst now, unless sipgo's pool
// has one: a unit that took calls over (docs/ha.md) has none of the
// connections their legs used. Requests to dst then go over it, and the
// peer may send over it too. UDP needs nothing.
func (e *Endpoint) Connect(ctx context.Context, dst routing.Target) error {
	switch dst.Transport {
	case "tls":
		return e.ensureTLS(ctx, dst)
	case "tcp":
		return e.ensureTCP(ctx, dst)
	}
	return nil
}

// ensureTCP dials a TCP connection to dst from the interface's address
// and hands it to sipgo, which pools and reads it as an accepted one.
func (e *Endpoint) ensureTCP(ctx context.Context, dst routing.Target) error {
	addr := dst.Addr.String()
	e.dialMu.Lock()
	defer e.dialMu.Unlock()
	if e.HasConn("tcp", addr) {
		return nil
	}
	d, timeout := e.dialer()
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := d.DialContext(hctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("tcp dial %s: %w", addr, err)
	}
	if !e.tcpDialed.push(conn) {
		conn.Close()
		return fmt.Errorf("tcp to %s: endpoint closed", addr)
	}
	return e.registered("tcp", addr)
}

// dialer is a dialer from the interface's address with the handshake
// timeout.
func (e *Endpoint) dialer() (net.Dialer, time.Duration) {
	timeout := 10 * time.Second
	if e.hooks.HandshakeTimeout != nil {
		timeout = e.hooks.HandshakeTimeout()
	}
	d := net.Dialer{Timeout: timeout}
	if e.hooks.Local != nil {
		if a, _ := e.hooks.Local(); a.IsValid() && !a.IsUnspecified() {
			d.LocalAddr = &net.TCPAddr{IP: net.IP(a.AsSlice())}
		}
	}
	return d, timeout
}

// registered waits until sipgo's accept loop has pooled the connection to
// addr that was just pushed.
func (e *Endpoint) registered(transport, addr string) error {
	for i := 0; i < 200; i++ {
		if e.HasConn(transport, addr) {
			return nil
		}
		time.Sleep(time.Millisecond)
	}
	return fmt.Errorf("%s to %s: connection not registered", transport, addr)
}

// ensureTLS makes sure a TLS connection to dst is in sipgo's pool, dialling
// it ourselves so that the server name is the SIP domain (not the IP), the
// client certificate and trust come from the TLSClient hook, and the
// handshake has a deadline.
func (e *Endpoint) ensureTLS(ctx context.Context, dst routing.Target) error {
	addr := dst.Addr.String()
	if e.HasConn("tls", addr) {
		return nil
	}
	e.dialMu.Lock()
	defer e.dialMu.Unlock()
	if e.HasConn("tls", addr) {
		return nil
	}
	if e.hooks.TLSClient == nil {
		return fmt.Errorf("tls to %s: no TLS provider", addr)
	}
	cfg, err := e.hooks.TLSClient(dst.ServerName)
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
	d, timeout := e.dialer()
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	raw, err := d.DialContext(hctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("tls dial %s: %w", addr, err)
	}
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(hctx); err != nil {
		raw.Close()
		if e.hooks.HandshakeFailed != nil {
			e.hooks.HandshakeFailed(addr, err)
		}
		return fmt.Errorf("tls handshake with %s: %w", addr, err)
	}
	var conn net.Conn = tc
	if e.hooks.DialedTLS != nil {
		conn = e.hooks.DialedTLS(tc, addr)
	}
	if conn = e.rawStreamConn(conn); !e.dialed.push(conn) {
		conn.Close()
		return fmt.Errorf("tls to %s: endpoint closed", addr)
	}
	return e.registered("tls", addr)
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
