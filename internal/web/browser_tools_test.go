package web

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/palisade-sbc/palisade/internal/testkit/browsertest"

	"github.com/palisade-sbc/palisade/internal/config"
)

// TestBrowserDialPlanTools: the dial-plan tester names the rule, the number
// sent and the time classes; rules move up and down; an empty pattern is a
// mistake unless Match is "all".
func TestBrowserDialPlanTools(t *testing.T) {
	ctx := browser(t)
	u := newTestUnit(t)
	bg := context.Background()
	cfg, etag, err := u.mgr.Preliminary(bg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Peers = []config.Peer{
		{Name: "pbx", Kind: "pbx", Interface: "inside", Address: "10.0.0.10", Transport: "udp"},
		{Name: "itsp", Kind: "itsp", Interface: "outside", Address: "192.0.2.10", Transport: "udp"},
	}
	cfg.DialPlan.TimeClasses = []config.TimeClass{{Name: "always", TimeZone: "UTC",
		Windows: []config.TimeWindow{{Days: []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}, Start: "00:00", End: "24:00"}}}}
	cfg.DialPlan.Rules = []config.DialRule{
		{Name: "catch-all", Source: "itsp", ForwardTo: []config.Forward{{Peer: "pbx"}}},
		{Name: "out", Prefix: "9", Source: "pbx", TimeClass: "always", ForwardTo: []config.Forward{{Peer: "itsp", Rewrite: "0${user}"}}},
	}
	if _, err := u.mgr.SetPreliminary(bg, cfg, etag, "test"); err != nil {
		t.Fatal(err)
	}
	// A rule without a pattern shows Match "all", not an empty prefix.
	c := u.client(t)
	u.login(t, c)
	if page := u.get(t, c, "/traffic/dialplan", http.StatusOK); !strings.Contains(page, `<option value="all" selected>all</option>`) {
		t.Errorf("the catch-all rule does not show Match all:\n%s", excerpt(page, "catch-all"))
	}
	sh := newShots(t)
	sh.run(t, ctx, "tester",
		logIn(u.srv.URL),
		browsertest.Navigate(u.srv.URL+"/traffic/dialplan"),
		chromedp.Click(chromedp.CSS(`a[href^="/tools/route"]`)),
		retry(chromedp.SendKeys(chromedp.ID("route-number"), "912345")),
		chromedp.SetValue(chromedp.ID("route-source"), "pbx"),
		chromedp.Click(chromedp.ID("route-btn")),
		waitText("#route-rule", "out"),
		waitText("#route-rule", "numbers starting with 9"),
		waitText("#route-targets", "012345"),
		waitText("#route-tcs", "always: in force"),
		sh.take("dial-plan-tester"),
	)
	// Move "out" above the catch-all (↑ on its row saves the page).
	sh.run(t, ctx, "move",
		browsertest.Navigate(u.srv.URL+"/traffic/dialplan"),
		retry(chromedp.Click(chromedp.CSS(`button[name="move"][value^="up:r1"]`))),
		waitText("#flash", "Saved"),
	)
	pre, _, _ := u.mgr.Preliminary(bg)
	if len(pre.DialPlan.Rules) != 2 || pre.DialPlan.Rules[0].Name != "out" || pre.DialPlan.Rules[1].Name != "catch-all" {
		t.Fatalf("after ↑: %+v", pre.DialPlan.Rules)
	}
	// Match "prefix" with no pattern is refused; the page says what to do.
	sh.run(t, ctx, "empty pattern",
		chromedp.SetValue(chromedp.CSS(`table[data-table="dp"] tbody tr:nth-child(2) select[name="dp.match"]`), "prefix"),
		chromedp.Click(chromedp.CSS(`button[name="save"]`)),
		waitText("#errors", "every number"),
		sh.take("dial-plan-empty-pattern"),
	)
}
