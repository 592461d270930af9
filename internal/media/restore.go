package media

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/pion/rtp"
)

// srtcpIndexJump is how far a restored outbound SRTCP context continues
// above the index in the record. The owner writes the index every 64 SRTCP
// packets, so the ones it sent after its last write are never sent again
// under the same index (that would reuse keystream and trip the peer's
// replay check).
const srtcpIndexJump = 64

// Snapshotter is implemented by the calls of a *Relay: the SIP layer asks
// for a snapshot when a call is confirmed and after each change of its
// media, and stores it for the unit that may take the call over.
type Snapshotter interface {
	Snapshot() (*CallSnapshot, error)
}

var _ Snapshotter = (*call)(nil)

// Snapshot records the call's media as the last completed offer/answer left
// it. The SRTP counters are read on the call's worker, the only goroutine
// that touches them; the call's packets are not held up beyond that.
func (c *call) Snapshot() (*CallSnapshot, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errClosed
	}
	s := &CallSnapshot{Version: SnapshotVersion, ID: c.id}
	for i, sd := range c.sides {
		s.Sides[i] = SideSnapshot{Interface: sd.spec.Interface, Bind: sd.spec.Bind,
			Advertised: sd.spec.Advertised, Policy: sd.pol}
	}
	for _, st := range c.streams {
		if st == nil {
			s.Streams = append(s.Streams, nil)
			continue
		}
		s.Streams = append(s.Streams, c.snapStream(st))
	}
	if err := s.validate(); err != nil {
		return nil, fmt.Errorf("media: snapshot of call %s: %w", c.id, err)
	}
	return s, nil
}

// snapStream records one stream. c.mu is held.
func (c *call) snapStream(st *stream) *StreamSnapshot {
	ss := &StreamSnapshot{Kind: st.kind}
	state := st.state.Load()
	for i, l := range st.legs {
		ls := &ss.Legs[i]
		ls.Port = l.port
		if lt := l.latchRTP.Load(); lt != nil {
			ls.LatchRTP = lt.ap
		}
		if lt := l.latchRTCP.Load(); lt != nil {
			ls.LatchRTCP = lt.ap
		}
		if state == nil {
			continue
		}
		m := &state.legs[i]
		ls.Active, ls.Raw, ls.Mux, ls.NoSend = m.active, m.raw, m.mux, m.noSend
		ls.InRTP, ls.Codec, ls.Clock = m.inRTP, m.codec, m.clock
		if m.dstRTP != nil {
			ls.DstRTP = m.dstRTP.ap
		}
		if m.dstRTCP != nil {
			ls.DstRTCP = m.dstRTCP.ap
		}
		if m.in != nil {
			ls.In, ls.Out = cryptoState(m.in.c), cryptoState(m.out.c)
		}
	}
	if state == nil {
		return ss
	}
	// The SSRCs are those the worker last saw on each leg's RTP, and those
	// of the record a restored stream came from (a snapshot right after a
	// takeover must not lose their counters); pion keeps its per-SSRC state
	// in maps that only the worker may read.
	c.wk.wait(func() {
		ssrcs := slices.Clone(st.known)
		for _, l := range st.legs {
			if l.rtp.haveSeq && !slices.Contains(ssrcs, l.rtp.ssrc) {
				ssrcs = append(ssrcs, l.rtp.ssrc)
			}
		}
		for i := range st.legs {
			m, ls := &state.legs[i], &ss.Legs[i]
			if m.in == nil {
				continue
			}
			for _, ssrc := range ssrcs {
				if roc, ok := m.in.rtp.ROC(ssrc); ok {
					ls.In.ROC = append(ls.In.ROC, SSRCValue{ssrc, roc})
				}
				if roc, ok := m.out.rtp.ROC(ssrc); ok {
					ls.Out.ROC = append(ls.Out.ROC, SSRCValue{ssrc, roc})
				}
			}
		}
	})
	for i := range st.legs {
		m, ls := &state.legs[i], &ss.Legs[i]
		if m.out == nil {
			continue
		}
		rc := m.out.rtcp
		rc.mu.Lock()
		for _, v := range ls.Out.ROC {
			if idx, ok := rc.ctx.Index(v.SSRC); ok {
				ls.Out.SRTCPIndex = append(ls.Out.SRTCPIndex, SSRCValue{v.SSRC, idx})
			}
		}
		rc.mu.Unlock()
	}
	return ss
}

