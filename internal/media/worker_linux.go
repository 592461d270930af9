//go:build linux

package media

import (
	"fmt"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/pion/rtp"
	"golang.org/x/sys/unix"
)

// A worker serves the sockets of many calls from one goroutine: its own
// epoll set (level-triggered) holds them, and the epoll descriptor itself
// sits in Go's network poller, so the goroutine parks like any other when
// no media is waiting and never pins an OS thread. A ready socket is read
// with one recvmmsg(2) into the worker's buffers. All sockets of a call are
// on the same worker, so each SRTP context is only ever used by one
// goroutine and the packet path takes no lock per packet (serveMu, once a
// round, only keeps call set-up and tear-down out of a round).
//
// Why not one goroutine per socket: a call has four sockets; 1,000 calls
// would park 4,000 goroutines with their stacks and buffers (about 80 KiB
// per call measured) and pay a goroutine wake-up per packet.
type worker struct {
	relay  *Relay
	epfd   int
	ep     *os.File // epfd in the Go poller
	rc     syscall.RawConn
	evfd   int // eventfd: wakes the worker for commands
	events []unix.EpollEvent
	n      int
	waitFn func(fd uintptr) bool
	pb     *pathBuf

	// batch: the worker owns a locked OS thread that waits in epoll_wait
	// itself and, after a round that relayed packets, sleeps until
	// media.batch_interval after the round began, so that one wake-up
	// serves the packets of many calls (see batch_linux.go).
	batch bool
	prio  int32 // the realtime priority the thread runs at (batch mode)

	mu      sync.Mutex
	cmds    []func()
	stopped bool
	quit    atomic.Bool // batch mode: close asked the thread to end
	held    atomic.Bool // batch mode: holds a P of its own (procs.go)

	// serveMu is held by the worker while it reads and relays (serve). A
	// goroutine holding it knows that the worker is between rounds and
	// touches no socket, so it may close or disconnect one itself
	// (exclusive) instead of handing the work to the worker and waiting.
	// That hand-off cost each call two or three wake-ups of the worker's
	// thread and, in batch mode, a wake-up of the runtime's monitor to
	// move the waiter off the P the worker kept in its epoll_wait
	// (bench/sip/RESULTS.md, run 7).
	serveMu sync.Mutex
}

func newWorker(r *Relay, batch bool) (*worker, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("media: epoll: %w", err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return nil, err
	}
	evfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("media: eventfd: %w", err)
	}
	// Port 0 in the event data means the eventfd: relay sockets never have it.
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &unix.EpollEvent{Events: unix.EPOLLIN}); err != nil {
		unix.Close(epfd)
		unix.Close(evfd)
		return nil, err
	}
	w := &worker{relay: r, epfd: epfd, evfd: evfd, events: make([]unix.EpollEvent, 128), pb: newPathBuf(workerBatch), batch: batch}
	if batch {
		return w, nil
	}
	w.ep = os.NewFile(uintptr(epfd), "media-epoll")
	if w.rc, err = w.ep.SyscallConn(); err != nil {
		w.ep.Close()
		unix.Close(evfd)
		return nil, err
	}
	w.waitFn = w.poll
	return w, nil
}

func (w *worker) poll(uintptr) bool {
	n, err := unix.EpollWait(w.epfd, w.events, 0)
	if n <= 0 || err != nil {
		return false // nothing ready: park in the Go poller
	}
	w.n = n
	return true
}

func (w *worker) run() {
	if w.batch {
		w.runBatched()
		return
	}
	defer w.exit()
	for {
		w.n = 0
		if err := w.rc.Read(w.waitFn); err != nil {
			return // closed
		}
		w.serve(w.n)
	}
}

// serve reads and relays what the n ready events of the last epoll_wait
// point at, and runs the commands when the eventfd is among them. It
// returns the number of datagrams read.
func (w *worker) serve(n int) int {
	w.serveMu.Lock()
	defer w.serveMu.Unlock()
	got := 0
	for i := 0; i < n; i++ {
		port := uint16(w.events[i].Fd)
		if port == 0 {
			w.runCmds()
			continue
		}
		s := w.relay.table[port].Load()
		if s == nil || s.wk != w {
			continue
		}
		for errs, reads := 0, 1; ; reads++ {
			k, err := w.pb.recv(s.u.fd)
			if k > 0 {
				s.handle(w.pb, k)
				got += k
			}
			// Edge-triggered (batch mode): read until the queue is empty,
			// which a short batch tells. An error (an ICMP error queued
			// on a connected socket) is taken once, data may follow it.
			if err {
				errs++
			}
			if !w.batch || (k < len(w.pb.hs) && !err) || errs > 1 {
				break
			}
			if reads == maxDrainReads {
				// A flooded socket must not starve the other calls: it
				// is re-armed, which puts it back in the ready list
				// for the next round with the rest of its queue.
				w.rearm(s)
				break
			}
		}
	}
	return got
}

