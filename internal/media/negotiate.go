package media

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/palisade-sbc/palisade/internal/media/sdp"
)

var errClosed = errors.New("media: call is closed")

func isErr(err, target error) bool { return errors.Is(err, target) }

func badSDP(err error) error { return fmt.Errorf("%w: %v", ErrBadSDP, err) }

func notAcceptable(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrNotAcceptable, fmt.Sprintf(format, args...))
}

// srtpOnly returns the one of two policies that requires SRTP (the first if both do).
func srtpOnly(x, y Policy) Policy {
	if !x.allowsRTP() {
		return x
	}
	return y
}

// answerHint says what lets a plain answer through on the answerer's leg.
func answerHint(p Policy) string {
	if p.Requirement == RequireSRTP {
		return p.hintSRTP()
	}
	return "the offer was SRTP and media.default_policy.allow_transcoding is false; set it to true to let this leg do plain RTP"
}

// stripped are attributes we never pass on: ICE and DTLS belong to the far
// end's transport, which the relay terminates, and they carry its addresses.
var stripped = []string{"crypto", "candidate", "remote-candidates", "end-of-candidates",
	"ice-ufrag", "ice-pwd", "ice-options", "ice-lite", "ice-mismatch", "fingerprint", "setup"}

// anchorable reports whether a stream's transport can be relayed.
func anchorable(m *sdp.Media) (ok, raw bool) {
	switch strings.ToUpper(m.Proto) {
	case "RTP/AVP", "RTP/AVPF", "RTP/SAVP", "RTP/SAVPF":
		return true, false
	case "UDPTL", "UDP":
		return true, true
	}
	return false, false
}

func secureProto(p string) bool { return strings.Contains(strings.ToUpper(p), "SAVP") }

// withSecurity turns RTP/AVP(F) into RTP/SAVP(F) or back.
func withSecurity(p string, secure bool) string {
	feedback := strings.HasSuffix(strings.ToUpper(p), "F")
	out := "RTP/AVP"
	if secure {
		out = "RTP/SAVP"
	}
	if feedback {
		out += "F"
	}
	return out
}

// cryptos returns the a=crypto lines of m that parse and name a suite the
// policy accepts, in the sender's order. Bad and unknown lines are skipped.
func (c *call) cryptos(m *sdp.Media, pol Policy) []sdp.Crypto {
	lines := m.Attrs("crypto")
	tags := map[string]int{}
	for _, v := range lines {
		if f := strings.Fields(v); len(f) > 0 {
			tags[f[0]]++
		}
	}
	var out []sdp.Crypto
	for _, v := range lines {
		if f := strings.Fields(v); len(f) > 0 && tags[f[0]] > 1 {
			// A tag must name one line (RFC 4568 §4): an answer could not
			// say which one it took, so every line with that tag is skipped.
			c.relay.badTraffic.Warn("crypto:"+c.id, "media: a=crypto with a duplicate tag skipped", "call_id", c.id, "tag", f[0])
			continue
		}
		k, err := sdp.ParseCrypto(v)
		if err != nil {
			c.relay.badTraffic.Warn("crypto:"+c.id, "media: a=crypto line skipped", "call_id", c.id, "err", err)
			continue
		}
		if pol.accepts(k.Suite) {
			out = append(out, k)
		}
	}
	return out
}

// anchored reports whether the relay carries m= line m: a port other than
// 0 and a transport it can relay. Other lines go out with port 0 (declined).
func anchored(m *sdp.Media) (ok, raw bool) {
	if m.Port == 0 {
		return false, false
	}
	return anchorable(m)
}

// lineOut is what rewrite puts on one m= line: our port on the leg (0:
// declined), the profile, and our a=crypto lines.
type lineOut struct {
	port  int
	proto string
	keys  []sdp.Crypto
}

