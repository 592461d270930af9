package observe

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// The addresses of the test call: PBX | inside | Palisade | outside | trunk.
var (
	pbxAddr     = netip.MustParseAddrPort("10.0.0.10:5060")
	insideAddr  = netip.MustParseAddrPort("10.0.0.1:5060")
	outsideAddr = netip.MustParseAddrPort("192.0.2.1:5061")
	trunkAddr   = netip.MustParseAddrPort("203.0.113.5:5061")
)

type step struct {
	leg   string
	dir   Direction
	start string // start line
	cseq  string
	body  string
}

// sipText builds a SIP message good enough for tshark.
func sipText(s step, callID string, local, remote netip.AddrPort, from, to string) string {
	src := local
	if s.dir == Received {
		src = remote
	}
	transport := "UDP"
	if s.leg == "outside" {
		transport = "TLS"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s\r\n", s.start)
	fmt.Fprintf(&b, "Via: SIP/2.0/%s %s;branch=z9hG4bK%x\r\n", transport, src, len(s.cseq)+len(s.start))
	fmt.Fprintf(&b, "From: <sip:%s@example.com>;tag=f1\r\n", from)
	fmt.Fprintf(&b, "To: <sip:%s@example.com>\r\n", to)
	fmt.Fprintf(&b, "Call-ID: %s\r\n", callID)
	fmt.Fprintf(&b, "CSeq: %s\r\n", s.cseq)
	fmt.Fprintf(&b, "Max-Forwards: 70\r\n")
	if s.body != "" {
		b.WriteString("Content-Type: application/sdp\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(s.body), s.body)
	return b.String()
}

const testSDP = "v=0\r\no=- 1 1 IN IP4 10.0.0.10\r\ns=-\r\nc=IN IP4 10.0.0.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"

// testCall returns the messages of one call through the unit, both legs,
// one millisecond apart: answered and hung up, or (busy) refused with 486.
func testCall(id string, t0 time.Time, from, to string, busy bool) []SIPMessage {
	steps := []step{
		{"inside", Received, "INVITE sip:" + to + "@10.0.0.1 SIP/2.0", "1 INVITE", testSDP},
		{"inside", Sent, "SIP/2.0 100 Trying", "1 INVITE", ""},
		{"outside", Sent, "INVITE sip:" + to + "@trunk.example.net SIP/2.0", "1 INVITE", testSDP},
		{"outside", Received, "SIP/2.0 100 Trying", "1 INVITE", ""},
	}
	if busy {
		steps = append(steps,
			step{"outside", Received, "SIP/2.0 486 Busy Here", "1 INVITE", ""},
			step{"outside", Sent, "ACK sip:" + to + "@trunk.example.net SIP/2.0", "1 ACK", ""},
			step{"inside", Sent, "SIP/2.0 486 Busy Here", "1 INVITE", ""},
			step{"inside", Received, "ACK sip:" + to + "@10.0.0.1 SIP/2.0", "1 ACK", ""},
		)
	} else {
		steps = append(steps,
			step{"outside", Received, "SIP/2.0 180 Ringing", "1 INVITE", ""},
			step{"inside", Sent, "SIP/2.0 180 Ringing", "1 INVITE", ""},
			step{"outside", Received, "SIP/2.0 200 OK", "1 INVITE", testSDP},
			step{"inside", Sent, "SIP/2.0 200 OK", "1 INVITE", testSDP},
			step{"inside", Received, "ACK sip:" + to + "@10.0.0.1 SIP/2.0", "1 ACK", ""},
			step{"outside", Sent, "ACK sip:" + to + "@trunk.example.net SIP/2.0", "1 ACK", ""},
			step{"inside", Received, "BYE sip:" + to + "@10.0.0.1 SIP/2.0", "2 BYE", ""},
			step{"outside", Sent, "BYE sip:" + to + "@trunk.example.net SIP/2.0", "2 BYE", ""},
			step{"outside", Received, "SIP/2.0 200 OK", "2 BYE", ""},
			step{"inside", Sent, "SIP/2.0 200 OK", "2 BYE", ""},
		)
	}
	var out []SIPMessage
	for i, s := range steps {
		local, remote, transport, cid := insideAddr, pbxAddr, "udp", id+"-a@10.0.0.10"
		if s.leg == "outside" {
			local, remote, transport, cid = outsideAddr, trunkAddr, "tls", id+"-b@palisade"
		}
		out = append(out, SIPMessage{
			CallID: id, Leg: s.leg, Dir: s.dir, Transport: transport, Local: local, Remote: remote,
			Time: t0.Add(time.Duration(i) * time.Millisecond),
			Raw:  []byte(sipText(s, cid, local, remote, from, to)),
		})
	}
	return out
}

func traceAll(tr Tracer, msgs []SIPMessage) {
	for _, m := range msgs {
		tr.TraceSIP(m)
	}
}
