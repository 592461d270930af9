package b2bua

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/guard"
	"github.com/palisade-sbc/palisade/internal/sip/transport"
)

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
	hs *transport.TLSListener
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
		ep.ServeUDPConn(conn)
		return &listener{key: k, cfg: lc, bound: transport.BoundAddr(conn.LocalAddr()), close: conn.Close}, nil
	case "tcp":
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("sip.listeners %s tcp %s: %w", k.iface, addr, err)
		}
		go ep.ServeTCP(guard.Listener(l, hsTimeout, idle)) //nolint:errcheck // slowloris limits
		return &listener{key: k, cfg: lc, bound: transport.BoundAddr(l.Addr()), close: l.Close}, nil
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
		hl := ep.ServeTLSListener(guard.Listener(l, hsTimeout, idle), cfg, hsTimeout, idle)
		return &listener{key: k, cfg: lc, bound: transport.BoundAddr(l.Addr()), close: hl.Close, hs: hl}, nil
	}
	return nil, fmt.Errorf("sip.listeners %s: transport %q is not udp, tcp or tls", k.iface, k.transport)
}
