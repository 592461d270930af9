//go:build linux

package media

import (
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchReader reads up to len(bufs) datagrams with one recvmmsg(2). We do
// not use x/net's ReadBatch here: it allocates a net.UDPAddr for every
// message, and the relay must not allocate per packet. Sending uses x/net's
// WriteBatch (sendmmsg), which does not allocate.
type batchReader struct {
	rc    syscall.RawConn
	hs    []mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6
	bufs  [][]byte
	n     int
	errno syscall.Errno
	fn    func(fd uintptr) bool // bound once: no closure allocation per read
}

// mmsghdr is struct mmsghdr of <sys/socket.h>.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

func newBatchReader(c *net.UDPConn, bufs [][]byte) (*batchReader, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	r := &batchReader{rc: rc, bufs: bufs,
		hs: make([]mmsghdr, len(bufs)), iovs: make([]unix.Iovec, len(bufs)),
		names: make([]unix.RawSockaddrInet6, len(bufs))}
	for i := range bufs {
		r.iovs[i].Base = &bufs[i][0]
		r.hs[i].hdr.Iov = &r.iovs[i]
		r.hs[i].hdr.SetIovlen(1)
		r.hs[i].hdr.Name = (*byte)(unsafe.Pointer(&r.names[i]))
	}
	r.fn = r.recv
	return r, nil
}

func (r *batchReader) recv(fd uintptr) bool {
	n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hs[0])), uintptr(len(r.hs)), unix.MSG_DONTWAIT, 0, 0)
	if e == unix.EAGAIN || e == unix.EWOULDBLOCK {
		return false // wait for the poller
	}
	if e == unix.EINTR {
		return false
	}
	r.n, r.errno = int(n), e
	return true
}

// read blocks until at least one datagram is there and returns how many
// arrived. size is the usable length of each buffer.
func (r *batchReader) read(size int) (int, error) {
	for i := range r.hs {
		r.iovs[i].SetLen(size)
		r.hs[i].hdr.Namelen = unix.SizeofSockaddrInet6
		r.hs[i].hdr.Flags = 0
		r.hs[i].len = 0
	}
	r.n, r.errno = 0, 0
	if err := r.rc.Read(r.fn); err != nil {
		return 0, err
	}
	if r.errno != 0 {
		return 0, r.errno
	}
	return r.n, nil
}

// msg returns datagram i: its length, sender, and whether it was cut short.
func (r *batchReader) msg(i int) (n int, from netip.AddrPort, trunc bool) {
	h := &r.hs[i]
	sa := &r.names[i]
	switch sa.Family {
	case unix.AF_INET:
		s4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		p := (*[2]byte)(unsafe.Pointer(&s4.Port))
		from = netip.AddrPortFrom(netip.AddrFrom4(s4.Addr), uint16(p[0])<<8|uint16(p[1]))
	case unix.AF_INET6:
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		from = netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), uint16(p[0])<<8|uint16(p[1]))
	}
	return int(h.len), from, h.hdr.Flags&unix.MSG_TRUNC != 0
}
