package media

import (
	"errors"
	"fmt"
	"net/netip"
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

// anchor picks the stream the relay carries: the first audio stream with a
// port and a transport it can relay, else the first such image (T.38)
// stream, else the first such stream of any kind. The others are disabled
// (port 0).
func anchor(s *sdp.Session) (idx int, raw bool) {
	best, bestRank := -1, 3
	for i, m := range s.Media {
		if m.Port == 0 {
			continue
		}
		ok, r := anchorable(m)
		if !ok {
			continue
		}
		rank := 2
		switch strings.ToLower(m.Kind) {
		case "audio":
			rank = 0
		case "image":
			rank = 1
		}
		if rank < bestRank {
			best, bestRank, raw = i, rank, r
		}
	}
	return best, raw
}

// rewrite points s at leg l: origin and connection addresses, the anchored
// stream's port, profile and RTCP port; other streams disabled.
func rewrite(s *sdp.Session, l *leg, idx int, proto string) {
	s.SetOrigin(l.spec.Advertised)
	s.SetConn(l.spec.Advertised)
	for i, m := range s.Media {
		m.RemoveAttrs(stripped...)
		if i != idx {
			m.SetPort(0)
			continue
		}
		m.SetPort(l.port)
		m.SetProto(proto)
		m.SetRTCP(l.port+1, l.spec.Advertised)
	}
	s.RemoveAttrs(stripped...)
}

func (c *call) offer(from Side, body []byte) ([]byte, error) {
	in, err := sdp.Parse(body)
	if err != nil {
		return nil, badSDP(err)
	}
	x, y := c.legs[from], c.legs[from.Other()]
	p := &pending{from: from, offer: in}
	p.idx, p.raw = anchor(in)
	out := in.Clone()
	if p.idx < 0 {
		// No media to anchor (no m= line, or all disabled): addresses only.
		rewrite(out, y, -1, "")
		c.pend = p
		return out.Marshal(), nil
	}
	m := in.Media[p.idx]
	proto := m.Proto
	ySRTP, yOffer := false, false // y must do SRTP / y is offered SRTP
	if p.raw {
		if !x.pol.allowsRTP() || !y.pol.allowsRTP() {
			return nil, notAcceptable("%s media cannot be encrypted but %s requires SRTP; %s", m.Proto, srtpOnly(x.pol, y.pol).describe(), srtpOnly(x.pol, y.pol).hintSRTP())
		}
	} else {
		keys := c.cryptos(m, x.pol)
		switch {
		case len(keys) > 0 && x.pol.allowsSRTP():
			p.fromKey = &keys[0]
		case secureProto(m.Proto):
			return nil, notAcceptable("%s offered with no usable a=crypto (%s accepts %v)", m.Proto, x.pol.describe(), x.pol.Suites)
		case !x.pol.allowsRTP():
			return nil, notAcceptable("plain RTP offered but %s requires SRTP; %s", x.pol.describe(), x.pol.hintSRTP())
		}
		xSRTP := p.fromKey != nil
		switch y.pol.Requirement {
		case RequireSRTP:
			ySRTP, yOffer = true, true
		case RequireEither:
			if !y.pol.allowsSRTP() {
				break
			}
			if !y.pol.AllowTranscoding {
				ySRTP, yOffer = xSRTP, xSRTP
			} else {
				yOffer = y.pol.Profile != ProfileAVP
				ySRTP = y.pol.Profile == ProfileSAVP
			}
		}
		if !y.pol.AllowTranscoding && !yOffer && xSRTP {
			return nil, notAcceptable("SRTP offered but %s does plain RTP and media.default_policy.allow_transcoding is false", y.pol.describe())
		}
		if !x.pol.AllowTranscoding && ySRTP && !xSRTP {
			return nil, notAcceptable("plain RTP offered but %s requires SRTP and media.default_policy.allow_transcoding is false", y.pol.describe())
		}
		p.mustSRTP = ySRTP
		secure := ySRTP
		if yOffer && y.pol.Requirement == RequireSRTP && y.pol.Profile == ProfileAVP {
			secure = false // RTP/AVP with a=crypto, but the answer must take a key
		}
		proto = withSecurity(m.Proto, secure)
		if yOffer {
			for i, s := range y.pol.Suites {
				k, err := newCrypto(c.relay.rand, i+1, s)
				if err != nil {
					return nil, err
				}
				p.ours = append(p.ours, k)
			}
		}
	}
	rewrite(out, y, p.idx, proto)
	for _, k := range p.ours {
		out.Media[p.idx].AddAttr("crypto:" + k.String())
	}
	c.pend = p
	return out.Marshal(), nil
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
	x, y := c.legs[p.from], c.legs[from] // x offered, y answers
	out := in.Clone()
	if p.idx < 0 {
		rewrite(out, x, -1, "")
		c.install(p, in, nil, nil)
		return out.Marshal(), nil
	}
	if len(in.Media) <= p.idx {
		return nil, fmt.Errorf("%w: answer has %d m= lines, the offer %d", ErrBadSDP, len(in.Media), len(p.offer.Media))
	}
	m := in.Media[p.idx]
	if m.Port == 0 { // the stream was refused: refuse it towards the offerer too
		rewrite(out, x, -1, "")
		c.install(p, in, nil, nil)
		return out.Marshal(), nil
	}
	var yIn, yOut *sdp.Crypto
	if len(p.ours) > 0 {
		for _, k := range c.cryptos(m, y.pol) {
			for i := range p.ours {
				if p.ours[i].Tag == k.Tag && p.ours[i].Suite == k.Suite {
					yIn, yOut = &k, &p.ours[i]
				}
			}
			if yIn != nil {
				break
			}
		}
	}
	switch {
	case yIn == nil && (p.mustSRTP || secureProto(m.Proto)):
		return nil, notAcceptable("the answer on %s has no a=crypto matching our offer; %s", y.pol.describe(), answerHint(y.pol))
	case yIn == nil && p.fromKey != nil && !y.pol.AllowTranscoding:
		return nil, notAcceptable("the answer on %s is plain RTP, the offer SRTP, and media.default_policy.allow_transcoding is false", y.pol.describe())
	}
	proto := p.offer.Media[p.idx].Proto
	rewrite(out, x, p.idx, proto)
	if p.fromKey != nil {
		if p.ansKey == nil {
			k, err := newCrypto(c.relay.rand, p.fromKey.Tag, p.fromKey.Suite)
			if err != nil {
				return nil, err
			}
			p.ansKey = &k
		}
		out.Media[p.idx].AddAttr("crypto:" + p.ansKey.String())
	}
	if err := c.install(p, in, yIn, yOut); err != nil {
		return nil, err
	}
	return out.Marshal(), nil
}

// streamState reads one side's negotiated stream from its SDP.
func streamState(s *sdp.Session, idx int, raw, mux bool) legState {
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

// install publishes the state of a completed offer/answer to the packet path.
// Contexts whose key did not change are kept (their rollover and replay
// state must survive a re-INVITE); latches are reset when the far end's
// address changed.
func (c *call) install(p *pending, ans *sdp.Session, yIn, yOut *sdp.Crypto) error {
	var ns callState
	prev := c.state.Load()
	xs, ys := p.from, p.from.Other()
	if p.idx >= 0 && ans.Media[p.idx].Port != 0 {
		om, am := p.offer.Media[p.idx], ans.Media[p.idx]
		mux := om.Has("rtcp-mux") && am.Has("rtcp-mux")
		ns.legs[xs] = streamState(p.offer, p.idx, p.raw, mux)
		ns.legs[ys] = streamState(ans, p.idx, p.raw, mux)
		codec := codecName(am)
		ns.legs[xs].codec, ns.legs[ys].codec = codec, codec
		if !p.raw {
			clock := clockRate(am)
			ns.legs[xs].clock, ns.legs[ys].clock = clock, clock
		}
		var err error
		set := func(side Side, in, out *sdp.Crypto) {
			if err != nil || in == nil {
				return
			}
			var old *callState = prev
			ls := &ns.legs[side]
			if ls.in, err = reuse(old, side, true, *in); err != nil {
				return
			}
			ls.out, err = reuse(old, side, false, *out)
		}
		set(xs, p.fromKey, p.ansKey)
		set(ys, yIn, yOut)
		if err != nil {
			return err
		}
	}
	for side, l := range c.legs {
		if prev == nil || prev.legs[side].inRTP != ns.legs[side].inRTP || !ns.legs[side].active {
			c.unlatch(l)
		}
	}
	c.state.Store(&ns)
	// c.pend stays: a repeated answer to the same offer (183, then 200) is
	// answered with the same keys. The next Offer replaces it.
	return nil
}

func reuse(prev *callState, side Side, in bool, k sdp.Crypto) (*crypt, error) {
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