// rewrite points s at our address on a leg: origin and connection
// addresses, and per m= line the port, profile, RTCP port and keys of
// lines[i]; a line without a port in lines is declined (port 0) and keeps
// its position (RFC 3264 §6, §8).
func rewrite(s *sdp.Session, addr netip.Addr, lines []lineOut) {
	s.SetOrigin(addr)
	s.SetConn(addr)
	for i, m := range s.Media {
		m.RemoveAttrs(stripped...)
		if i >= len(lines) || lines[i].port == 0 {
			m.SetPort(0)
			continue
		}
		l := lines[i]
		m.SetPort(l.port)
		m.SetProto(l.proto)
		m.SetRTCP(l.port+1, addr)
		for _, k := range l.keys {
			m.AddAttr("crypto:" + k.String())
		}
	}
	s.RemoveAttrs(stripped...)
}

// offer relays an offer of side from to the other side. keep (a re-offer
// within the same dialogs, Reoffer) offers the other side the key we send
// it with already, where the suite is the same, so that a re-INVITE does
// not change keys (a peer that switches to a new key late loses audio).
func (c *call) offer(from Side, body []byte, keep bool) ([]byte, error) {
	in, err := sdp.Parse(body)
	if err != nil {
		return nil, badSDP(err)
	}
	n := 0
	for _, m := range in.Media {
		if ok, _ := anchored(m); ok {
			n++
		}
	}
	if n > MaxStreams {
		return nil, fmt.Errorf("%w: %w: the SDP has %d media streams; at most %d per call are relayed", ErrNotAcceptable, ErrTooManyStreams, n, MaxStreams)
	}
	p := &pending{from: from, offer: in, lines: make([]*pendLine, len(in.Media))}
	var refused declined
	for i, m := range in.Media {
		ok, raw := anchored(m)
		if !ok {
			continue
		}
		pl, err := c.offerLine(from, i, m, raw, keep)
		if err != nil {
			refused.add(i, m.Kind, err)
			continue
		}
		p.lines[i] = pl
	}
	if err := refused.check(c, slices.ContainsFunc(p.lines, func(pl *pendLine) bool { return pl != nil })); err != nil {
		return nil, err
	}
	if err := c.ensureStreams(p); err != nil {
		return nil, err
	}
	y := from.Other()
	lines := make([]lineOut, len(in.Media))
	for i, pl := range p.lines {
		if pl != nil {
			lines[i] = lineOut{port: c.streams[i].legs[y].port, proto: pl.proto, keys: pl.ours}
		}
	}
	out := in.Clone()
	rewrite(out, c.sides[y].spec.Advertised, lines)
	c.pend = p
	return out.Marshal(), nil
}

