package media

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// The packet path. Every socket of a call has one reader goroutine; it reads
// a batch with recvmmsg, checks, decrypts and re-encrypts in place in its own
// preallocated buffers, and sends the batch on the other leg's socket with
// one sendmmsg. Each SRTP context for RTP is used by exactly one reader, so
// no lock is taken per packet; the call state is read through an atomic
// pointer that signalling swaps on every completed offer/answer.

const (
	bufSize   = 1536
	readSize  = bufSize - 32 // room for the SRTP tag (and SRTCP index) added in place
	rtpBatch  = 8
	rtcpBatch = 2
)

// batchWriter is ipv4.PacketConn or ipv6.PacketConn (their Message types are the same).
type batchWriter interface {
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

type socket struct {
	conn *net.UDPConn
	w    batchWriter
}

func newSocket(c *net.UDPConn) *socket {
	s := &socket{conn: c}
	if a, ok := c.LocalAddr().(*net.UDPAddr); ok && a.IP.To4() == nil {
		s.w = ipv6.NewPacketConn(c)
	} else {
		s.w = ipv4.NewPacketConn(c)
	}
	return s
}

// writeAll sends every message, continuing after a partial sendmmsg. A send
// error (e.g. the far end's port is closed) drops the rest of the batch.
func (s *socket) writeAll(ms []ipv4.Message) int {
	sent := 0
	for sent < len(ms) {
		n, err := s.w.WriteBatch(ms[sent:], 0)
		if n <= 0 || err != nil {
			if n > 0 {
				sent += n
			}
			return sent
		}
		sent += n
	}
	return sent
}

// latch is the address a leg's media was learned from (symmetric RTP).
type latch struct {
	ap netip.AddrPort
	ua *net.UDPAddr
}

func newLatch(ap netip.AddrPort) *latch {
	return &latch{ap: ap, ua: net.UDPAddrFromAddrPort(ap)}
}

// legCounters are one leg's statistics; written by readers, read by Stats.
type legCounters struct {
	pktIn, bytesIn, pktOut, bytesOut, lost, authFail atomic.Uint64
}

type reader struct {
	c      *call
	l      *leg
	isRTCP bool // the leg's RTCP socket (not muxed)
	br     *batchReader
	bufs   [][]byte
	out    []ipv4.Message
	bout   [][]byte
	hdr    rtp.Header

	// RTP sequence tracking for the loss estimate (only this goroutine).
	haveSeq bool
	ssrc    uint32
	seq     uint16
}

func newReader(c *call, l *leg, s *socket, isRTCP bool) (*reader, error) {
	n := rtpBatch
	if isRTCP {
		n = rtcpBatch
	}
	mem := make([]byte, n*bufSize)
	r := &reader{c: c, l: l, isRTCP: isRTCP, bufs: make([][]byte, n), out: make([]ipv4.Message, n), bout: make([][]byte, n)}
	for i := range r.bufs {
		r.bufs[i] = mem[i*bufSize : (i+1)*bufSize : (i+1)*bufSize]
		r.out[i].Buffers = r.bout[i : i+1]
	}
	br, err := newBatchReader(s.conn, r.bufs)
	if err != nil {
		return nil, err
	}
	r.br = br
	return r, nil
}

func (r *reader) run() {
	defer r.c.wg.Done()
	for {
		n, err := r.br.read(readSize)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		r.handle(n)
	}
}

// handle relays n datagrams sitting in r.bufs.
func (r *reader) handle(n int) {
	st := r.c.state.Load()
	me := r.l.side
	ol := r.c.legs[me.Other()]
	var inPk, inB, outPk, outB uint64
	k := 0
	for i := 0; i < n; i++ {
		ln, from, trunc := r.br.msg(i)
		if trunc {
			dropTruncated.Inc()
			continue
		}
		inPk++
		inB += uint64(ln)
		if st == nil || !st.legs[me].active || !st.legs[me.Other()].active {
			dropNotReady.Inc()
			continue
		}
		ms, os := &st.legs[me], &st.legs[me.Other()]
		b := r.bufs[i][:ln]
		if !ms.raw && (r.isRTCP || (ms.mux && isRTCP(b))) {
			if sz, ok := r.relayRTCP(ms, os, ol, b, from); ok {
				outPk++
				outB += uint64(sz)
			}
			continue
		}
		if !ms.raw {
			if ln < 12 || b[0]>>6 != 2 {
				dropMalformed.Inc()
				continue
			}
			if ms.in != nil {
				p, err := ms.in.rtp.DecryptRTP(b, b, &r.hdr)
				if err != nil {
					r.srtpDrop(err)
					continue
				}
				b = p
			}
		}
		if !r.latch(&r.l.latchRTP, from) {
			continue
		}
		if !ms.raw {
			r.trackSeq(b)
		}
		dst := os.rtpDest(ol)
		if dst == nil {
			dropNoDest.Inc()
			continue
		}
		if os.out != nil && !os.raw {
			p, err := os.out.rtp.EncryptRTP(b, b, &r.hdr)
			if err != nil {
				dropMalformed.Inc()
				continue
			}
			b = p
		}
		r.bout[k] = b
		r.out[k].Addr = dst
		k++
		outB += uint64(len(b))
	}
	if k > 0 {
		outPk += uint64(ol.rtp.writeAll(r.out[:k]))
	}
	r.l.stats.pktIn.Add(inPk)
	r.l.stats.bytesIn.Add(inB)
	if outPk > 0 {
		ol.stats.pktOut.Add(outPk)
		ol.stats.bytesOut.Add(outB)
	}
}

// isRTCP tells RTCP from RTP on a muxed port by the packet type (RFC 5761 §4).
func isRTCP(b []byte) bool {
	return len(b) >= 8 && b[0]>>6 == 2 && b[1] >= 192 && b[1] <= 223
}

// relayRTCP decrypts, latches and forwards one RTCP packet. RTCP is a few
// packets per second, so it is sent on its own rather than batched.
func (r *reader) relayRTCP(ms, os *legState, ol *leg, b []byte, from netip.AddrPort) (int, bool) {
	if len(b) < 8 || b[0]>>6 != 2 {
		dropMalformed.Inc()
		return 0, false
	}
	if ms.in != nil {
		rc := ms.in.rtcp
		rc.mu.Lock()
		p, err := rc.ctx.DecryptRTCP(b, b, nil)
		rc.mu.Unlock()
		if err != nil {
			r.srtpDrop(err)
			return 0, false
		}
		b = p
	}
	lt := &r.l.latchRTCP
	if !r.isRTCP {
		lt = &r.l.latchRTP
	}
	if !r.latch(lt, from) {
		return 0, false
	}
	sock, dst := ol.rtcp, os.rtcpDest(ol)
	if os.mux {
		sock, dst = ol.rtp, os.rtpDest(ol)
	}
	if dst == nil {
		dropNoDest.Inc()
		return 0, false
	}
	if os.out != nil {
		rc := os.out.rtcp
		rc.mu.Lock()
		p, err := rc.ctx.EncryptRTCP(b, b, nil)
		rc.mu.Unlock()
		if err != nil {
			dropMalformed.Inc()
			return 0, false
		}
		b = p
	}
	if _, err := sock.conn.WriteToUDP(b, dst); err != nil {
		return 0, false
	}
	return len(b), true
}

func (r *reader) srtpDrop(err error) {
	if isReplay(err) {
		dropReplay.Inc()
		return
	}
	authFailures.Inc()
	r.l.stats.authFail.Add(1)
	r.c.relay.badTraffic.Warn("srtp-auth:"+r.c.id, "media: SRTP packet failed authentication, dropped",
		"call_id", r.c.id, "leg", r.l.side.String(), "err", err)
}

// isReplay tells a replayed packet from a forged one. pion does not export
// its "duplicated" error, so its text is the only handle.
func isReplay(err error) bool {
	return !errors.Is(err, srtp.ErrFailedToVerifyAuthTag) && strings.Contains(err.Error(), "duplicated packet")
}

// latch learns the leg's far address from its first packet that passed the
// checks (authentication for SRTP). After that, packets from any other
// address are dropped and counted: a guard against media injection.
func (r *reader) latch(p *atomic.Pointer[latch], from netip.AddrPort) bool {
	cur := p.Load()
	if cur == nil {
		p.Store(newLatch(from))
		return true
	}
	if cur.ap == from {
		return true
	}
	dropUnexpected.Inc()
	r.c.relay.badTraffic.Warn("latch:"+r.c.id, "media: packet from an unexpected address after latching, dropped",
		"call_id", r.c.id, "leg", r.l.side.String(), "from", from.String(), "latched", cur.ap.String())
	return false
}

// trackSeq counts gaps in the RTP sequence numbers as lost packets.
func (r *reader) trackSeq(b []byte) {
	seq := uint16(b[2])<<8 | uint16(b[3])
	ssrc := uint32(b[8])<<24 | uint32(b[9])<<16 | uint32(b[10])<<8 | uint32(b[11])
	if r.haveSeq && ssrc == r.ssrc {
		d := seq - r.seq
		switch {
		case d == 0 || d > 0x8000: // duplicate or late: not a gap
			return
		case d > 1 && d < 3000:
			r.l.stats.lost.Add(uint64(d - 1))
		}
	}
	r.haveSeq, r.ssrc, r.seq = true, ssrc, seq
}
