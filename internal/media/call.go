package media

import (
	"log/slog"
	"net/netip"
	"slices"
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

// leg is one side of an anchored stream: its sockets and counters. Its
// negotiated state lives in streamState.
type leg struct {
	side      Side
	spec      Leg // Bind and Advertised resolved
	pol       Policy
	port      int // RTP port; RTCP is port+1
	rtp, rtcp *socket

	latchRTP, latchRTCP atomic.Pointer[latch]
	stats               legCounters
}

// legState is what the last completed offer/answer decided for one leg of
// a stream. It is immutable once published; signalling publishes a new
// streamState.
type legState struct {
	active  bool // the stream is anchored and negotiated
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

type streamState struct {
	legs [2]legState
}

// flowing reports whether media is negotiated and neither leg is on hold.
func (s *streamState) flowing() bool {
	return s != nil && s.legs[0].active && !s.legs[0].noSend && !s.legs[1].noSend
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

// side is what a call knows of one leg before any stream: where it binds
// and which policy it gets.
type side struct {
	spec Leg
	pol  Policy
}

// call implements Call. Each m= line it anchors is a stream with its own
// ports and SRTP contexts; streams are indexed by m= line position, which
// RFC 3264 keeps fixed for the life of the session.
type call struct {
	id    string
	relay *Relay
	log   *slog.Logger
	sides [2]side
	wk    *worker // serves the sockets of all the call's streams

	mu      sync.Mutex // signalling: Offer, Answer, Close, OnInactive, Stats
	streams []*stream  // by m= line; nil where the line is not anchored
	spare   *stream    // ports taken at call setup, not yet given to an m= line
	retired CallStats  // counters of streams a re-offer removed
	pend    *pending
	closed  bool

	inactive func()
	timer    *time.Timer
	timeout  time.Duration
	lastPk   uint64
	lastSeen time.Time
	fired    bool
}

func (c *call) Offer(from Side, body []byte) ([]byte, error) { return c.lockedOffer(from, body, false) }

// Reoffer is Offer for a re-offer within the call's dialogs: the other side
// keeps the SRTP key we send it with (see offer).
func (c *call) Reoffer(from Side, body []byte) ([]byte, error) {
	return c.lockedOffer(from, body, true)
}

func (c *call) lockedOffer(from Side, body []byte, keep bool) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errClosed
	}
	out, err := c.offer(from, body, keep)
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
	case isErr(err, ErrTooManyStreams): // hostile or broken input: bounded log
		negotiationErrors.WithLabelValues("not_acceptable").Inc()
		c.relay.badTraffic.Warn("sdp:"+c.id, "media: SDP refused", "call_id", c.id, "err", err)
	case isErr(err, ErrNotAcceptable):
		negotiationErrors.WithLabelValues("not_acceptable").Inc()
		c.log.Info("media: offer/answer cannot meet the media policy", "err", err)
	}
	return err
}

// OnInactive sets the function called once when no media arrived on any
// stream of the call for media.inactivity_timeout (0 switches the check off).
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
// with every stream on hold (inactive, or c=0.0.0.0 on a leg), is not timed
// out.
func (c *call) checkInactive() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.fired {
		return
	}
	now := time.Now()
	pk := c.retired.Legs[0].PacketsIn + c.retired.Legs[1].PacketsIn
	waiting := true
	for _, st := range c.streams {
		if st == nil {
			continue
		}
		pk += st.legs[0].stats.pktIn.Load() + st.legs[1].stats.pktIn.Load()
		if st.state.Load().flowing() {
			waiting = false
		}
	}
	// The clock runs only while media is negotiated and not on hold: a call
	// still ringing (no answer yet) or held is not inactive.
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

// Stats sums the counters of every stream the call had on each leg; the
// addresses, codec, SRTP suite and jitter are those of its main stream
// (the first audio stream, see primary).
func (c *call) Stats() CallStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	cs := c.retired
	main := c.primary()
	for _, st := range c.streams {
		if st != nil && st != main {
			st.addCounters(&cs)
		}
	}
	if main == nil {
		return cs
	}
	ms := main.stats()
	for i := range ms.Legs {
		addCounts(&ms.Legs[i], cs.Legs[i])
	}
	return ms
}

// Close releases the ports of every stream and stops their readers. It is
// safe to call more than once and from any end path (BYE, CANCEL, failure,
// timeout).
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
	// The streams stay in place (closed) so that Stats still reads their
	// counters after the end, for the call record.
	streams := slices.Clone(c.streams)
	if c.spare != nil {
		streams = append(streams, c.spare)
	}
	c.mu.Unlock()
	for _, st := range streams {
		if st != nil {
			c.closeStream(st)
		}
	}
	c.relay.forget(c)
	c.log.Debug("media: call closed")
}

// pending is an offer waiting for its answer.
type pending struct {
	from  Side
	offer *sdp.Session // as received
	lines []*pendLine  // by m= line; nil where the line is not anchored
}

// pendLine is the negotiation of one anchored m= line.
type pendLine struct {
	raw      bool
	proto    string       // profile offered on the other leg
	fromKey  *sdp.Crypto  // the offerer's key we accepted (nil: plain)
	ours     []sdp.Crypto // keys we offered on the other leg
	mustSRTP bool         // the other leg must answer with SRTP
	ansKey   *sdp.Crypto  // key we gave the offerer (kept for a repeated answer)
}