// offerLine applies the policies of both legs to one offered stream: which
// key of the offerer we take, and what we offer on the other leg.
func (c *call) offerLine(from Side, i int, m *sdp.Media, raw, keep bool) (*pendLine, error) {
	x, y := c.sides[from].pol, c.sides[from.Other()].pol
	pl := &pendLine{raw: raw, proto: m.Proto}
	if raw {
		if !x.allowsRTP() || !y.allowsRTP() {
			return nil, notAcceptable("%s media cannot be encrypted but %s requires SRTP; %s", m.Proto, srtpOnly(x, y).describe(), srtpOnly(x, y).hintSRTP())
		}
		return pl, nil
	}
	keys := c.cryptos(m, x)
	switch {
	case len(keys) > 0 && x.allowsSRTP():
		pl.fromKey = &keys[0]
	case secureProto(m.Proto):
		return nil, notAcceptable("%s offered with no usable a=crypto (%s accepts %v)", m.Proto, x.describe(), x.Suites)
	case !x.allowsRTP():
		return nil, notAcceptable("plain RTP offered but %s requires SRTP; %s", x.describe(), x.hintSRTP())
	}
	xSRTP := pl.fromKey != nil
	ySRTP, yOffer := false, false // y must do SRTP / y is offered SRTP
	switch y.Requirement {
	case RequireSRTP:
		ySRTP, yOffer = true, true
	case RequireEither:
		if !y.allowsSRTP() {
			break
		}
		if !y.AllowTranscoding {
			ySRTP, yOffer = xSRTP, xSRTP
		} else {
			yOffer = y.Profile != ProfileAVP
			ySRTP = y.Profile == ProfileSAVP
		}
	}
	if !y.AllowTranscoding && !yOffer && xSRTP {
		return nil, notAcceptable("SRTP offered but %s does plain RTP and media.default_policy.allow_transcoding is false", y.describe())
	}
	if !x.AllowTranscoding && ySRTP && !xSRTP {
		return nil, notAcceptable("plain RTP offered but %s requires SRTP and media.default_policy.allow_transcoding is false", y.describe())
	}
	pl.mustSRTP = ySRTP
	secure := ySRTP
	if yOffer && y.Requirement == RequireSRTP && y.Profile == ProfileAVP {
		secure = false // RTP/AVP with a=crypto, but the answer must take a key
	}
	pl.proto = withSecurity(m.Proto, secure)
	if yOffer {
		for j, s := range y.Suites {
			k, ok := c.keptOfferKey(i, from.Other(), s, keep)
			if ok {
				k.Tag = j + 1
			} else {
				var err error
				if k, err = newCrypto(c.relay.rand, j+1, s); err != nil {
					return nil, err
				}
			}
			pl.ours = append(pl.ours, k)
		}
	}
	return pl, nil
}

// declined collects the streams of an offer or answer that cannot meet the
// media policy. Policy applies per stream: such a stream is declined (port
// 0) and the call goes on with the others; only when none is left is the
// whole offer or answer refused (488).
type declined struct {
	first error
	lines []string
}

func (d *declined) add(i int, kind string, err error) {
	if d.first == nil {
		d.first = err
	}
	d.lines = append(d.lines, fmt.Sprintf("m= line %d (%s): %v", i, kind, err))
}

// check returns the error to refuse with when no stream is left, else logs
// the streams declined.
func (d *declined) check(c *call, othersLeft bool) error {
	if d.first == nil {
		return nil
	}
	if !othersLeft {
		return d.first
	}
	c.log.Info("media: streams declined, they cannot meet the media policy", "streams", d.lines)
	return nil
}

// lineAnswer is what the answer decided for one anchored stream.
type lineAnswer struct {
	ok        bool        // the answerer took the stream
	yIn, yOut *sdp.Crypto // the answerer's key and ours on its leg (nil: plain)
}

func (c *call) answer(from Side, body []byte) ([]byte, error) {
	p := c.pend
	if p == nil || p.from != from.Other() {
		return nil, fmt.Errorf("%w: answer from side %s without an offer from the other side", ErrBadSDP, from)
	}
	in, err := sdp.Parse(body)
	if err != nil {
		return nil, badSDP(err)
	}
	x := p.from // the offerer; from answers
	res := make([]lineAnswer, len(p.lines))
	lines := make([]lineOut, len(in.Media))
	var refused declined
	taken := 0
	for i, pl := range p.lines {
		if pl == nil {
			continue
		}
		if i >= len(in.Media) {
			return nil, fmt.Errorf("%w: answer has %d m= lines, the offer %d", ErrBadSDP, len(in.Media), len(p.offer.Media))
		}
		m := in.Media[i]
		if m.Port == 0 { // the stream was refused: refuse it towards the offerer too
			continue
		}
		a, err := c.answerLine(pl, m, from)
		if err != nil {
			refused.add(i, m.Kind, err)
			continue
		}
		var keys []sdp.Crypto
		if pl.fromKey != nil {
			if pl.ansKey == nil {
				k, ok := c.keptKey(i, x, *pl.fromKey)
				if !ok {
					if k, err = newCrypto(c.relay.rand, pl.fromKey.Tag, pl.fromKey.Suite); err != nil {
						return nil, err
					}
				}
				pl.ansKey = &k
			}
			keys = []sdp.Crypto{*pl.ansKey}
		}
		res[i] = a
		lines[i] = lineOut{port: c.streams[i].legs[x].port, proto: p.offer.Media[i].Proto, keys: keys}
		taken++
	}
	if err := refused.check(c, taken > 0); err != nil {
		return nil, err
	}
	out := in.Clone()
	rewrite(out, c.sides[x].spec.Advertised, lines)
	if err := c.install(p, in, res); err != nil {
		return nil, err
	}
	return out.Marshal(), nil
}