// maxDrainReads bounds the recvmmsg calls per socket and round in batch
// mode (4 × workerBatch packets).
const maxDrainReads = 4

// epollEvents are the events a worker's epoll set waits for on a socket.
func (w *worker) epollEvents(s *socket) *unix.EpollEvent {
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(s.port)}
	if w.batch {
		// Edge-triggered: a socket read empty is not polled again by
		// every epoll_wait after.
		ev.Events |= unix.EPOLLET
	}
	return &ev
}

// rearm makes an edge-triggered socket with data left ready again.
func (w *worker) rearm(s *socket) {
	unix.EpollCtl(w.epfd, unix.EPOLL_CTL_MOD, s.u.fd, w.epollEvents(s))
}

// add starts serving sockets (call setup; any goroutine).
func (w *worker) add(socks ...*socket) error {
	for _, s := range socks {
		s.wk = w
		w.relay.table[s.port].Store(s)
		if err := unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, s.u.fd, w.epollEvents(s)); err != nil {
			w.relay.table[s.port].Store(nil)
			return fmt.Errorf("media: epoll add: %w", err)
		}
	}
	return nil
}

// remove stops serving and closes sockets (any goroutine). It runs while
// the worker is between rounds (exclusive), so that a descriptor is never
// closed (and reused by a new socket) while the worker reads it; a round
// after it finds the port's table entry empty. It returns when they are
// closed.
func (w *worker) remove(socks ...*socket) {
	w.exclusive(func() {
		for _, s := range socks {
			unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, s.u.fd, nil)
			if w.relay.table[s.port].Load() == s {
				w.relay.table[s.port].Store(nil)
			}
			s.u.close()
		}
	})
}

// exclusive runs fn in the caller's goroutine while the worker is between
// rounds: fn may touch what only the worker touches while it serves (a
// socket's descriptor and connection). fn must not wait for the worker.
func (w *worker) exclusive(fn func()) {
	w.serveMu.Lock()
	defer w.serveMu.Unlock()
	fn()
}

// wait runs fn on the worker goroutine and returns when it has run.
func (w *worker) wait(fn func()) {
	done := make(chan struct{})
	w.do(func() {
		fn()
		close(done)
	})
	<-done
}

func (w *worker) do(fn func()) {
	w.mu.Lock()
	if w.stopped {
		// The worker is gone (relay closed): nobody reads the sockets any more.
		w.mu.Unlock()
		fn()
		return
	}
	w.cmds = append(w.cmds, fn)
	w.mu.Unlock()
	var one = [8]byte{1}
	unix.Write(w.evfd, one[:])
}

// wake makes a batch worker waiting for packets go round once.
func (w *worker) wake() {
	if w.batch {
		w.do(func() {})
	}
}

// exit runs what was asked of the worker before it stopped, so that a call
// closing while the relay closes never waits for it forever.
func (w *worker) exit() {
	w.mu.Lock()
	w.stopped = true
	cmds := w.cmds
	w.cmds = nil
	w.mu.Unlock()
	for _, fn := range cmds {
		fn()
	}
	unix.Close(w.evfd)
}

func (w *worker) runCmds() {
	var b [8]byte
	unix.Read(w.evfd, b[:])
	w.mu.Lock()
	cmds := w.cmds
	w.cmds = nil
	w.mu.Unlock()
	for _, fn := range cmds {
		fn()
	}
}

// quitting says close was called (procs.go: no P is taken after that).
func (w *worker) quitting() bool { return w.quit.Load() }

// close stops the worker; its goroutine finishes in exit.
func (w *worker) close() {
	if !w.batch {
		w.ep.Close()
		return
	}
	w.quit.Store(true)
	var one = [8]byte{1}
	unix.Write(w.evfd, one[:])
}

// udpSock is a relay socket made with socket(2) directly, so that it never
// enters Go's network poller: the poller would wake up for every packet of
// every call although no goroutine reads these sockets.
type udpSock struct{ fd int }

const (
	afInet  = unix.AF_INET
	afInet6 = unix.AF_INET6
)

func openUDP(addr netip.Addr, port int) (udpSock, error) {
	af := unix.AF_INET6
	var sa unix.Sockaddr = &unix.SockaddrInet6{Port: port, Addr: addr.As16()}
	if addr.Is4() || addr.Is4In6() {
		af = unix.AF_INET
		sa = &unix.SockaddrInet4{Port: port, Addr: addr.Unmap().As4()}
	}
	fd, err := unix.Socket(af, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return udpSock{fd: -1}, fmt.Errorf("socket: %w", err)
	}
	if af == unix.AF_INET6 {
		unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return udpSock{fd: -1}, fmt.Errorf("bind %s:%d: %w", addr, port, err)
	}
	return udpSock{fd: fd}, nil
}

// openPair binds the RTP port and the RTCP port above it on addr.
func openPair(addr netip.Addr, port int) (udpSock, udpSock, error) {
	a, err := openUDP(addr, port)
	if err != nil {
		return a, a, err
	}
	b, err := openUDP(addr, port+1)
	if err != nil {
		a.close()
		return a, b, err
	}
	return a, b, nil
}

