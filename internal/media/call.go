package media

import (
	"log/slog"
	"math"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/palisade-sbc/palisade/internal/media/sdp"
)

// String names the side in logs.
func (s Side) String() string {
	if s == SideA {
		return "a"
	}
	return "b"
}

// leg is one side of an anchored call: its sockets and counters. Its
// negotiated state lives in callState.
type leg struct {
	side      Side
	spec      Leg // Bind and Advertised resolved
	pol       Policy
	port      int // RTP port; RTCP is port+1
	rtp, rtcp *socket

	latchRTP, latchRTCP atomic.Pointer[latch]
	stats               legCounters
}

// legState is what the last completed offer/answer decided for a leg. It is
// immutable once published; signalling publishes a new callState.
type legState struct {
	active  bool // a stream is anchored and negotiated
	raw     bool // not RTP (T.38 UDPTL): relayed as is
	mux     bool // rtcp-mux
	noSend  bool // the far end asked for no media (c=0.0.0.0 or inactive)
	inRTP   netip.AddrPort
	dstRTP  *dest // from SDP, until a packet is latched
	dstRTCP *dest
	in, out *crypt // nil = plain RTP
	codec   string
	clock   uint32 // RTP clock rate of the negotiated payload (Hz), for jitter
}

type callState struct {
	legs [2]legState
}

func (s *legState) rtpDest(l *leg) *dest {
	if s.noSend {
		return nil
	}
	if lt := l.latchRTP.Load(); lt != nil {
		return lt.d
	}
	return s.dstRTP
}

func (s *legState) rtcpDest(l *leg) *dest {
	if s.noSend {
		return nil
	}
	if lt := l.latchRTCP.Load(); lt != nil {
		return lt.d
	}
	return s.dstRTCP
}

// call implements Call.
type call struct {
	id    string
	relay *Relay
	log   *slog.Logger
	legs  [2]*leg
	state atomic.Pointer[callState]
	wk    *worker // serves all four sockets of the call

	mu       sync.Mutex // signalling: Offer, Answer, Close, OnInactive
	pend     *pending
	closed   bool
	inactive func()
	timer    *time.Timer
	timeout  time.Duration
	lastPk   uint64
	lastSeen time.Time
	fired    bool
}

func (c *call) Offer(from Side, body []byte) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errClosed
	}
	out, err := c.offer(from, body)
	return out, c.countErr(err)
}

func (c *call) Answer(from Side, body []byte) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errClosed
	}
	out, err := c.answer(from, body)
	return out, c.countErr(err)
}

func (c *call) countErr(err error) error {
	switch {
	case err == nil:
	case isErr(err, ErrBadSDP):
		negotiationErrors.WithLabelValues("bad_sdp").Inc()
		c.relay.badTraffic.Warn("sdp:"+c.id, "media: SDP refused", "call_id", c.id, "err", err)
	case isErr(err, ErrNotAcceptable):
		negotiationErrors.WithLabelValues("not_acceptable").Inc()
		c.log.Info("media: offer/answer cannot meet the media policy", "err", err)
	}
	return err
}

// OnInactive sets the function called once when no media arrived on either
// leg for media.inactivity_timeout (0 switches the check off).
func (c *call) OnInactive(fn func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inactive = fn
	if c.timer == nil && c.timeout > 0 && !c.closed {
		c.lastSeen = time.Now()
		c.timer = time.AfterFunc(c.timeout/4, c.checkInactive)
	}
}

// checkInactive runs a few times per timeout. It watches the packet counters,
// so the packet path pays nothing for it. A call before its first answer, or
// on hold (inactive, or c=0.0.0.0 on a leg), is not timed out.
func (c *call) checkInactive() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.fired {
		return
	}
	now := time.Now()
	pk := c.legs[0].stats.pktIn.Load() + c.legs[1].stats.pktIn.Load()
	st := c.state.Load()
	// The clock runs only while media is negotiated and not on hold: a call
	// still ringing (no answer yet) or held is not inactive.
	waiting := st == nil || !st.legs[0].active || st.legs[0].noSend || st.legs[1].noSend
	if pk != c.lastPk || waiting {
		c.lastPk, c.lastSeen = pk, now
	}
	if now.Sub(c.lastSeen) >= c.timeout {
		c.fired = true
		inactivityTimeouts.Inc()
		c.log.Info("media: no media for the inactivity timeout; ending the call", "timeout", c.timeout)
		if fn := c.inactive; fn != nil {
			go fn() // the SIP layer sends BYE on both legs; it may call Close
		}
		return
	}
	c.timer.Reset(c.timeout / 4)
}

func (c *call) Stats() CallStats {
	var cs CallStats
	st := c.state.Load()
	for i, l := range c.legs {
		ls := LegStats{
			Local:        netip.AddrPortFrom(l.spec.Advertised, uint16(l.port)),
			PacketsIn:    l.stats.pktIn.Load(),
			PacketsOut:   l.stats.pktOut.Load(),
			BytesIn:      l.stats.bytesIn.Load(),
			BytesOut:     l.stats.bytesOut.Load(),
			Lost:         l.stats.lost.Load(),
			AuthFailures: l.stats.authFail.Load(),
			JitterMs:     math.Float64frombits(l.stats.jitter.Load()),
		}
		if lt := l.latchRTP.Load(); lt != nil {
			ls.Remote = lt.ap
		}
		if st != nil {
			s := st.legs[i]
			if !ls.Remote.IsValid() {
				ls.Remote = s.inRTP
			}
			ls.Codec = s.codec
			if s.in != nil {
				ls.SRTP, ls.Suite = true, s.in.c.Suite
			}
		}
		cs.Legs[i] = ls
	}
	return cs
}

// Close releases the call's ports and stops its readers. It is safe to call
// more than once and from any end path (BYE, CANCEL, failure, timeout).
func (c *call) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	if c.timer != nil {
		c.timer.Stop()
	}
	c.mu.Unlock()
	c.wk.remove(c.sockets()...)
	for _, l := range c.legs {
		c.relay.ports.release(l.port)
		relayedPackets.Add(float64(l.stats.pktOut.Load()))
		if l.stats.jitterSet.Load() {
			jitterSeconds.Observe(math.Float64frombits(l.stats.jitter.Load()) / 1000)
		}
	}
	c.relay.forget(c)
	c.log.Debug("media: call closed")
}

// pending is an offer waiting for its answer.
type pending struct {
	from     Side
	offer    *sdp.Session // as received
	idx      int          // the anchored m= line, -1 when none
	raw      bool
	fromKey  *sdp.Crypto  // the offerer's key we accepted (nil: plain)
	ours     []sdp.Crypto // keys we offered on the other leg
	mustSRTP bool         // the other leg must answer with SRTP
	ansKey   *sdp.Crypto  // key we gave the offerer (kept for a repeated answer)
}

// stream is one anchored media stream (m= line) of a call: what the packet
// path sees of a call.
type stream = call
