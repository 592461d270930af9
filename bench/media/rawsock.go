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
	// The kernel stamps each datagram as it is queued on the socket, so the
	// latency can also be read without the generator's own delay in
	// getting to its sockets (lat_kernel_*).
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
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
	ctl   [genBatch][64]byte // receive: the SCM_TIMESTAMPNS control message
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
var flushSizes [genBatch + 1]uint64 // GEN_DEBUG: how many sendmmsg of each size

func (b *batch) flush(fd int) int {
	flushSizes[b.n]++
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

// kernelTime is when datagram i of the last recv was queued on the
// socket (SO_TIMESTAMPNS, CLOCK_REALTIME, in ns; 0: none).
func (b *batch) kernelTime(i int) int64 {
	h := &b.hs[i].hdr
	if h.Controllen < unix.SizeofCmsghdr+16 {
		return 0
	}
	c := (*unix.Cmsghdr)(unsafe.Pointer(&b.ctl[i][0]))
	if c.Level != unix.SOL_SOCKET || c.Type != unix.SCM_TIMESTAMPNS {
		return 0
	}
	ts := (*unix.Timespec)(unsafe.Pointer(&b.ctl[i][unix.SizeofCmsghdr]))
	return ts.Nano()
}

// recv reads up to genBatch waiting datagrams from fd.
func (b *batch) recv(fd int) int {
	for i := range b.hs {
		b.iovs[i].SetLen(len(b.bufs[i]))
		b.hs[i].hdr.Namelen = unix.SizeofSockaddrInet4
		b.hs[i].hdr.Control = &b.ctl[i][0]
		b.hs[i].hdr.SetControllen(len(b.ctl[i]))
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
	// startWall is start in CLOCK_REALTIME ns, the kernel's receive stamps' clock.
	startWall int64
	period    time.Duration // between two packets of a stream
	size      int
	poll      time.Duration
	late      uint64 // packets sent more than 5 ms after their time
	stray     uint64 // datagrams that belong to no stream of this socket
	// Latency histograms, one for all streams (one per stream was 80 KiB
	// each, 160 MiB at 1,000 calls, and spread the generator's stores over
	// that much memory).
	hist, khist hist
	lag         hist // from a packet's time stamp to the end of its sendmmsg
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
			var big, pk [4]uint64 // 1, 2-4, 5-16, >16
			for n, c := range flushSizes {
				i := 0
				switch {
				case n > 16:
					i = 3
				case n > 4:
					i = 2
				case n > 1:
					i = 1
				}
				big[i] += c
				pk[i] += c * uint64(n)
			}
			fmt.Fprintf(os.Stderr, "gen: flushes 1/2-4/5-16/>16: %v packets %v\n", big, pk)
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
				g.flush(b, side)
			}
		}
		for side, b := range out {
			if b.n > 0 {
				g.flush(b, side)
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
					g.take(side, in.bufs[i][:in.hs[i].len], in.kernelTime(i))
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

// flush sends the batch of side and notes how long after its time stamp
// each packet left (the generator's own share of the measured latency).
func (g *genLoop) flush(b *batch, side int) {
	n := b.n
	b.flush(g.socks[side].fd)
	now := g.nowUs()
	for i := range n {
		g.lag.add(float64(now - binary.BigEndian.Uint32(b.bufs[i][4:8])))
	}
}

// take accounts for one datagram the relay sent to socket side.
func (g *genLoop) take(side int, b []byte, kns int64) {
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
	stamp := binary.BigEndian.Uint32(b[4:8])
	g.hist.add(float64(g.nowUs() - stamp))
	if kns != 0 {
		g.khist.add(float64(uint32((kns-g.startWall)/1e3) - stamp))
	}
	s.recv++
	if s.rx != nil && s.recv%50 == 1 { // check that the relay's SRTP decrypts
		if _, err := s.rx.DecryptRTP(s.dec[:0], b, nil); err != nil {
			s.decErr++
		}
	}
}
