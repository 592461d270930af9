package web

import (
	"context"
	"slices"
	"testing"

	"github.com/chromedp/chromedp"
)

// The trunk settings of a peer are edited on the accounts page: a bad
// range shows its error next to the field with the typed text kept; good
// ranges and a number rule are saved, applied, confirmed and read back
// from the running configuration.
func TestBrowserTrunkSettings(t *testing.T) {
	ctx := browser(t)
	u := newTestUnit(t)
	withTables(t, u)
	sh := newShots(t)
	base := u.srv.URL
	run := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sh.run(t, ctx, step, actions...)
	}
	const trunk = `table[data-table="peers"] tbody tr.peer-trunk:nth-of-type(3) `
	const bad = "52.112.0.0/14, 10.1.2.3/8"
	const rules = "match=00([1-9][0-9]{5,14}) replace=+$1; fields=request_uri,to match=[1-9][0-9]{6,14} add_prefix=+"
	var kept string
	run("a bad range",
		logIn(base),
		chromedp.Navigate(base+"/traffic/accounts"),
		retry(chromedp.Click(chromedp.CSS(trunk+`summary`))),
		retry(chromedp.SetValue(chromedp.CSS(trunk+`input[name="peers.ranges"]`), bad)),
		chromedp.Click(chromedp.CSS(`button[name="save"]`)),
		waitText(trunk+`.ferr[data-path="peers[0].trunk.ranges"]`, "host bits set"),
		sh.take("trunk-bad-range"),
		evalString(`document.querySelector('`+trunk+`input[name="peers.ranges"]').value`, &kept),
	)
	if kept != bad {
		t.Fatalf("the typed ranges were not kept: %q", kept)
	}
	run("ranges and number rules",
		retry(chromedp.SetValue(chromedp.CSS(trunk+`input[name="peers.ranges"]`), "52.112.0.0/14, 52.120.0.0/14")),
		retry(chromedp.SetValue(chromedp.CSS(trunk+`input[name="peers.num_out"]`), rules)),
		retry(chromedp.SetValue(chromedp.CSS(trunk+`select[name="peers.user_phone"]`), "yes")),
		retry(chromedp.SetValue(chromedp.CSS(trunk+`select[name="peers.ka_up"]`), "2xx")),
		chromedp.Click(chromedp.CSS(`button[name="save"]`)),
		waitText("#flash", "Saved"),
		retry(chromedp.Click(chromedp.CSS(trunk+`summary`))),
		waitText(trunk+`summary`, "set"),
		sh.take("trunk-saved"),
	)
	var first, later int
	run("apply and confirm",
		chromedp.Navigate(base+"/administration"),
		retry(chromedp.SetValue(chromedp.CSS(`input[name="confirm_within"]`), "120")),
		chromedp.Click(chromedp.ID("apply-btn")),
		waitText("#flash", "is running"),
		watchCountdown(&first, &later),
		chromedp.Click(chromedp.ID("confirm-btn")),
		waitText("#flash", "Configuration applied and saved"),
	)
	got, err := u.mgr.Running(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tr := got.Peers[0].Trunk
	if !slices.Equal(tr.Ranges, []string{"52.112.0.0/14", "52.120.0.0/14"}) || !tr.Numbers.UserPhone || tr.Keepalive.Up != "2xx" ||
		len(tr.Numbers.Outbound) != 2 || tr.Numbers.Outbound[0].Match != "00([1-9][0-9]{5,14})" || tr.Numbers.Outbound[0].Replace != "+$1" ||
		!slices.Equal(tr.Numbers.Outbound[1].Fields, []string{"request_uri", "to"}) || tr.Numbers.Outbound[1].AddPrefix != "+" {
		t.Fatalf("running trunk settings = %+v", tr)
	}
	if a := u.applier.last(); a == nil || len(a.Peers[0].Trunk.Ranges) != 2 {
		t.Fatal("the unit was not switched to the configuration with the ranges")
	}
	// The page shows the rules as they were typed.
	var shown string
	run("read back on the page",
		chromedp.Navigate(base+"/traffic/accounts"),
		retry(chromedp.Click(chromedp.CSS(trunk+`summary`))),
		evalString(`document.querySelector('`+trunk+`input[name="peers.num_out"]').value`, &shown),
		sh.take("trunk-running"),
	)
	if shown != rules {
		t.Fatalf("the page shows the rules as %q", shown)
	}
}

// evalString evaluates a JavaScript expression to a string.
func evalString(expr string, out *string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		v, err := chromedp.Evaluate[string](expr)(ctx, tg)
		*out = v
		return err
	})
}
