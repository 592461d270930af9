package web

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/palisade-sbc/palisade/internal/testkit/browsertest"

	"github.com/palisade-sbc/palisade/internal/admin"
	"github.com/palisade-sbc/palisade/internal/observe"
)

// TestBrowserPeerTargets: each target of a peer (every resolved address of
// every name) is shown under the peer with its own state and last answer,
// on the dashboard, the Status page and the SIP Accounts page.
func TestBrowserPeerTargets(t *testing.T) {
	ctx := browser(t)
	var svc *observe.Service
	now := time.Now()
	u := newTestUnitWith(t, func(env *admin.Env) {
		svc = observe.New(env.Store, nil, nil)
		svc.Sources.Register(observe.StatusSource{Kind: observe.StatusPeers, Status: func(context.Context) (any, error) {
			return []observe.PeerStatus{{Name: "teams", Up: true, State: observe.PeerUp, Since: now.Add(-time.Hour), LastCheck: now, Keepalive: true,
				Targets: []observe.PeerTarget{
					{Host: "sip.pstnhub.microsoft.com", Address: "127.0.0.3:5061", Transport: "tls", Up: true, LastStatus: 200},
					{Host: "sip2.pstnhub.microsoft.com", Address: "127.0.0.4:5061", Transport: "tls", LastStatus: 503, OutUntil: now.Add(10 * time.Minute)},
					{Host: "sip3.pstnhub.microsoft.com", Address: "127.0.0.5:5061", Transport: "tls", LastError: "no answer to OPTIONS"},
					{Host: "sip3.pstnhub.microsoft.com", Address: "127.0.0.6:5061", Transport: "tls", Up: true},
				}}}, nil
		}})
		env.Live = &admin.Live{Observe: svc}
	})
	t.Cleanup(func() { svc.Close() })
	sh := newShots(t)
	for _, page := range []struct{ path, box, shot string }{
		{"/", `#dash-peers tr[data-targets="teams"]`, "dashboard-targets"},
		{"/tools/status", "#status", "status-targets"},
		{"/traffic/accounts", "#peer-status", "accounts-targets"},
	} {
		steps := []chromedp.Action[chromedp.Void]{browsertest.Navigate(u.srv.URL + page.path)}
		for _, want := range []string{"sip2.pstnhub.microsoft.com", "127.0.0.4:5061 (tls)", "out until", "503", "127.0.0.5:5061", "no answer to OPTIONS",
			"not checked yet", "200"} {
			steps = append(steps, waitText(page.box, want))
		}
		steps = append(steps, waitText(page.box+" table.targets tbody tr:nth-child(1) .tag.ok", "up"),
			waitText(page.box+" table.targets tbody tr:nth-child(3) .tag.bad", "down"), sh.take(page.shot))
		if page.path == "/" {
			steps = append([]chromedp.Action[chromedp.Void]{logIn(u.srv.URL)}, steps...)
		}
		sh.run(t, ctx, page.shot, steps...)
	}
}
