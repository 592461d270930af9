package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/palisade-sbc/palisade/internal/admin"
	"github.com/palisade-sbc/palisade/internal/testkit/browsertest"
)

// unitBrowser is headless Debian chromium logged in to the web admin of the
// unit running on dir (its admin address and generated password are in the
// data directory). It returns nil when chromium is missing.
type unitBrowser struct {
	ctx  context.Context
	base string
	dir  string // screenshots
}

func newUnitBrowser(t *testing.T, dir string) *unitBrowser {
	t.Helper()
	const chromium = "/usr/bin/chromium"
	if _, err := os.Stat(chromium); err != nil {
		t.Log("install Debian package chromium to see the dashboard in a browser")
		return nil
	}
	addr, err := os.ReadFile(filepath.Join(dir, admin.AddrFile))
	if err != nil {
		t.Fatal(err)
	}
	pass, err := os.ReadFile(filepath.Join(dir, "initial-admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), chromedp.ExecPath(chromium), chromedp.Flag("headless", true),
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("ignore-certificate-errors", true), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1366, 900))
	ctx, cancelB := chromedp.NewContext(actx)
	ctx, cancelC := context.WithTimeout(ctx, 10*time.Minute)
	t.Cleanup(func() { cancelC(); cancelB(); cancelA() })
	// Start the browser on this context: one started on a step's shorter
	// context would end with that step.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	b := &unitBrowser{ctx: ctx, base: "https://" + strings.TrimSpace(string(addr)), dir: filepath.Join(os.TempDir(), "palisade-cli-screenshots", t.Name())}
	_ = os.MkdirAll(b.dir, 0o755)
	t.Logf("screenshots: %s", b.dir)
	b.run(t, "login", browsertest.Navigate(b.base+"/login"), chromedp.WaitVisible(chromedp.ID("password")),
		chromedp.SendKeys(chromedp.ID("password"), strings.TrimSpace(string(pass))), chromedp.Click(chromedp.ID("login-btn")),
		b.waitText("h1", "Dashboard"))
	return b
}

func (b *unitBrowser) run(t *testing.T, step string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 3*time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		_ = chromedp.Do(b.ctx, b.shot("FAILED-"+step))
		t.Fatalf("browser, %s: %v", step, err)
	}
}

func (b *unitBrowser) shot(name string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		buf, err := chromedp.FullScreenshot(100)(ctx, tg)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(b.dir, name+".png"), buf, 0o644)
	})
}

// waitText waits until the element's text contains want (the dashboard
// re-reads itself every 10 s).
func (b *unitBrowser) waitText(sel, want string) chromedp.Action[chromedp.Void] {
	return browsertest.WaitText(sel, want)
}
