package sdp

import (
	"fmt"
	"net/netip"
	"strings"
)

// offerCodec is how a codec of config peers[].trunk.offer.codecs appears
// in an offer the unit makes.
type offerCodec struct {
	pt     int
	rtpmap string
	fmtp   string
}

// offerCodecs are the codecs the unit can put in an offer of its own:
// static payload types where RFC 3551 has them, fixed dynamic ones
// otherwise.
var offerCodecs = map[string]offerCodec{
	"PCMU":            {0, "PCMU/8000", ""},
	"PCMA":            {8, "PCMA/8000", ""},
	"G722":            {9, "G722/8000", ""},
	"G729":            {18, "G729/8000", "annexb=no"},
	"opus":            {111, "opus/48000/2", "useinbandfec=1"},
	"telephone-event": {101, "telephone-event/8000", "0-16"},
}

// NewOffer builds the SDP offer the unit makes for an INVITE that came
// without one (a delayed offer towards a peer that requires an offer):
// one audio stream at addr:port, plain RTP/AVP with codecs in preference
// order, 20 ms packets. The media relay takes it as the offer of the leg
// that sent no SDP and turns it into the offer for the other leg
// (anchored, SRTP per that leg's policy); the leg's real address comes
// with its answer. An unknown codec name is an error.
func NewOffer(addr netip.Addr, port int, codecs []string, sessionID uint64) ([]byte, error) {
	if len(codecs) == 0 {
		return nil, fmt.Errorf("sdp: an offer needs at least one codec")
	}
	var pts []string
	var attrs strings.Builder
	audio := false
	for _, name := range codecs {
		c, ok := offerCodecs[name]
		if !ok {
			return nil, fmt.Errorf("sdp: unknown codec %q", name)
		}
		audio = audio || name != "telephone-event"
		pts = append(pts, fmt.Sprint(c.pt))
		fmt.Fprintf(&attrs, "a=rtpmap:%d %s\r\n", c.pt, c.rtpmap)
		if c.fmtp != "" {
			fmt.Fprintf(&attrs, "a=fmtp:%d %s\r\n", c.pt, c.fmtp)
		}
	}
	if !audio {
		return nil, fmt.Errorf("sdp: an offer needs an audio codec besides telephone-event")
	}
	c := ConnLine(addr)
	var b strings.Builder
	fmt.Fprintf(&b, "v=0\r\no=palisade %d 1 %s\r\ns=-\r\n%s\r\nt=0 0\r\n", sessionID, c[2:], c)
	fmt.Fprintf(&b, "m=audio %d RTP/AVP %s\r\n", port, strings.Join(pts, " "))
	b.WriteString(attrs.String())
	b.WriteString("a=ptime:20\r\na=sendrecv\r\n")
	return []byte(b.String()), nil
}
