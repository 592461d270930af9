//go:build !linux

package media

import (
	"errors"
	"net"
	"net/netip"
)

// Without epoll and recvmmsg, every socket gets its own goroutine that reads
// one datagram at a time. The packet handling is the same as on Linux.
type worker struct{ relay *Relay }

func newWorker(r *Relay) (*worker, error) { return &worker{relay: r}, nil }

func (w *worker) run() {}

func (w *worker) close() {}

func (w *worker) add(socks ...*socket) error {
	for _, s := range socks {
		s.wk = w
		s.done = make(chan struct{})
		go func(s *socket) {
			defer close(s.done)
			pb := newPathBuf(1)
			for {
				n, from, err := s.conn.ReadFromUDPAddrPort(pb.bufs[0][:readSize])
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
		s.conn.Close()
		if s.done != nil {
			<-s.done
		}
	}
}

type pathBuf struct {
	bufs [][]byte
	n    int
	from netip.AddrPort
	pktBufs
}

func newPathBuf(n int) *pathBuf {
	pb := &pathBuf{}
	pb.bufs = pb.init(n)
	return pb
}

func (pb *pathBuf) msg(int) (int, netip.AddrPort, bool) { return pb.n, pb.from, false }
