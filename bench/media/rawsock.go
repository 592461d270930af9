package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"time"
	"unsafe"

	"github.com/pion/rtp"
	"golang.org/x/sys/unix"
)

// The generator must cost much less than the relay it measures: both share
// the machine's two cores, and on loopback whoever sends a datagram pays for
// delivering it (and for waking its reader). So it is one thread with one
// socket per side for all streams: sends go out with sendmmsg(2) to many
// destinations at once, receives come in with recvmmsg(2) in batches, and
// between rounds the thread sleeps in nanosleep(2) for -gen-poll instead of
// waiting on the sockets. Nobody waits on a generator socket, so the relay's
// sends into it wake no one (a real peer is across a NIC; the loopback
// wake-up would be a cost of the bench, not of the relay). The price is up to
// one poll interval of latency, included in the figures.
//
// The relay latches each of its ports to the address its media came from,
// leg by leg, so a thousand relay ports latched to the same generator
// address and port is what the relay sees from a PBX that sends all its
// calls from one port. A received packet is told apart by its SSRC.

const genBatch = 64

type rawSock struct {
	fd   int
	port int
}

func newRawSock() (*rawSock, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	// Whatever arrives in one poll interval (and a stall of the box) must fit.
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4<<20)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &rawSock{fd: fd, port: sa.(*unix.SockaddrInet4).Port}, nil
}

// mmsghdr is struct mmsghdr of <sys/socket.h>.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

// batch is a set of datagrams for sendmmsg or recvmmsg, with their buffers.
type batch struct {
	hs    [genBatch]mmsghdr
	iovs  [genBatch]unix.Iovec
	bufs  [genBatch][2048]byte
	names [genBatch]unix.RawSockaddrInet4
	n     int
}

func newBatch() *batch {
	b := &batch{}
	for i := range b.hs {
		b.iovs[i].Base = &b.bufs[i][0]
		b.hs[i].hdr.Iov = &b.iovs[i]
		b.hs[i].hdr.SetIovlen(1)
		b.hs[i].hdr.Name = (*byte)(unsafe.Pointer(&b.names[i]))
	}
	return b
}

// flush sends the queued datagrams on fd; it returns how many went out.
func (b *batch) flush(fd int) int {
	sent := 0
	for sent < b.n {
		n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&b.hs[sent])), uintptr(b.n-sent), unix.MSG_DONTWAIT, 0, 0)
		if e != 0 || n == 0 {
			break
		}
		sent += int(n)
	}
	b.n = 0
	return sent
}

// recv reads up to genBatch waiting datagrams from fd.
func (b *batch) recv(fd int) int {
	for i := range b.hs {
		b.iovs[i].SetLen(len(b.bufs[i]))
		b.hs[i].hdr.Namelen = unix.SizeofSockaddrInet4
		b.hs[i].len = 0
	}
	n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&b.hs[0])), genBatch, unix.MSG_DONTWAIT, 0, 0)
	if e != 0 {
		return 0
	}
	return int(n)
}

// genLoop is the generator: it sends every stream's packets on schedule and
// takes in what the relay sends back, until the send window and the drain
// after it are over.
type genLoop struct {
	streams []*stream
	socks   [2]*rawSock // [0] inside (plain RTP), [1] outside (SRTP)
	start   time.Time
	period  time.Duration // between two packets of a stream
	size    int
	poll    time.Duration
	late    uint64 // packets sent more than 5 ms after their time
	stray   uint64 // datagrams that belong to no stream of this socket
}

func (g *genLoop) nowUs() uint32 { return uint32(time.Since(g.start).Microseconds()) }

// due is when packet k (over all streams, round-robin) is to be sent.
func (g *genLoop) due(k uint64) time.Duration {
	return time.Duration(k * uint64(g.period) / uint64(len(g.streams)))
}

