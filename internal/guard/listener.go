package guard

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// Connection limits of the SIP TCP and TLS listeners. A peer PBX or trunk
// needs a few connections; a slowloris attack needs thousands.
const (
	MaxConnsPerSource = 64
	MaxConns          = 8192
)

// Listener wraps a SIP TCP listener (for TLS: the TCP listener under the
// handshake) against slowloris: a source may hold MaxConnsPerSource
// connections and all together MaxConns (more are closed at once); a new
// connection must send its first byte within first, and any connection
// that sends nothing for idle is closed (0 = no limit).
func Listener(l net.Listener, first, idle time.Duration) net.Listener {
	return &limitListener{Listener: l, first: first, idle: idle, per: map[netip.Addr]int{}}
}

type limitListener struct {
	net.Listener
	first, idle time.Duration
	mu          sync.Mutex
	per         map[netip.Addr]int
	total       int
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ap, _ := netip.ParseAddrPort(c.RemoteAddr().String())
		a := ap.Addr().Unmap()
		l.mu.Lock()
		ok := l.per[a] < MaxConnsPerSource && l.total < MaxConns
		if ok {
			l.per[a]++
			l.total++
		}
		l.mu.Unlock()
		if !ok {
			refused.WithLabelValues("dropped", "connections").Inc()
			c.Close()
			continue
		}
		lc := &limitConn{Conn: c, l: l, addr: a, idle: l.idle}
		if l.first > 0 {
			_ = c.SetReadDeadline(time.Now().Add(l.first))
		}
		return lc, nil
	}
}

func (l *limitListener) release(a netip.Addr) {
	l.mu.Lock()
	if l.per[a]--; l.per[a] <= 0 {
		delete(l.per, a)
	}
	l.total--
	l.mu.Unlock()
}

// limitConn moves its read deadline forward on every read that got bytes.
type limitConn struct {
	net.Conn
	l       *limitListener
	addr    netip.Addr
	idle    time.Duration
	started bool
	once    sync.Once
}

func (c *limitConn) Read(p []byte) (int, error) {
	if c.started && c.idle > 0 {
		_ = c.Conn.SetReadDeadline(time.Now().Add(c.idle))
	}
	n, err := c.Conn.Read(p)
	if n > 0 && !c.started {
		c.started = true
		if c.idle > 0 {
			_ = c.Conn.SetReadDeadline(time.Now().Add(c.idle))
		} else {
			_ = c.Conn.SetReadDeadline(time.Time{})
		}
	}
	return n, err
}

func (c *limitConn) Close() error {
	c.once.Do(func() { c.l.release(c.addr) })
	return c.Conn.Close()
}
