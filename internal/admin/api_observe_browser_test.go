package admin

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/palisade-sbc/palisade/internal/testkit/browsertest"
)

// TestLadderInBrowser opens a finished call's diagram in headless Chromium
// as a logged-in administrator, clicks an arrow and saves a screenshot.
func TestLadderInBrowser(t *testing.T) {
	const chromium = "/usr/bin/chromium"
	if _, err := os.Stat(chromium); err != nil {
		t.Skip("install Debian package chromium")
	}
	f, _ := observeFixture(t)
	srv := httptest.NewTLSServer(f.h)
	defer srv.Close()

	actx, cancelA := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium), chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("ignore-certificate-errors", true), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1100, 700))
	defer cancelA()
	ctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()
	ctx, cancelC := context.WithTimeout(ctx, 2*time.Minute)
	defer cancelC()

	dir := os.Getenv("PALISADE_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "palisade-observe-screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "ladder-busy-call.png")

	var arrows int
	var hash, shown, hitOpacity, lineColor string
	eval := func(expr string, out *string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			v, err := chromedp.Evaluate[string](expr, chromedp.EvalAwaitPromise)(ctx, tg)
			*out = v
			return err
		})
	}
	var login string
	err := chromedp.Do(ctx,
		browsertest.Navigate(srv.URL+"/api/v1/whoami"),
		eval(`fetch("/api/v1/login", {method: "POST", headers: {"Content-Type": "application/json"},
			body: JSON.stringify({password: `+strconv.Quote(testPassword)+`})}).then(r => String(r.status))`, &login),
		browsertest.Navigate(srv.URL+"/api/v1/calls/u1/ladder.svg"),
		chromedp.WaitVisible(chromedp.CSS("#m4")),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			n, err := chromedp.Evaluate[int](`document.querySelectorAll("g.msg").length`)(ctx, tg)
			arrows = n
			return err
		}),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			buf, err := chromedp.FullScreenshot(100)(ctx, tg)
			if err != nil {
				return err
			}
			return os.WriteFile(shot, buf, 0o644)
		}),
		// Drawn by attributes, not inline CSS, which the admin's CSP blocks.
		eval(`getComputedStyle(document.querySelector("#m1 rect.hit")).fillOpacity`, &hitOpacity),
		eval(`getComputedStyle(document.querySelector("#m3 line")).stroke`, &lineColor),
		chromedp.Click(chromedp.CSS("#m3 rect.hit")),
		eval(`location.hash`, &hash),
		eval(`document.querySelector(location.hash).getAttribute("data-message")`, &shown),
	)
	if err != nil {
		t.Fatalf("browser: %v (login answered %s)", err, login)
	}
	if arrows != 4 {
		t.Errorf("%d arrows drawn, want 4", arrows)
	}
	if hash != "#m3" || !strings.Contains(shown, "SIP/2.0 486 Busy Here") || !strings.Contains(shown, "Call-ID: b-leg") {
		t.Errorf("clicking arrow 3 gave %q showing %q", hash, shown)
	}
	if hitOpacity != "0" || lineColor != "rgb(176, 42, 42)" {
		t.Errorf("click areas have fill-opacity %q and the 486 arrow is %q; want invisible areas and a red arrow", hitOpacity, lineColor)
	}
	t.Logf("screenshot of the call flow: %s", shot)
}
