package b2bua

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/guard"
)

// udpReaders is the number of goroutines reading each UDP socket.
const udpReaders = 2

// listenerKey identifies a socket across applies: a listener whose key is
// unchanged is handed over to the new configuration, not reopened.
type listenerKey struct {
	iface, transport, addr string
	port                   int
}

type listener struct {
	key   listenerKey
	cfg   config.Listener
	bound netip.AddrPort
	close func() error
	// hs is the TLS handshake listener; its configuration is replaced in
	// place when the listener's certificate settings change.
	hs *handshakeListener
}

// openListener binds and serves one listener on ep.
func openListener(ep *endpoint, k listenerKey, lc config.Listener, s *Service, hsTimeout, idle time.Duration) (*listener, error) {
	addr := net.JoinHostPort(k.addr, strconv.Itoa(k.port))
	switch k.transport {
	case "udp":
		conn, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, fmt.Errorf("sip.listeners %s udp %s: %w", k.iface, addr, err)
		}
		if uc, ok := conn.(*net.UDPConn); ok {
			_ = uc.SetReadBuffer(4 << 20)
			_ = uc.SetWriteBuffer(4 << 20)
		}
		// Two readers per socket: sipgo parses in the reading goroutine, and
		// one reader alone falls behind (kernel drops) when the machine is
		// busy. Both return when the socket is closed.
		for i := 0; i < udpReaders; i++ {
			go ep.ServeUDP(conn) //nolint:errcheck
		}
		// sipgo registers the socket in its pool from the serving
		// goroutine; sending before that would bind a second socket.
		for i := 0; i < 1000; i++ {
			if ep.HasConn("udp", conn.LocalAddr().String()) {
				break
			}
			time.Sleep(time.Millisecond)
		}
		return &listener{key: k, cfg: lc, bound: mustAddrPort(conn.LocalAddr()), close: conn.Close}, nil
	case "tcp":
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("sip.listeners %s tcp %s: %w", k.iface, addr, err)
		}
		go ep.ServeTCP(guard.Listener(l, hsTimeout, idle)) //nolint:errcheck // slowloris limits
		return &listener{key: k, cfg: lc, bound: mustAddrPort(l.Addr()), close: l.Close}, nil
	case "tls":
		if s.deps.TLS == nil {
			return nil, fmt.Errorf("sip.listeners %s tls %s: no TLS provider", k.iface, addr)
		}
		cfg, err := s.deps.TLS.ServerConfig(lc)
		if err != nil {
			return nil, fmt.Errorf("sip.listeners %s tls %s: %w", k.iface, addr, err)
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("sip.listeners %s tls %s: %w", k.iface, addr, err)
		}
		hl := newHandshakeListener(guard.Listener(l, hsTimeout, idle), cfg, hsTimeout, idle, ep)
		go ep.ServeTLS(hl) //nolint:errcheck
		return &listener{key: k, cfg: lc, bound: mustAddrPort(l.Addr()), close: hl.Close, hs: hl}, nil
	}
	return nil, fmt.Errorf("sip.listeners %s: transport %q is not udp, tcp or tls", k.iface, k.transport)
}

func mustAddrPort(a net.Addr) netip.AddrPort {
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// handshakeListener accepts TCP connections and completes the TLS handshake
// in its own goroutine per connection, with a deadline, before sipgo sees
// the connection: a peer that never sends a ClientHello is closed after the
// handshake timeout and never blocks other peers.
type handshakeListener struct {
	inner   net.Listener
	cfg     atomic.Pointer[tls.Config]
	timeout time.Duration
	idle    time.Duration
	ep      *endpoint
	ready   chan net.Conn
	done    chan struct{}
	once    sync.Once
}

func newHandshakeListener(l net.Listener, cfg *tls.Config, timeout, idle time.Duration, ep *endpoint) *handshakeListener {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	h := &handshakeListener{inner: l, timeout: timeout, idle: idle, ep: ep,
		ready: make(chan net.Conn), done: make(chan struct{})}
	h.cfg.Store(cfg)
	go h.acceptLoop()
	return h
}

func (h *handshakeListener) acceptLoop() {
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

func (h *handshakeListener) handshake(c net.Conn) {
	tc := tls.Server(c, h.cfg.Load())
	_ = c.SetDeadline(time.Now().Add(h.timeout))
	if err := tc.Handshake(); err != nil {
		h.ep.svc.reportHandshake("server", h.ep.name, c.RemoteAddr().String(), err)
		c.Close()
		return
	}
	_ = c.SetDeadline(time.Time{})
	var out net.Conn = tc
	if h.idle > 0 {
		out = &idleConn{Conn: tc, idle: h.idle}
	}
	if names := h.ep.svc.verifiedNames(tc.ConnectionState()); names != nil {
		out = h.ep.remember(out, names) // peer recognition by certificate (identity.go)
	}
	select {
	case h.ready <- out:
	case <-h.done:
		out.Close()
	}
}

func (h *handshakeListener) Accept() (net.Conn, error) {
	select {
	case c := <-h.ready:
		return c, nil
	case <-h.done:
		return nil, net.ErrClosed
	}
}

func (h *handshakeListener) Close() error {
	var err error
	h.once.Do(func() {
		close(h.done)
		err = h.inner.Close()
	})
	return err
}

func (h *handshakeListener) Addr() net.Addr { return h.inner.Addr() }

// idleConn closes a connection that stayed silent for the idle timeout.
type idleConn struct {
	net.Conn
	idle time.Duration
}

func (c *idleConn) Read(b []byte) (int, error) {
	_ = c.Conn.SetReadDeadline(time.Now().Add(c.idle))
	return c.Conn.Read(b)
}