// restoreCrypt builds a leg's contexts from a record: the rollover counters
// as they were, the outbound SRTCP index srtcpIndexJump above. An SSRC
// without an index in the record had sent fewer than srtcpIndexJump SRTCP
// packets at its last write (the index due at 64 was not written), so it
// continues at srtcpIndexJump: from index 1 again the peer would drop its
// RTCP as replays. So does an SSRC the record does not know (floor).
func restoreCrypt(cs *CryptoState, outbound bool) (*crypt, error) {
	cr, err := newCrypt(cs.crypto())
	if err != nil {
		return nil, err
	}
	for _, v := range cs.ROC {
		cr.rtp.SetROC(v.SSRC, v.Value)
		if !outbound {
			if cr.unproven == nil {
				cr.unproven = map[uint32]bool{}
			}
			cr.unproven[v.SSRC] = true
		}
	}
	if outbound {
		cr.rtcp.floor = srtcpIndexJump
		for _, v := range cs.ROC {
			cr.rtcp.ctx.SetIndex(v.SSRC, srtcpIndexJump)
		}
		for _, v := range cs.SRTCPIndex {
			cr.rtcp.ctx.SetIndex(v.SSRC, v.Value+srtcpIndexJump)
		}
	}
	return cr, nil
}

// recordedSSRCs are the SSRCs whose counters a stream's record holds.
func recordedSSRCs(ss *StreamSnapshot) []uint32 {
	var out []uint32
	for _, ls := range ss.Legs {
		for _, cs := range []*CryptoState{ls.In, ls.Out} {
			if cs == nil {
				continue
			}
			for _, v := range append(slices.Clone(cs.ROC), cs.SRTCPIndex...) {
				if !slices.Contains(out, v.SSRC) {
					out = append(out, v.SSRC)
				}
			}
		}
	}
	return out
}

// decryptRestored decrypts b on a stream restored from a snapshot until
// its rollover counter is confirmed. The snapshot may be older than a wrap
// of the sender's sequence number (it wrapped in the gap of a takeover, or
// before the record of the wrap was written); then every packet fails
// authentication with the recorded counter. A packet that fails before the
// first success is tried once more with the counter one higher (RFC 3711
// §3.3.1: the receiver estimates the index), which is kept when it
// authenticates. Runs on the leg's worker, which owns the context; the
// copy of b (an AEAD may spoil b when it fails) is made only until then.
func (cr *crypt) decryptRestored(b []byte, h *rtp.Header) ([]byte, error) {
	ssrc := binary.BigEndian.Uint32(b[8:12])
	if !cr.unproven[ssrc] {
		return cr.rtp.DecryptRTP(b, b, h)
	}
	orig := append([]byte(nil), b...)
	p, err := cr.rtp.DecryptRTP(b, b, h)
	if err != nil {
		roc, _ := cr.rtp.ROC(ssrc)
		cr.rtp.SetROC(ssrc, roc+1)
		copy(b, orig)
		var err2 error
		if p, err2 = cr.rtp.DecryptRTP(b, b, h); err2 != nil {
			cr.rtp.SetROC(ssrc, roc)
			return nil, err
		}
	}
	delete(cr.unproven, ssrc)
	if len(cr.unproven) == 0 {
		cr.unproven = nil
	}
	return p, nil
}

