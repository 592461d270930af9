// Package observetest records sample calls into an observe.Service for the
// tests of the packages that show them (admin API, web pages).
package observetest

import (
	"net/netip"
	"time"

	"github.com/palisade-sbc/palisade/internal/observe"
)

// RecordBusyCall traces and records call "u1": the PBX (UDP, inside) calls
// 4687, the trunk (TLS, outside) answers 486, both legs' messages are traced.
func RecordBusyCall(svc *observe.Service) {
	pbx, in := netip.MustParseAddrPort("10.0.0.10:5060"), netip.MustParseAddrPort("10.0.0.1:5060")
	out, trunk := netip.MustParseAddrPort("192.0.2.1:5061"), netip.MustParseAddrPort("203.0.113.5:5061")
	t0 := time.Now().Add(-time.Minute)
	msg := func(i int, leg string, dir observe.Direction, start, callID string) observe.SIPMessage {
		local, remote, tr := in, pbx, "udp"
		if leg == "outside" {
			local, remote, tr = out, trunk, "tls"
		}
		raw := start + "\r\nVia: SIP/2.0/UDP 10.0.0.10;branch=z9hG4bK" + callID + "\r\nFrom: <sip:1001@pbx>;tag=1\r\nTo: <sip:4687@pbx>\r\n" +
			"Call-ID: " + callID + "\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
		return observe.SIPMessage{CallID: "u1", Leg: leg, Dir: dir, Transport: tr, Local: local, Remote: remote,
			Time: t0.Add(time.Duration(i) * time.Millisecond), Raw: []byte(raw)}
	}
	for _, m := range []observe.SIPMessage{
		msg(0, "inside", observe.Received, "INVITE sip:4687@10.0.0.1 SIP/2.0", "a-leg"),
		msg(1, "outside", observe.Sent, "INVITE sip:4687@trunk SIP/2.0", "b-leg"),
		msg(2, "outside", observe.Received, "SIP/2.0 486 Busy Here", "b-leg"),
		msg(3, "inside", observe.Sent, "SIP/2.0 486 Busy Here", "a-leg"),
	} {
		svc.Traces.TraceSIP(m)
	}
	svc.Recorder.CallStarted(observe.CallStart{ID: "u1", Time: t0, Direction: observe.DirOutbound,
		A: observe.CallLeg{Interface: "inside", From: "sip:1001@pbx", To: "sip:4687@pbx", CallID: "a-leg", Remote: pbx}})
	svc.Recorder.CallEnded(observe.CallEnd{ID: "u1", Time: t0.Add(3 * time.Millisecond), Code: 486, Reason: "Busy Here",
		EndedBy: observe.EndedByCallee, B: observe.CallLeg{Interface: "outside", CallID: "b-leg", Remote: trunk}})
}
