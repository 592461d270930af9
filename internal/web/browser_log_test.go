package web

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/palisade-sbc/palisade/internal/admin"
	"github.com/palisade-sbc/palisade/internal/observe"
	"github.com/palisade-sbc/palisade/internal/testkit/browsertest"
)

// TestBrowserLogFilters: the Log page filters by text, level, peer and
// Call-ID, downloads what it shows, and links a call's lines to its flow.
func TestBrowserLogFilters(t *testing.T) {
	ctx := browser(t)
	ring := observe.NewLogRing(observe.LogRingSize)
	u := newTestUnitWith(t, func(env *admin.Env) { env.Live = &admin.Live{RecentLog: ring} })
	log := slog.New(ring.Handler(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug})))
	log.Info("zebra call routed", "call_id", "zc-1@pbx", "peer", "itsp-zebra")
	log.Warn("zebra peer does not answer", "peer", "itsp-zebra")
	log.With("call_id", "zc-2@pbx").Error("zebra call failed", "peer", "lab-zebra", "code", 503)
	log.Debug("zebra debug line")
	sh := newShots(t)
	var dl string
	sh.run(t, ctx, "log",
		logIn(u.srv.URL),
		browsertest.Navigate(u.srv.URL+"/tools/log"),
		retry(chromedp.SendKeys(chromedp.ID("log-q"), "zebra")),
		chromedp.Click(chromedp.ID("log-show")),
		waitURL("q=zebra"),
		waitText("#recent-log", "zebra call failed"),
		waitText("#recent-log", "zebra peer does not answer"),
		sh.take("log-text"),
		// Peer narrows to that peer's lines.
		retry(chromedp.SendKeys(chromedp.ID("log-peer"), "lab-zebra")),
		chromedp.Click(chromedp.ID("log-show")),
		waitURL("peer=lab-zebra"),
		waitText("#recent-log tbody", "zebra call failed"),
		browsertest.Navigate(u.srv.URL+"/tools/log?q=zebra&level=warn"),
		waitText("#recent-log tbody", "zebra peer does not answer"),
		browsertest.Navigate(u.srv.URL+"/tools/log?call_id=zc-1%40pbx&last=15m"),
		waitText("#recent-log tbody", "zebra call routed"),
		sh.take("log-call-id"),
		fetchText(u.srv.URL+"/tools/log/download?q=zebra&level=debug", &dl),
		chromedp.Click(chromedp.CSS(`#recent-log a.call-link`)),
		waitURL("/tools/calls?call=zc-1"),
		waitText("h1", "Call Flows"),
	)
	var rows string
	sh.run(t, ctx, "check", browsertest.Navigate(u.srv.URL+"/tools/log?q=zebra&peer=lab-zebra"),
		textOf(chromedp.CSS("#recent-log tbody"), &rows))
	if strings.Contains(rows, "routed") || strings.Contains(rows, "does not answer") || !strings.Contains(rows, "failed") {
		t.Errorf("peer filter shows:\n%s", rows)
	}
	sh.run(t, ctx, "check level", browsertest.Navigate(u.srv.URL+"/tools/log?q=zebra&level=warn"),
		textOf(chromedp.CSS("#recent-log tbody"), &rows))
	if strings.Contains(rows, "routed") || strings.Contains(rows, "debug") {
		t.Errorf("level warn shows:\n%s", rows)
	}
	if strings.Count(dl, "\n") != 4 || strings.Index(dl, "zebra call routed") > strings.Index(dl, "zebra debug line") {
		t.Errorf("download (4 lines, oldest first):\n%s", dl)
	}
	var bad string
	sh.run(t, ctx, "bad time", browsertest.Navigate(u.srv.URL+"/tools/log?from=yesterday"),
		textOf(chromedp.CSS("#problem"), &bad))
	if !strings.Contains(bad, "From must be a date and time") {
		t.Errorf("bad From: %q", bad)
	}
}

// textOf reads the visible text of sel into out (asking again while the
// page is being replaced).
func textOf(sel chromedp.CSS, out *string) chromedp.Action[chromedp.Void] {
	return retry(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		v, err := chromedp.Text(sel, chromedp.NodeVisible)(ctx, tg)
		*out = v
		return err
	}))
}

// waitURL waits until the page's address contains want (a form submitted
// or a link followed has loaded).
func waitURL(want string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		for {
			href, err := chromedp.Evaluate[string]("location.href + (document.readyState === 'complete' ? '' : '#loading')")(ctx, tg)
			if err == nil && strings.Contains(href, want) && !strings.HasSuffix(href, "#loading") {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("address %q, waited for %q", href, want)
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
}