func (u udpSock) close() {
	if u.fd >= 0 {
		unix.Close(u.fd)
	}
}

// sendBatch sends the k queued messages with sendmmsg(2), continuing after a
// partial send. A full socket buffer or an error drops the rest.
func (u udpSock) sendBatch(pb *pathBuf, k int) int {
	sent := 0
	for sent < k {
		n, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, uintptr(u.fd), uintptr(unsafe.Pointer(&pb.ohs[sent])), uintptr(k-sent), unix.MSG_DONTWAIT, 0, 0)
		if e != 0 || n == 0 {
			break
		}
		sent += int(n)
	}
	clear(pb.odst[:k]) // do not keep destinations alive
	return sent
}

// connect fixes the socket's peer: the kernel then delivers only its
// datagrams to us, and sends to it need no address (nor a route lookup).
func (u udpSock) connect(d *dest) error {
	_, _, e := unix.Syscall(unix.SYS_CONNECT, uintptr(u.fd), uintptr(unsafe.Pointer(&d.sa[0])), uintptr(d.salen))
	if e != 0 {
		return e
	}
	return nil
}

// disconnect undoes connect (AF_UNSPEC); the socket keeps its bound address.
func (u udpSock) disconnect() {
	var sa [16]byte // sa_family = AF_UNSPEC (0)
	unix.Syscall(unix.SYS_CONNECT, uintptr(u.fd), uintptr(unsafe.Pointer(&sa[0])), uintptr(len(sa)))
}

// sendTo sends one datagram (RTCP).
func (u udpSock) sendTo(b []byte, d *dest) error {
	_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(u.fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
		unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(&d.sa[0])), uintptr(d.salen))
	if e != 0 {
		return e
	}
	return nil
}

// pathBuf is a worker's packet buffers and the recvmmsg(2) / sendmmsg(2)
// headers pointing into them.
type pathBuf struct {
	bufs   [][]byte
	hs     []mmsghdr
	iovs   []unix.Iovec
	names  []unix.RawSockaddrInet6
	ohs    []mmsghdr // send batch
	oiovs  []unix.Iovec
	odst   []*dest // keeps the sockaddrs the send headers point to
	rtpHdr rtp.Header
}

// mmsghdr is struct mmsghdr of <sys/socket.h>.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

func newPathBuf(n int) *pathBuf {
	pb := &pathBuf{hs: make([]mmsghdr, n), iovs: make([]unix.Iovec, n), names: make([]unix.RawSockaddrInet6, n),
		ohs: make([]mmsghdr, n), oiovs: make([]unix.Iovec, n), odst: make([]*dest, n)}
	mem := make([]byte, n*bufSize)
	pb.bufs = make([][]byte, n)
	for i := range pb.bufs {
		pb.bufs[i] = mem[i*bufSize : (i+1)*bufSize : (i+1)*bufSize]
		pb.ohs[i].hdr.Iov = &pb.oiovs[i]
		pb.ohs[i].hdr.SetIovlen(1)
		pb.iovs[i].Base = &pb.bufs[i][0]
		pb.hs[i].hdr.Iov = &pb.iovs[i]
		pb.hs[i].hdr.SetIovlen(1)
		pb.hs[i].hdr.Name = (*byte)(unsafe.Pointer(&pb.names[i]))
	}
	return pb
}

// queue puts b for d as message k of the send batch; connected: the
// socket is connected to d, so the message carries no address.
func (pb *pathBuf) queue(k int, b []byte, d *dest, connected bool) {
	pb.oiovs[k].Base = &b[0]
	pb.oiovs[k].SetLen(len(b))
	if connected {
		pb.ohs[k].hdr.Name, pb.ohs[k].hdr.Namelen = nil, 0
		return
	}
	pb.odst[k] = d
	pb.ohs[k].hdr.Name = &d.sa[0]
	pb.ohs[k].hdr.Namelen = d.salen
}

// recv reads what is waiting on fd (without blocking); 0 when nothing was,
// with err set when that was an error other than an empty queue.
// We do not use x/net's ReadBatch: it allocates a net.UDPAddr per message.
func (pb *pathBuf) recv(fd int) (int, bool) {
	for i := range pb.hs {
		pb.iovs[i].SetLen(readSize)
		pb.hs[i].hdr.Namelen = unix.SizeofSockaddrInet6
		pb.hs[i].hdr.Flags = 0
		pb.hs[i].len = 0
	}
	n, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&pb.hs[0])), uintptr(len(pb.hs)), unix.MSG_DONTWAIT, 0, 0)
	if e != 0 {
		return 0, e != unix.EAGAIN
	}
	return int(n), false
}

// msg returns datagram i of the last recv: its length, sender, and whether it was cut short.
func (pb *pathBuf) msg(i int) (n int, from netip.AddrPort, trunc bool) {
	h := &pb.hs[i]
	sa := &pb.names[i]
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