// keptKey is our current sending key towards side x on stream i, under the
// tag of from, when x re-offers the very key it already uses towards us:
// x keeps its SRTP session, so we keep ours (RFC 4568 §7.1.4 lets either
// side keep its key). Offer conversion depends on it: the peer's answer,
// given again as its offer, must not change the key the peer was already
// told. A new key from x gets a new key back.
func (c *call) keptKey(i int, x Side, from sdp.Crypto) (sdp.Crypto, bool) {
	if i >= len(c.streams) || c.streams[i] == nil {
		return sdp.Crypto{}, false
	}
	cur := c.streams[i].state.Load()
	if cur == nil || !cur.legs[x].in.sameKey(from) || cur.legs[x].out == nil || cur.legs[x].out.c.Suite != from.Suite {
		return sdp.Crypto{}, false
	}
	k := cur.legs[x].out.c
	k.Tag = from.Tag
	return k, true
}

// keptOfferKey is the key of suite s that stream i sends to side y with
// now, for a re-offer that keeps it (keep).
func (c *call) keptOfferKey(i int, y Side, s string, keep bool) (sdp.Crypto, bool) {
	if !keep || i >= len(c.streams) || c.streams[i] == nil {
		return sdp.Crypto{}, false
	}
	cur := c.streams[i].state.Load()
	if cur == nil || cur.legs[y].out == nil || cur.legs[y].out.c.Suite != s {
		return sdp.Crypto{}, false
	}
	return cur.legs[y].out.c, true
}

// answerLine checks one answered stream against the answerer's policy and
// finds the key it took of ours.
func (c *call) answerLine(pl *pendLine, m *sdp.Media, from Side) (lineAnswer, error) {
	pol := c.sides[from].pol
	a := lineAnswer{ok: true}
	if len(pl.ours) > 0 {
		for _, k := range c.cryptos(m, pol) {
			for i := range pl.ours {
				if pl.ours[i].Tag == k.Tag && pl.ours[i].Suite == k.Suite {
					a.yIn, a.yOut = &k, &pl.ours[i]
				}
			}
			if a.yIn != nil {
				break
			}
		}
	}
	switch {
	case pl.raw:
	case a.yIn == nil && (pl.mustSRTP || secureProto(m.Proto)):
		return a, notAcceptable("the answer on %s has no a=crypto matching our offer; %s", pol.describe(), answerHint(pol))
	case a.yIn == nil && pl.fromKey != nil && !pol.AllowTranscoding:
		return a, notAcceptable("the answer on %s is plain RTP, the offer SRTP, and media.default_policy.allow_transcoding is false", pol.describe())
	}
	return a, nil
}

// sideState reads one side's negotiated stream from its SDP.
func sideState(s *sdp.Session, idx int, raw, mux bool) legState {
	m := s.Media[idx]
	st := legState{active: true, raw: raw, mux: mux}
	addr, ok := s.MediaConn(m)
	dir := m.Direction(s)
	if !ok || addr.IsUnspecified() || dir == "inactive" || m.Port == 0 {
		st.noSend = true
	}
	if ok && !addr.IsUnspecified() {
		st.inRTP = netip.AddrPortFrom(addr, uint16(m.Port))
		st.dstRTP = newDest(st.inRTP)
		rtcp := netip.AddrPortFrom(addr, uint16(m.Port+1))
		if r, ok := m.RTCPAttr(); ok {
			a := addr
			if r.Addr.IsValid() {
				a = r.Addr
			}
			rtcp = netip.AddrPortFrom(a, uint16(r.Port))
		}
		st.dstRTCP = newDest(rtcp)
	}
	return st
}

