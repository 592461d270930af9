package media

import (
	"encoding/binary"
	"errors"
	"math"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"

	"github.com/pion/srtp/v3"
)

// The packet path. A worker goroutine (see worker_linux.go) reads a batch
// from a ready socket with recvmmsg, checks, decrypts and re-encrypts in
// place in its own preallocated buffers, and sends the batch on the other
// leg's socket with one sendmmsg. Each SRTP context for RTP is used by
// exactly one goroutine, so no lock is taken per packet; the call state is
// read through an atomic pointer that signalling swaps on every completed
// offer/answer.

const (
	bufSize     = 1536
	readSize    = bufSize - 32 // room for the SRTP tag (and SRTCP index) added in place
	workerBatch = 16
)

// socket is one relay socket (a leg's RTP or RTCP port) and the state its
// worker keeps for it.
type socket struct {
	u      udpSock
	port   int
	call   *stream // the anchored stream (m= line) the socket carries
	leg    *leg
	isRTCP bool // the leg's RTCP socket (not muxed)
	wk     *worker
	done   chan struct{} // non-Linux reader goroutine

	// peer is the latch the descriptor is connect(2)ed to (only its
	// worker, or a goroutine in its exclusive): sends to it need no address, and the kernel drops what
	// comes from elsewhere before it reaches us.
	peer *latch

	// RTP sequence tracking for the loss estimate (only its worker).
	haveSeq bool
	ssrc    uint32
	seq     uint16

	jit jitterState // RTP interarrival jitter (only its worker)
}

func newSocket(u udpSock, port int, cl *stream, l *leg, isRTCP bool) *socket {
	return &socket{u: u, port: port, call: cl, leg: l, isRTCP: isRTCP}
}

// dest is where a leg's media goes, in every form the senders need.
type dest struct {
	ap    netip.AddrPort
	ua    *net.UDPAddr // for net.UDPConn (non-Linux)
	sa    [28]byte     // struct sockaddr_in / sockaddr_in6 (Linux)
	salen uint32
}

func newDest(ap netip.AddrPort) *dest {
	d := &dest{ap: ap, ua: net.UDPAddrFromAddrPort(ap)}
	port := ap.Port()
	if a := ap.Addr(); a.Is4() || a.Is4In6() {
		binary.NativeEndian.PutUint16(d.sa[0:], afInet)
		binary.BigEndian.PutUint16(d.sa[2:], port)
		a4 := a.Unmap().As4()
		copy(d.sa[4:8], a4[:])
		d.salen = 16
	} else {
		binary.NativeEndian.PutUint16(d.sa[0:], afInet6)
		binary.BigEndian.PutUint16(d.sa[2:], port)
		a16 := a.As16()
		copy(d.sa[8:24], a16[:])
		d.salen = 28
	}
	return d
}

// latch is the address a leg's media was learned from (symmetric RTP).
type latch struct {
	ap netip.AddrPort
	d  *dest
}

func newLatch(ap netip.AddrPort) *latch {
	return &latch{ap: ap, d: newDest(ap)}
}

// legCounters are one leg's statistics; written by readers, read by Stats.
type legCounters struct {
	pktIn, bytesIn, pktOut, bytesOut, lost, authFail, unexpected atomic.Uint64
	// jitter is math.Float64bits of the RFC 3550 jitter estimate in ms;
	// jitterSet tells that one was made (the leg had two RTP packets).
	jitter    atomic.Uint64
	jitterSet atomic.Bool
	// restored is monoNow when the leg was restored from a snapshot (0:
	// set up here); gap is the time from then to the first packet sent
	// out of it (0: none yet).
	restored, gap atomic.Int64
}

// handle relays the n datagrams sitting in pb that arrived on s.
func (s *socket) handle(pb *pathBuf, n int) {
	c := s.call
	st := c.state.Load()
	me := s.leg.side
	ol := c.legs[me.Other()]
	var inPk, inB, outPk, outB uint64
	now := monoNow() // arrival time of the batch, for the jitter estimate
	jitMs, jitOK := 0.0, false
	k := 0
	for i := 0; i < n; i++ {
		ln, from, trunc := pb.msg(i)
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
		b := pb.bufs[i][:ln]
		if !ms.raw && (s.isRTCP || (ms.mux && isRTCP(b))) {
			if sz, ok := s.relayRTCP(ms, os, ol, b, from); ok {
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
				var p []byte
				var err error
				if ms.in.unproven != nil { // a restored call's first packets
					p, err = ms.in.decryptRestored(b, &pb.rtpHdr)
				} else {
					p, err = ms.in.rtp.DecryptRTP(b, b, &pb.rtpHdr)
				}
				if err != nil {
					s.srtpDrop(err)
					continue
				}
				b = p
			}
		}
		if !s.latch(&s.leg.latchRTP, from) {
			continue
		}
		if !ms.raw {
			s.trackSeq(b)
			if ms.clock != 0 {
				if v, ok := s.jit.update(b, now, ms.clock); ok {
					jitMs, jitOK = v, true
				}
			}
		}
		dst := os.rtpDest(ol)
		if dst == nil {
			dropNoDest.Inc()
			continue
		}
		if os.out != nil && !os.raw {
			p, err := os.out.rtp.EncryptRTP(b, b, &pb.rtpHdr)
			if err != nil {
				dropMalformed.Inc()
				continue
			}
			b = p
		}
		pb.queue(k, b, dst, ol.rtp.connectedTo(dst))
		k++
		outB += uint64(len(b))
	}
	if k > 0 {
		outPk += uint64(ol.rtp.u.sendBatch(pb, k))
	}
	s.leg.stats.pktIn.Add(inPk)
	s.leg.stats.bytesIn.Add(inB)
	if jitOK {
		s.leg.stats.jitter.Store(math.Float64bits(jitMs))
		if !s.leg.stats.jitterSet.Load() {
			s.leg.stats.jitterSet.Store(true)
		}
	}
	if outPk > 0 {
		ol.stats.pktOut.Add(outPk)
		ol.stats.bytesOut.Add(outB)
		if r := ol.stats.restored.Load(); r != 0 && ol.stats.gap.Load() == 0 {
			c.relay.gaps.first(&ol.stats, now-r)
		}
	}
}

