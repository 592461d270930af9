package transport

import (
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// udpReaders is the number of goroutines reading each UDP socket.
const udpReaders = 2

// ServeUDPConn serves a bound UDP socket and returns once sipgo has it in
// its pool (requests leave from it; sending before that would bind a
// second socket on the address).
func (e *Endpoint) ServeUDPConn(conn net.PacketConn) {
	if uc, ok := conn.(*net.UDPConn); ok {
		_ = uc.SetReadBuffer(4 << 20)
		_ = uc.SetWriteBuffer(4 << 20)
	}
	// Two readers per socket: sipgo parses in the reading goroutine, and
	// one reader alone falls behind (kernel drops) when the machine is
	// busy. Both return when the socket is closed.
	for i := 0; i < udpReaders; i++ {
		go e.ServeUDP(&rawReader{PacketConn: conn, ep: e}) //nolint:errcheck
	}
	for i := 0; i < 1000; i++ {
		if e.HasConn("udp", conn.LocalAddr().String()) {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// TLSListener accepts TCP connections and completes the TLS handshake in
// its own goroutine per connection, with a deadline, before sipgo sees the
// connection: a peer that never sends a ClientHello is closed after the
// handshake timeout and never blocks other peers. A connection whose
// client certificate the VerifiedNames hook vouches for is remembered with
// those names until it closes (PeerNames).
type TLSListener struct {
	inner   net.Listener
	cfg     atomic.Pointer[tls.Config]
	timeout time.Duration
	idle    time.Duration
	ep      *Endpoint
	ready   chan net.Conn
	done    chan struct{}
	once    sync.Once
}

// ServeTLSListener serves TLS on l (raw TCP) with cfg; timeout bounds the
// handshake, idle closes a connection silent that long (0: never).
func (e *Endpoint) ServeTLSListener(l net.Listener, cfg *tls.Config, timeout, idle time.Duration) *TLSListener {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	h := &TLSListener{inner: l, timeout: timeout, idle: idle, ep: e,
		ready: make(chan net.Conn), done: make(chan struct{})}
	h.cfg.Store(cfg)
	go h.acceptLoop()
	go e.ServeTLS(h) //nolint:errcheck
	return h
}

// SetConfig replaces the configuration for the next handshakes.
func (h *TLSListener) SetConfig(cfg *tls.Config) { h.cfg.Store(cfg) }

func (h *TLSListener) acceptLoop() {
	for {
		c, err := h.inner.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				h.Close()
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go h.handshake(c)
	}
}

func (h *TLSListener) handshake(c net.Conn) {
	tc := tls.Server(c, h.cfg.Load())
	_ = c.SetDeadline(time.Now().Add(h.timeout))
	if err := tc.Handshake(); err != nil {
		if f := h.ep.hooks.ServerHandshakeFailed; f != nil {
			f(c.RemoteAddr().String(), err)
		}
		c.Close()
		return
	}
	_ = c.SetDeadline(time.Time{})
	var out net.Conn = tc
	if h.idle > 0 {
		out = &idleConn{Conn: tc, idle: h.idle}
	}
	if f := h.ep.hooks.VerifiedNames; f != nil {
		if names := f(tc.ConnectionState(), c.RemoteAddr()); names != nil {
			out = h.ep.remember(out, names)
		}
	}
	out = h.ep.rawStreamConn(out)
	select {
	case h.ready <- out:
	case <-h.done:
		out.Close()
	}
}

// Accept hands sipgo the next connection whose handshake is done.
func (h *TLSListener) Accept() (net.Conn, error) {
	select {
	case c := <-h.ready:
		return c, nil
	case <-h.done:
		return nil, net.ErrClosed
	}
}

func (h *TLSListener) Close() error {
	var err error
	h.once.Do(func() {
		close(h.done)
		err = h.inner.Close()
	})
	return err
}

func (h *TLSListener) Addr() net.Addr { return h.inner.Addr() }

// idleConn closes a connection that stayed silent for the idle timeout.
type idleConn struct {
	net.Conn
	idle time.Duration
}

func (c *idleConn) Read(b []byte) (int, error) {
	_ = c.Conn.SetReadDeadline(time.Now().Add(c.idle))
	return c.Conn.Read(b)
}

// The names of a verified client certificate are read once per
// connection, right after the handshake, and kept under the connection's
// remote address (what sipgo gives as req.Source()) until it closes.

// identConn is an accepted TLS connection whose verified certificate named
// names; it is known to its endpoint until closed.
type identConn struct {
	net.Conn
	ep    *Endpoint
	key   string // remote address
	names []string
	once  sync.Once
}

func (e *Endpoint) remember(c net.Conn, names []string) net.Conn {
	ic := &identConn{Conn: c, ep: e, key: c.RemoteAddr().String(), names: names}
	e.tlsIDs.Store(ic.key, ic)
	return ic
}

func (c *identConn) Close() error {
	c.once.Do(func() { c.ep.tlsIDs.CompareAndDelete(c.key, c) })
	return c.Conn.Close()
}

// PeerNames returns the names of the verified client certificate of the
// TLS connection from remote (a request's Source()), nil when there is
// none or it was not verified.
func (e *Endpoint) PeerNames(remote string) []string {
	v, ok := e.tlsIDs.Load(remote)
	if !ok {
		return nil
	}
	return v.(*identConn).names
}

// BoundAddr is a listener's bound address.
func BoundAddr(a net.Addr) netip.AddrPort {
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}
