//go:build !linux

package media

import (
	"net"
	"net/netip"
)

// batchReader falls back to one datagram per read where recvmmsg is missing.
type batchReader struct {
	c    *net.UDPConn
	bufs [][]byte
	n    int
	from netip.AddrPort
}

func newBatchReader(c *net.UDPConn, bufs [][]byte) (*batchReader, error) {
	return &batchReader{c: c, bufs: bufs}, nil
}

func (r *batchReader) read(size int) (int, error) {
	n, from, err := r.c.ReadFromUDPAddrPort(r.bufs[0][:size])
	if err != nil {
		return 0, err
	}
	r.n, r.from = n, from
	return 1, nil
}

func (r *batchReader) msg(int) (int, netip.AddrPort, bool) { return r.n, r.from, false }
