package media

import (
	"errors"
	"math"
	"net/netip"
	"strings"
	"sync/atomic"
)

// MaxStreams is the most media streams (m= lines with a port) one call
// relays. Each costs two port pairs and four sockets; an offer with more is
// refused with 488 rather than letting one call take a slice of the range.
const MaxStreams = 8

// ErrTooManyStreams is wrapped, together with ErrNotAcceptable (488), by the
// error refusing an offer with more than MaxStreams streams.
var ErrTooManyStreams = errors.New("too many media streams")

// stream is one anchored media stream (m= line) of a call: an RTP/RTCP port
// pair on each leg and what the last offer/answer decided for it. It is
// what the packet path sees of a call (socket.call).
type stream struct {
	id    string // the call's id, for logs
	relay *Relay
	legs  [2]*leg
	state atomic.Pointer[streamState]
	kind  string // audio, video, image...; set by signalling under call.mu
	// known are the SSRCs of the record a restored stream came from: its
	// snapshot keeps their counters before they send again (restore.go).
	known []uint32
}

func (st *stream) sockets() []*socket {
	return []*socket{st.legs[0].rtp, st.legs[0].rtcp, st.legs[1].rtp, st.legs[1].rtcp}
}

// newStream takes a port pair on each leg's address and hands the four
// sockets to the call's worker. ErrNoPorts when the range is used up.
func (c *call) newStream() (*stream, error) {
	st := &stream{id: c.id, relay: c.relay}
	for i, sd := range c.sides {
		rtp, rtcp, port, err := c.relay.ports.pair(sd.spec.Bind)
		if err != nil {
			st.release(i)
			return nil, err
		}
		l := &leg{side: Side(i), spec: sd.spec, pol: sd.pol, port: port}
		l.rtp, l.rtcp = newSocket(rtp, port, st, l, false), newSocket(rtcp, port+1, st, l, true)
		st.legs[i] = l
	}
	if err := c.wk.add(st.sockets()...); err != nil {
		c.wk.remove(st.sockets()...)
		for _, l := range st.legs {
			c.relay.ports.release(l.port)
		}
		return nil, err
	}
	return st, nil
}

// release frees the ports of the first n legs of a stream that failed to start.
func (st *stream) release(n int) {
	for _, l := range st.legs[:n] {
		if l == nil {
			continue
		}
		l.rtp.u.close()
		l.rtcp.u.close()
		st.relay.ports.release(l.port)
	}
}

// closeStream stops a stream's sockets and gives its ports back.
func (c *call) closeStream(st *stream) {
	c.wk.remove(st.sockets()...)
	for _, l := range st.legs {
		c.relay.ports.release(l.port)
		relayedPackets.Add(float64(l.stats.pktOut.Load()))
		if l.stats.jitterSet.Load() {
			jitterSeconds.Observe(math.Float64frombits(l.stats.jitter.Load()) / 1000)
		}
	}
}

// retire closes stream i, which the last offer no longer anchors (port 0
// or gone), keeping its counters for the call's statistics. c.mu is held.
func (c *call) retire(i int) {
	st := c.streams[i]
	c.streams[i] = nil
	st.addCounters(&c.retired)
	c.closeStream(st)
	c.log.Debug("media: stream removed", "m_line", i, "kind", st.kind)
}

// ensureStreams gives every m= line the pending offer anchors a stream:
// the one it had, the ports taken at call setup, or new ports.
func (c *call) ensureStreams(p *pending) error {
	for i, pl := range p.lines {
		if pl == nil {
			continue
		}
		for len(c.streams) <= i {
			c.streams = append(c.streams, nil)
		}
		if c.streams[i] != nil {
			continue
		}
		st := c.spare
		c.spare = nil
		if st == nil {
			var err error
			if st, err = c.newStream(); err != nil {
				return err
			}
		}
		st.kind = p.offer.Media[i].Kind
		c.streams[i] = st
	}
	return nil
}

// kindRank orders streams for the call's summary statistics: audio first,
// then T.38 fax, then anything else.
func kindRank(kind string) int {
	switch strings.ToLower(kind) {
	case "audio":
		return 0
	case "image":
		return 1
	}
	return 2
}

// primary is the stream the call's summary (addresses, codec, SRTP suite,
// jitter) describes: the first negotiated audio stream, else T.38, else any
// negotiated stream, else the first anchored one, else the ports taken at
// call setup. c.mu is held.
func (c *call) primary() *stream {
	var best, first *stream
	rank := 3
	for _, st := range c.streams {
		if st == nil {
			continue
		}
		if first == nil {
			first = st
		}
		if s := st.state.Load(); s == nil || !s.legs[0].active {
			continue
		}
		if r := kindRank(st.kind); r < rank {
			best, rank = st, r
		}
	}
	switch {
	case best != nil:
		return best
	case first != nil:
		return first
	}
	return c.spare
}

// stats is the stream's view of both legs.
func (st *stream) stats() CallStats {
	var cs CallStats
	s := st.state.Load()
	for i, l := range st.legs {
		ls := l.counts()
		ls.Local = netip.AddrPortFrom(l.spec.Advertised, uint16(l.port))
		ls.JitterMs = math.Float64frombits(l.stats.jitter.Load())
		if lt := l.latchRTP.Load(); lt != nil {
			ls.Remote = lt.ap
		}
		if s != nil {
			ls2 := s.legs[i]
			if !ls.Remote.IsValid() {
				ls.Remote = ls2.inRTP
			}
			ls.Codec = ls2.codec
			if ls2.in != nil {
				ls.SRTP, ls.Suite = true, ls2.in.c.Suite
			}
		}
		cs.Legs[i] = ls
	}
	return cs
}

// counts are the leg's packet counters.
func (l *leg) counts() LegStats {
	return LegStats{
		PacketsIn:    l.stats.pktIn.Load(),
		PacketsOut:   l.stats.pktOut.Load(),
		BytesIn:      l.stats.bytesIn.Load(),
		BytesOut:     l.stats.bytesOut.Load(),
		Lost:         l.stats.lost.Load(),
		AuthFailures: l.stats.authFail.Load(),
	}
}

// addCounts adds the packet counters of x to d.
func addCounts(d *LegStats, x LegStats) {
	d.PacketsIn += x.PacketsIn
	d.PacketsOut += x.PacketsOut
	d.BytesIn += x.BytesIn
	d.BytesOut += x.BytesOut
	d.Lost += x.Lost
	d.AuthFailures += x.AuthFailures
}

// addCounters adds the stream's packet counters to cs.
func (st *stream) addCounters(cs *CallStats) {
	for i, l := range st.legs {
		addCounts(&cs.Legs[i], l.counts())
	}
}
