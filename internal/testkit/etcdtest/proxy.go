package etcdtest

import (
	"io"
	"net"
	"strings"
	"sync"
	"testing"
)

// Proxy forwards TCP to one etcd member until cut: a client behind it
// (a unit's store) can be partitioned from etcd while others still reach it.
type Proxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

// NewProxy listens on a free loopback port and forwards to the address to.
func NewProxy(t testing.TB, to string) *Proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln}
	t.Cleanup(p.Cut)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", to)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { io.Copy(u, c); u.Close() }()
			go func() { io.Copy(c, u); c.Close() }()
		}
	}()
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut closes the listener and every connection: nothing passes any more.
func (p *Proxy) Cut() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// Proxies puts a proxy before every member and returns the --store value
// that reaches the cluster through them (namespace ns), and the proxies.
func (c *Cluster) Proxies(t testing.TB, ns string) (string, []*Proxy) {
	var ps []*Proxy
	var addrs []string
	for _, e := range c.Endpoints() {
		p := NewProxy(t, e)
		ps = append(ps, p)
		addrs = append(addrs, p.Addr())
	}
	u := "etcd://" + strings.Join(addrs, ",")
	if ns != "" {
		u += "/" + ns
	}
	return u, ps
}