// Restore anchors a call from a snapshot another unit made: it binds the
// same ports (the address the ports are on must now be this unit's, see
// internal/ha/vip), continues the SRTP contexts and keeps the latched
// remote addresses, so that the peers, which send nothing new, are relayed
// on. No offer is pending; the next one starts a new exchange as usual.
func (r *Relay) Restore(s *CallSnapshot) (Call, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	r.mu.Lock()
	stopping := r.draining || r.closed
	ws := r.workers
	r.mu.Unlock()
	if stopping || len(ws) == 0 {
		return nil, errors.New("media: the relay is draining or closed")
	}
	rc := r.conf.Load()
	if rc == nil {
		return nil, errors.New("media: the relay has no configuration yet")
	}
	c := &call{id: s.ID, relay: r, log: r.log.With("call_id", s.ID), timeout: rc.inactivity,
		wk: ws[int(r.nextW.Add(1))%len(ws)]}
	for i, sd := range s.Sides {
		c.sides[i] = side{spec: Leg{Interface: sd.Interface, Bind: sd.Bind, Advertised: sd.Advertised}, pol: sd.Policy}
	}
	for i, ss := range s.Streams {
		if ss == nil {
			c.streams = append(c.streams, nil)
			continue
		}
		st, err := c.restoreStream(ss)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("media: restoring stream %d of call %s: %w", i, s.ID, err)
		}
		c.streams = append(c.streams, st)
	}
	r.mu.Lock()
	r.calls[c] = struct{}{}
	r.mu.Unlock()
	callsActive.Inc()
	c.log.Info("media: call restored from a snapshot", "streams", len(s.Streams))
	return c, nil
}

// restoreStream binds a stream's recorded ports, publishes its state and
// latches, and only then hands its sockets to the worker.
func (c *call) restoreStream(ss *StreamSnapshot) (*stream, error) {
	st := &stream{id: c.id, relay: c.relay, kind: ss.Kind, known: recordedSSRCs(ss)}
	var state streamState
	for i, ls := range ss.Legs {
		rtp, rtcp, err := c.relay.ports.take(c.sides[i].spec.Bind, ls.Port)
		if err != nil {
			st.release(i)
			return nil, err
		}
		l := &leg{side: Side(i), spec: c.sides[i].spec, pol: c.sides[i].pol, port: ls.Port}
		l.stats.restored.Store(monoNow())
		l.rtp, l.rtcp = newSocket(rtp, ls.Port, st, l, false), newSocket(rtcp, ls.Port+1, st, l, true)
		st.legs[i] = l
		if ls.LatchRTP.IsValid() {
			l.latchRTP.Store(newLatch(ls.LatchRTP))
		}
		if ls.LatchRTCP.IsValid() {
			l.latchRTCP.Store(newLatch(ls.LatchRTCP))
		}
		m := &state.legs[i]
		m.active, m.raw, m.mux, m.noSend = ls.Active, ls.Raw, ls.Mux, ls.NoSend
		m.inRTP, m.codec, m.clock = ls.InRTP, ls.Codec, ls.Clock
		if ls.DstRTP.IsValid() {
			m.dstRTP = newDest(ls.DstRTP)
		}
		if ls.DstRTCP.IsValid() {
			m.dstRTCP = newDest(ls.DstRTCP)
		}
		if ls.In != nil {
			if m.in, err = restoreCrypt(ls.In, false); err == nil {
				m.out, err = restoreCrypt(ls.Out, true)
			}
			if err != nil {
				st.release(i + 1)
				return nil, err
			}
		}
	}
	st.state.Store(&state)
	if err := c.wk.add(st.sockets()...); err != nil {
		c.wk.remove(st.sockets()...)
		for _, l := range st.legs {
			c.relay.ports.release(l.port)
		}
		return nil, err
	}
	// Connect the sockets to their latched peers, as the first packet
	// would have (the kernel then drops media from anywhere else).
	c.wk.wait(func() {
		for _, l := range st.legs {
			for _, s := range []*socket{l.rtp, l.rtcp} {
				p := l.latchRTP.Load()
				if s.isRTCP {
					p = l.latchRTCP.Load()
				}
				if p != nil && s.u.connect(p.d) == nil {
					s.peer = p
				}
			}
		}
	})
	return st, nil
}

// take binds the pair at port on addr for a restored call, wherever it is
// in the range (the range may have changed since the call was set up).
func (p *portAllocator) take(addr netip.Addr, port int) (rtp, rtcp udpSock, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.used[port] {
		return rtp, rtcp, fmt.Errorf("media: port %d is in use by another call", port)
	}
	rtp, rtcp, err = openPair(addr, port)
	if err != nil {
		return rtp, rtcp, fmt.Errorf("media: binding %s port %d: %w", addr, port, err)
	}
	p.used[port] = true
	portsInUse.Add(2)
	return rtp, rtcp, nil
}