func (g *genLoop) run(dur, drain time.Duration, cpu int) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if cpu >= 0 {
		var set unix.CPUSet
		set.Set(cpu)
		unix.SchedSetaffinity(0, &set)
	}
	// Sleep for what we ask, not 50 µs more (the default timer slack).
	unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0)
	out := [2]*batch{newBatch(), newBatch()}
	in := newBatch()
	total := uint64(dur / g.period * time.Duration(len(g.streams)))
	var hdr rtp.Header
	var k uint64
	var iters, sleeps uint64
	var tSend, tRecv, tSleep time.Duration
	defer func() {
		if os.Getenv("GEN_DEBUG") != "" {
			fmt.Fprintf(os.Stderr, "gen: iters=%d sleeps=%d send=%v recv=%v sleep=%v\n", iters, sleeps, tSend, tRecv, tSleep)
		}
	}()
	for {
		iters++
		t0 := time.Now()
		el := time.Since(g.start)
		// At most a few batches per round, so that a late generator still
		// reads its sockets in between (a long catch-up burst would
		// overflow them).
		for burst := 0; k < total && g.due(k) <= el && burst < 4*genBatch; k, burst = k+1, burst+1 {
			if el-g.due(k) > 5*time.Millisecond {
				g.late++
			}
			s := g.streams[k%uint64(len(g.streams))]
			side := s.side
			b := out[side]
			i := b.n
			pkt := b.bufs[i][:g.size]
			s.seq++
			pkt[0], pkt[1] = 0x80, 8
			binary.BigEndian.PutUint16(pkt[2:4], s.seq)
			binary.BigEndian.PutUint32(pkt[4:8], g.nowUs())
			binary.BigEndian.PutUint32(pkt[8:12], s.ssrc)
			n := g.size
			if s.tx != nil {
				p, err := s.tx.EncryptRTP(b.bufs[i][:0], pkt, &hdr)
				if err != nil {
					continue
				}
				n = len(p)
			}
			b.iovs[i].SetLen(n)
			b.names[i] = s.to
			b.hs[i].hdr.Namelen = unix.SizeofSockaddrInet4
			s.sent++ // counted as offered; a failed sendmmsg shows as loss
			b.n++
			if b.n == genBatch {
				b.flush(g.socks[side].fd)
			}
		}
		for side, b := range out {
			if b.n > 0 {
				b.flush(g.socks[side].fd)
			}
		}
		t1 := time.Now()
		tSend += t1.Sub(t0)
		got := 0
		for side, s := range g.socks {
			for {
				n := in.recv(s.fd)
				got += n
				for i := 0; i < n; i++ {
					g.take(side, in.bufs[i][:in.hs[i].len])
				}
				if n < genBatch {
					break
				}
			}
		}
		t2 := time.Now()
		tRecv += t2.Sub(t1)
		el = time.Since(g.start)
		if k >= total && el >= g.due(total)+drain {
			return
		}
		wait := g.poll
		if k < total {
			wait = min(wait, g.due(k)-el)
		}
		if wait > 0 && got < genBatch && (k >= total || g.due(k) > el) {
			ts := unix.NsecToTimespec(int64(wait))
			unix.Nanosleep(&ts, nil)
			sleeps++
			tSleep += time.Since(t2)
		}
	}
}

// take accounts for one datagram the relay sent to socket side.
func (g *genLoop) take(side int, b []byte) {
	if len(b) < 12 {
		g.stray++
		return
	}
	from := int(binary.BigEndian.Uint32(b[8:12])) - 1 // the sending stream
	if from < 0 || from >= len(g.streams) {
		g.stray++
		return
	}
	s := g.streams[from^1] // its peer is the receiving stream
	if s.side != side {
		g.stray++
		return
	}
	// The sender's clock rides in the RTP timestamp, which SRTP leaves in clear.
	s.hist.add(float64(g.nowUs() - binary.BigEndian.Uint32(b[4:8])))
	s.recv++
	if s.rx != nil && s.recv%50 == 1 { // check that the relay's SRTP decrypts
		if _, err := s.rx.DecryptRTP(s.dec[:0], b, nil); err != nil {
			s.decErr++
		}
	}
}
