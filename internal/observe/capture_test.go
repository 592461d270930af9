package observe

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestCaptureLadder: a capture gives its messages in time order, and an
// exchange the unit started (first message sent) is drawn with the unit on
// the left and the far end on the right, without an empty caller side.
func TestCaptureLadder(t *testing.T) {
	var c Capture
	local, far := netip.MustParseAddrPort("127.0.0.2:5060"), netip.MustParseAddrPort("192.0.2.7:5070")
	t0 := time.Now()
	c.TraceSIP(SIPMessage{Leg: "outside", Dir: Received, Transport: "udp", Local: local, Remote: far, Time: t0.Add(time.Millisecond),
		Raw: []byte("SIP/2.0 200 OK\r\nCall-ID: x1\r\nCSeq: 1 OPTIONS\r\n\r\n")})
	c.TraceSIP(SIPMessage{Leg: "outside", Dir: Sent, Transport: "udp", Local: local, Remote: far, Time: t0,
		Raw: []byte("OPTIONS sip:192.0.2.7:5070 SIP/2.0\r\nCall-ID: x1\r\nCSeq: 1 OPTIONS\r\n\r\n")})
	msgs := c.Messages()
	if len(msgs) != 2 || msgs[0].Label != "OPTIONS" || msgs[1].Label != "200 OK" || msgs[0].Direction != "out" {
		t.Fatalf("%+v", msgs)
	}
	l := layout(msgs, func(a netip.AddrPort) string {
		if a == far {
			return "lab"
		}
		return ""
	})
	var titles []string
	for _, ln := range l.lanes {
		titles = append(titles, ln.title)
	}
	if got := strings.Join(titles, ","); got != "Palisade,outside,lab" {
		t.Errorf("lanes %s", got)
	}
}
