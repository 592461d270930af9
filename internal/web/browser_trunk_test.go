package web

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/palisade-sbc/palisade/internal/testkit/browsertest"

	"github.com/palisade-sbc/palisade/internal/config"
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
		browsertest.Navigate(base+"/traffic/accounts"),
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
		browsertest.Navigate(base+"/administration"),
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
		browsertest.Navigate(base+"/traffic/accounts"),
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

// A peer's own media policy is edited on the accounts page, next to its
// account, with the reference's help: SRTP with the plain-RTP group is
// refused next to the field with the choice kept; with the SRTP group it
// is saved into the preliminary configuration and shown again.
func TestBrowserPeerMediaPolicy(t *testing.T) {
	ctx := browser(t)
	u := newTestUnit(t)
	withTables(t, u)
	cfg, etag, _ := u.mgr.Preliminary(context.Background())
	cfg.Media.Policies = []config.MediaPolicy{} // outside takes the default: plain RTP
	if _, err := u.mgr.SetPreliminary(context.Background(), cfg, etag, "test"); err != nil {
		t.Fatal(err)
	}
	sh := newShots(t)
	base := u.srv.URL
	run := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sh.run(t, ctx, step, actions...)
	}
	const more = `table[data-table="peers"] tbody tr.peer-more:nth-of-type(2) `
	req, group := more+`select[name="peers.media_requirement"]`, more+`select[name="peers.media_group"]`
	var helpText, inherited, kept string
	run("the field and its help",
		logIn(base),
		browsertest.Navigate(base+"/traffic/accounts"),
		retry(chromedp.WaitVisible(chromedp.CSS(req))),
		evalString(`document.querySelector('`+more+`small.help[data-help="peers[].media.requirement"]').textContent`, &helpText),
		evalString(`document.querySelector('`+req+` option[value=""]').textContent`, &inherited),
	)
	if !strings.Contains(helpText, "rtp, srtp or either for legs to and from this peer") {
		t.Errorf("help of the media requirement: %q", helpText)
	}
	if inherited != "interface's (rtp)" {
		t.Errorf("the inherited choice reads %q", inherited)
	}
	run("srtp with the RTP group",
		retry(chromedp.SetValue(chromedp.CSS(req), "srtp")),
		retry(chromedp.SetValue(chromedp.CSS(group), "RTP")),
		chromedp.Click(chromedp.CSS(`button[name="save"]`)),
		waitText(more+`.ferr`, `srtp needs an SRTP suite, but group "RTP" has none`),
		sh.take("peer-media-refused"),
		evalString(`document.querySelector('`+req+`').value`, &kept),
	)
	if kept != "srtp" {
		t.Fatalf("the chosen requirement was not kept: %q", kept)
	}
	run("srtp with the SRTP group",
		retry(chromedp.SetValue(chromedp.CSS(group), "SRTP")),
		chromedp.Click(chromedp.CSS(`button[name="save"]`)),
		waitText("#flash", "Saved"),
		retry(chromedp.WaitVisible(chromedp.CSS(req))),
		chromedp.ScrollIntoView(chromedp.CSS(req)),
		sh.take("peer-media-saved"),
		evalString(`document.querySelector('`+req+`').value`, &kept),
	)
	got, _, _ := u.mgr.Preliminary(context.Background())
	if m := got.Peers[0].Media; m != (config.PeerMedia{Group: "SRTP", Requirement: "srtp"}) || kept != "srtp" {
		t.Fatalf("saved media policy %+v, page shows %q", m, kept)
	}
	run("listed on the media page",
		browsertest.Navigate(base+"/sip/media"),
		waitText("#peer-policies", "Peers with their own: itsp (srtp, group SRTP)."),
		chromedp.ScrollIntoView(chromedp.ID("peer-policies")),
		sh.take("media-peer-policies"),
	)
}
