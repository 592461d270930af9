package web

import (
	"net/netip"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/palisade-sbc/palisade/internal/admin"
	"github.com/palisade-sbc/palisade/internal/observe"
	"github.com/palisade-sbc/palisade/internal/unit"
)

// TestBrowserCallFlow finds a traced call on Logging and Tools → Call
// Flows, opens its ladder diagram and reads a message by clicking an arrow.
func TestBrowserCallFlow(t *testing.T) {
	ctx := browser(t)
	var svc *observe.Service
	u := newTestUnitWith(t, func(env *admin.Env) {
		svc = observe.New(env.Store, nil, nil)
		env.Unit = unit.New(nil)
		env.Unit.Add(svc)
	})
	t.Cleanup(func() { svc.Close() })
	traceBusyCall(svc)
	sh := newShots(t)

	sh.run(t, ctx, "call-flow",
		logIn(u.srv.URL),
		chromedp.Navigate(u.srv.URL+"/tools/calls"),
		waitText("#calls", "4687"),
		// Search narrows the list (free text, the unit matches).
		chromedp.SendKeys(chromedp.ID("call-q"), "no-such-call"),
		chromedp.Click(chromedp.CSS(`#call-search button`)),
		waitText("#calls", "None."),
		retry(chromedp.SetValue(chromedp.ID("call-q"), "4687")),
		chromedp.Click(chromedp.CSS(`#call-search button`)),
		waitText("#calls", "Busy Here"),
		retry(chromedp.Click(chromedp.CSS(`#calls tbody tr`))),
		retry(chromedp.WaitVisible(chromedp.CSS(`#ladder svg`))),
		waitText("#call-downloads", "pcap"),
		retry(chromedp.Click(chromedp.CSS(`#ladder [data-index="2"] rect`))),
		waitText("#sipmsg", "Call-ID: "),
		sh.take("call-flow"),
	)
}

// traceBusyCall records a call that the trunk answered 486, both legs.
func traceBusyCall(svc *observe.Service) {
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
