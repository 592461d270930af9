//go:build !linux

package media

import (
	"errors"
	"net"
	"net/netip"
	"sync/atomic"

	"github.com/pion/rtp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Without epoll and recvmmsg, every socket gets its own goroutine that reads
// one datagram at a time; sending uses x/net's WriteBatch. The packet
// handling is the same as on Linux.
type worker struct {
	relay *Relay
	held  atomic.Bool // never set: no batch workers here
}

// batchSupported: batched wake-ups need epoll (batch_linux.go).
const batchSupported = false

func newWorker(r *Relay, _ bool) (*worker, error) { return &worker{relay: r}, nil }

func (w *worker) run() {}

func (w *worker) close() {}

func (w *worker) quitting() bool { return true }

// wait runs fn at once: no socket here is ever connected, so the commands
// the Linux worker serialises have nothing to race with.
func (w *worker) wait(fn func()) { fn() }

// exclusive runs fn at once, for the same reason.
func (w *worker) exclusive(fn func()) { fn() }

func (w *worker) add(socks ...*socket) error {
	for _, s := range socks {
		s.wk = w
		s.done = make(chan struct{})
		go func(s *socket) {
			defer close(s.done)
			pb := newPathBuf(1)
			for {
				n, from, err := s.u.c.ReadFromUDPAddrPort(pb.bufs[0][:readSize])
				if err != nil {
					if errors.Is(err, net.ErrClosed) {
						return
					}
					continue
				}
				pb.n, pb.from = n, from
				s.handle(pb, 1)
			}
		}(s)
	}
	return nil
}

func (w *worker) remove(socks ...*socket) {
	for _, s := range socks {
		s.u.close()
		if s.done != nil {
			<-s.done
		}
	}
}

const (
	afInet  = 2
	afInet6 = 10
)

// batchWriter is ipv4.PacketConn or ipv6.PacketConn (their Message types are the same).
type batchWriter interface {
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

type udpSock struct {
	c *net.UDPConn
	w batchWriter
}

func openPair(addr netip.Addr, port int) (udpSock, udpSock, error) {
	open := func(p int) (udpSock, error) {
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, uint16(p))))
		if err != nil {
			return udpSock{}, err
		}
		if addr.Is4() {
			return udpSock{c: c, w: ipv4.NewPacketConn(c)}, nil
		}
		return udpSock{c: c, w: ipv6.NewPacketConn(c)}, nil
	}
	a, err := open(port)
	if err != nil {
		return a, a, err
	}
	b, err := open(port + 1)
	if err != nil {
		a.close()
	}
	return a, b, err
}

func (u udpSock) close() {
	if u.c != nil {
		u.c.Close()
	}
}

func (u udpSock) sendBatch(pb *pathBuf, k int) int {
	sent := 0
	for sent < k {
		n, err := u.w.WriteBatch(pb.out[sent:k], 0)
		if n <= 0 || err != nil {
			break
		}
		sent += n
	}
	return sent
}

var errNoConnect = errors.New("media: relay sockets stay unconnected on this platform")

// connect is not done here: a connected net.UDPConn refuses WriteTo.
func (u udpSock) connect(*dest) error { return errNoConnect }

func (u udpSock) disconnect() {}

func (u udpSock) sendTo(b []byte, d *dest) error {
	_, err := u.c.WriteToUDP(b, d.ua)
	return err
}

type pathBuf struct {
	bufs   [][]byte
	out    []ipv4.Message
	bout   [][]byte
	n      int
	from   netip.AddrPort
	rtpHdr rtp.Header
}

func newPathBuf(n int) *pathBuf {
	pb := &pathBuf{bufs: make([][]byte, n), out: make([]ipv4.Message, n), bout: make([][]byte, n)}
	for i := range pb.bufs {
		pb.bufs[i] = make([]byte, bufSize)
		pb.out[i].Buffers = pb.bout[i : i+1]
	}
	return pb
}

func (pb *pathBuf) queue(k int, b []byte, d *dest, _ bool) {
	pb.bout[k] = b
	pb.out[k].Addr = d.ua
}

func (pb *pathBuf) msg(int) (int, netip.AddrPort, bool) { return pb.n, pb.from, false }

// wake: the workers here have no thread of their own to reschedule.
func (w *worker) wake() {}
