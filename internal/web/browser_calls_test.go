package web

import (
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/palisade-sbc/palisade/internal/testkit/browsertest"

	"github.com/palisade-sbc/palisade/internal/admin"
	"github.com/palisade-sbc/palisade/internal/observe"
	"github.com/palisade-sbc/palisade/internal/observe/observetest"
)

// TestBrowserCallFlow finds a traced call on Logging and Tools → Call
// Flows, opens its ladder diagram and reads a message by clicking an arrow.
func TestBrowserCallFlow(t *testing.T) {
	ctx := browser(t)
	var svc *observe.Service
	u := newTestUnitWith(t, func(env *admin.Env) {
		svc = observe.New(env.Store, nil, nil)
		env.Live = &admin.Live{Observe: svc}
	})
	t.Cleanup(func() { svc.Close() })
	observetest.RecordBusyCall(svc)
	sh := newShots(t)

	sh.run(t, ctx, "call-flow",
		logIn(u.srv.URL),
		browsertest.Navigate(u.srv.URL+"/tools/calls"),
		waitText("#calls", "4687"),
		// Search narrows the list (free text, the unit matches).
		chromedp.SendKeys(chromedp.ID("call-q"), "no-such-call"),
		chromedp.Click(chromedp.CSS(`#call-search button`)),
		waitText("#calls", "No calls."),
		retry(chromedp.SetValue(chromedp.ID("call-q"), "4687")),
		chromedp.Click(chromedp.CSS(`#call-search button`)),
		waitText("#calls", "Busy Here"),
		// Fixed columns; the failed call is highlighted; times are read by people.
		waitText("#calls thead", "Start"),
		waitText("#calls thead", "Talk time"),
		waitText("#calls tr.failed", "486 Busy Here"),
		waitText("#calls tr.failed", " UTC"),
		retry(chromedp.Click(chromedp.CSS(`#calls tbody tr a`))),
		retry(chromedp.WaitVisible(chromedp.CSS(`#ladder svg`))),
		waitText("#call-downloads", "pcap"),
		retry(chromedp.Click(chromedp.CSS(`#ladder [data-index="2"] rect`))),
		waitText("#sipmsg", "Call-ID: "),
		sh.take("call-flow"),
	)
}