// install publishes the state of a completed offer/answer to the packet
// path, stream by stream. Streams the offer no longer anchors are closed.
// Contexts whose key did not change are kept (their rollover and replay
// state must survive a re-INVITE); latches are reset when the far end's
// address changed.
func (c *call) install(p *pending, ans *sdp.Session, res []lineAnswer) error {
	// Build every stream's state first: a key that cannot be installed
	// leaves the call as it was.
	next := make([]*streamState, len(c.streams))
	for i, st := range c.streams {
		if st == nil || i >= len(p.lines) || p.lines[i] == nil {
			continue
		}
		ns, err := lineState(p, ans, i, res[i], st.state.Load())
		if err != nil {
			return err
		}
		next[i] = ns
	}
	for i, st := range c.streams {
		if st == nil {
			continue
		}
		if next[i] == nil {
			c.retire(i)
			continue
		}
		prev, ns := st.state.Load(), next[i]
		for side, l := range st.legs {
			if prev == nil || prev.legs[side].inRTP != ns.legs[side].inRTP || !ns.legs[side].active {
				c.unlatch(l)
			}
		}
		st.kind = p.offer.Media[i].Kind
		st.state.Store(ns)
	}
	// c.pend stays: a repeated answer to the same offer (183, then 200) is
	// answered with the same keys. The next Offer replaces it.
	return nil
}

// lineState is the state of stream i after the answer; an inactive state
// when the answerer declined it.
func lineState(p *pending, ans *sdp.Session, i int, a lineAnswer, prev *streamState) (*streamState, error) {
	ns := &streamState{}
	if !a.ok {
		return ns, nil
	}
	pl := p.lines[i]
	xs, ys := p.from, p.from.Other()
	om, am := p.offer.Media[i], ans.Media[i]
	mux := om.Has("rtcp-mux") && am.Has("rtcp-mux")
	ns.legs[xs] = sideState(p.offer, i, pl.raw, mux)
	ns.legs[ys] = sideState(ans, i, pl.raw, mux)
	codec := codecName(am)
	ns.legs[xs].codec, ns.legs[ys].codec = codec, codec
	if !pl.raw {
		clock := clockRate(am)
		ns.legs[xs].clock, ns.legs[ys].clock = clock, clock
	}
	set := func(side Side, in, out *sdp.Crypto) error {
		if in == nil {
			return nil
		}
		var err error
		ls := &ns.legs[side]
		if ls.in, err = reuse(prev, side, true, *in); err != nil {
			return err
		}
		ls.out, err = reuse(prev, side, false, *out)
		return err
	}
	if err := set(xs, pl.fromKey, pl.ansKey); err != nil {
		return nil, err
	}
	if err := set(ys, a.yIn, a.yOut); err != nil {
		return nil, err
	}
	return ns, nil
}

func reuse(prev *streamState, side Side, in bool, k sdp.Crypto) (*crypt, error) {
	if prev != nil {
		old := prev.legs[side].out
		if in {
			old = prev.legs[side].in
		}
		if old.sameKey(k) {
			return old, nil
		}
	}
	return newCrypt(k)
}

var staticCodecs = map[string]string{"0": "PCMU/8000", "3": "GSM/8000", "4": "G723/8000",
	"8": "PCMA/8000", "9": "G722/8000", "13": "CN/8000", "18": "G729/8000"}

func codecName(m *sdp.Media) string {
	if len(m.Fmts) == 0 {
		return ""
	}
	if n := m.RTPMap(m.Fmts[0]); n != "" {
		return n
	}
	if n, ok := staticCodecs[m.Fmts[0]]; ok {
		return n
	}
	return m.Kind + "/" + m.Fmts[0]
}
