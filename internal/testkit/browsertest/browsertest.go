// Package browsertest holds what the chromedp tests of several packages
// share (the web admin's page tests, the CLI's tests against a running
// unit).
package browsertest

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/chromedp/chromedp"
)

// WaitText waits until the element's text contains want. A query may hit a
// page that a navigation is replacing ("no node with given id"): it asks
// again until the step's context ends.
func WaitText(sel, want string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		for {
			got, err := chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible)(ctx, tg)
			if err == nil && strings.Contains(got, want) {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s says %q (%v), waited for %q", sel, got, err, want)
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
}

// Navigate loads url like chromedp.Navigate, loading it again when Chromium
// gives up with ERR_NETWORK_CHANGED: other tests on the machine add and
// remove addresses and veth pairs, and Chromium fails a load that was in
// flight when it saw one, although loopback never changed.
func Navigate(url string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		for try := 1; ; try++ {
			_, err := chromedp.Navigate(url)(ctx, tg)
			if err == nil || try == 10 || !strings.Contains(err.Error(), "ERR_NETWORK_CHANGED") {
				return err
			}
			select {
			case <-ctx.Done():
				return err
			case <-time.After(200 * time.Millisecond):
			}
		}
	})
}