// isRTCP tells RTCP from RTP on a muxed port by the packet type (RFC 5761 §4).
func isRTCP(b []byte) bool {
	return len(b) >= 8 && b[0]>>6 == 2 && b[1] >= 192 && b[1] <= 223
}

// relayRTCP decrypts, latches and forwards one RTCP packet. RTCP is a few
// packets per second, so it is sent on its own rather than batched.
func (s *socket) relayRTCP(ms, os *legState, ol *leg, b []byte, from netip.AddrPort) (int, bool) {
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
			s.srtpDrop(err)
			return 0, false
		}
		b = p
	}
	lt := &s.leg.latchRTCP
	if !s.isRTCP {
		lt = &s.leg.latchRTP
	}
	if !s.latch(lt, from) {
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
		p, idx, err := os.out.rtcp.encrypt(b)
		if err != nil {
			dropMalformed.Inc()
			return 0, false
		}
		b = p
		if idx%srtcpIndexJump == 0 { // the snapshot's SRTCP index is due (restore.go)
			s.call.relay.countersMoved(s.call.id)
		}
	}
	if err := sock.u.sendTo(b, dst); err != nil {
		return 0, false
	}
	return len(b), true
}

func (s *socket) srtpDrop(err error) {
	if isReplay(err) {
		dropReplay.Inc()
		return
	}
	authFailures.Inc()
	// Logged on the 1st, 2nd, 4th, 8th... failure of the leg, so a flood
	// costs no shared lock (the limited logger has one) and no log flood.
	if n := s.leg.stats.authFail.Add(1); n&(n-1) != 0 {
		return
	}
	s.call.relay.badTraffic.Warn("srtp-auth:"+s.call.id, "media: SRTP packet failed authentication, dropped",
		"call_id", s.call.id, "leg", s.leg.side.String(), "err", err)
}

// isReplay tells a replayed packet from a forged one. pion does not export
// its "duplicated" error, so its text is the only handle.
func isReplay(err error) bool {
	return !errors.Is(err, srtp.ErrFailedToVerifyAuthTag) && strings.Contains(err.Error(), "duplicated packet")
}

// latch learns the leg's far address from its first packet that passed the
// checks (authentication for SRTP), and connects the socket to it. After
// that the kernel drops packets from any other address (a guard against
// media injection), and the sends to the peer skip the route lookup. What
// came from elsewhere and was queued before the connect is dropped and
// counted here.
func (s *socket) latch(p *atomic.Pointer[latch], from netip.AddrPort) bool {
	cur := p.Load()
	if cur == nil {
		lt := newLatch(from)
		p.Store(lt)
		if s.u.connect(lt.d) == nil {
			s.peer = lt
		}
		return true
	}
	if cur.ap == from {
		return true
	}
	dropUnexpected.Inc()
	if n := s.leg.stats.unexpected.Add(1); n&(n-1) != 0 {
		return false
	}
	s.call.relay.badTraffic.Warn("latch:"+s.call.id, "media: packet from an unexpected address after latching, dropped",
		"call_id", s.call.id, "leg", s.leg.side.String(), "from", from.String(), "latched", cur.ap.String())
	return false
}

// connectedTo tells whether the socket is connected to d, so that a send to
// d goes without an address.
func (s *socket) connectedTo(d *dest) bool { return s.peer != nil && s.peer.d == d }

// unlatch forgets where a leg's media came from (its far end moved: a
// re-INVITE or UPDATE with a new address): the next packet that passes the
// checks latches again. The sockets are disconnected while their worker is
// between rounds (it is the only other goroutine that touches peer; unless
// it latched anew in the meantime), and unlatch returns when they are, so
// the new address's first packet is not dropped by the kernel.
func (c *call) unlatch(l *leg) {
	l.latchRTP.Store(nil)
	l.latchRTCP.Store(nil)
	c.wk.exclusive(func() {
		l.rtp.disconnectStale(&l.latchRTP)
		l.rtcp.disconnectStale(&l.latchRTCP)
	})
}

func (s *socket) disconnectStale(p *atomic.Pointer[latch]) {
	if s.peer != nil && s.peer != p.Load() {
		s.u.disconnect()
		s.peer = nil
	}
}

// trackSeq counts gaps in the RTP sequence numbers as lost packets.
func (s *socket) trackSeq(b []byte) {
	seq := uint16(b[2])<<8 | uint16(b[3])
	ssrc := uint32(b[8])<<24 | uint32(b[9])<<16 | uint32(b[10])<<8 | uint32(b[11])
	if s.haveSeq && ssrc == s.ssrc {
		d := seq - s.seq
		switch {
		case d == 0 || d > 0x8000: // duplicate or late: not a gap
			return
		case d > 1 && d < 3000:
			s.leg.stats.lost.Add(uint64(d - 1))
		}
		if seq < s.seq { // forward across 65535: the SRTP rollover counter moved (snapshot.go)
			s.call.relay.countersMoved(s.call.id)
		}
	}
	s.haveSeq, s.ssrc, s.seq = true, ssrc, seq
}
