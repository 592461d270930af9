package web

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/palisade-sbc/palisade/internal/testkit/browsertest"
)

const chromium = "/usr/bin/chromium"

// browser starts headless Chromium for the test (a fresh profile each time).
func browser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromium); err != nil {
		t.Skip("install Debian package chromium")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("ignore-certificate-errors", true), // the test server's certificate
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1366, 900),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	ctx, cancelC := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelC(); cancelB(); cancelA() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// shots saves full-page screenshots into one folder per test run.
type shots struct {
	t   *testing.T
	dir string
	n   int
}

func newShots(t *testing.T) *shots {
	dir := os.Getenv("PALISADE_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "palisade-web-screenshots", t.Name())
	}
	_ = os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := &shots{t: t, dir: dir}
	t.Cleanup(func() { t.Logf("screenshots of every tab: %s", dir) })
	return s
}

func (s *shots) take(name string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		buf, err := chromedp.FullScreenshot(100)(ctx, tg)
		if err != nil {
			return err
		}
		s.n++
		return os.WriteFile(filepath.Join(s.dir, fmt.Sprintf("%02d-%s.png", s.n, name)), buf, 0o644)
	})
}

// testCA is a root and an intermediate that sign the unit's request.
type testCA struct {
	root, inter       *x509.Certificate
	rootKey, interKey crypto.Signer
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	mk := func(cn string, parent *x509.Certificate, parentKey crypto.Signer) (*x509.Certificate, crypto.Signer) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn, Organization: []string{"Palisade Test CA"}},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(5 * 365 * 24 * time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		}
		if parent == nil {
			parent, parentKey = tmpl, key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		return c, key
	}
	ca := &testCA{}
	ca.root, ca.rootKey = mk("Palisade Test Root", nil, nil)
	ca.inter, ca.interKey = mk("Palisade Test Intermediate", ca.root, ca.rootKey)
	return ca
}

// sign issues a certificate for the PEM request, as a CA would.
func (ca *testCA) sign(t *testing.T, csrPEM string) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode([]byte(csrPEM))
	if b == nil {
		t.Fatalf("the downloaded request is not PEM: %.200q", csrPEM)
	}
	req, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := req.CheckSignature(); err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: req.Subject, DNSNames: req.DNSNames,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.inter, req.PublicKey, ca.interKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

func writePEM(t *testing.T, dir, name string, certs ...*x509.Certificate) string {
	t.Helper()
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// waitText waits until the element's text contains want.
func waitText(sel, want string) chromedp.Action[chromedp.Void] {
	return browsertest.WaitText(sel, want)
}

// fetchText downloads a URL with the browser's session (as the download
// links do) and returns the body.
func fetchText(url string, out *string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		v, err := chromedp.Evaluate[string](`fetch(`+strconv.Quote(url)+`, {credentials: "same-origin"}).then(r => r.ok ? r.text() : Promise.reject("HTTP " + r.status))`,
			chromedp.EvalAwaitPromise)(ctx, tg)
		*out = v
		return err
	})
}

// attr reads an attribute of the element.
func attr(sel chromedp.ID, name string, out *string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		v, err := chromedp.AttributeValue(sel, name)(ctx, tg)
		*out = v.Value
		return err
	})
}

// watchCountdown reads the confirmation countdown until it went down.
func watchCountdown(first, later *int) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		read := func() (int, error) {
			s, err := chromedp.Text(chromedp.ID("countdown"), chromedp.NodeVisible)(ctx, tg)
			if err != nil {
				return 0, err
			}
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(s), " s"))
		}
		var err error
		for {
			if *first, err = read(); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		for {
			if *later, err = read(); err == nil && *later < *first {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("the countdown stayed at %d", *first)
			case <-time.After(200 * time.Millisecond):
			}
		}
	})
}

// run does the steps in the browser within 30 s; on failure it saves a
// screenshot named after the step and fails the test.
func (s *shots) run(t *testing.T, ctx context.Context, step string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		_ = chromedp.Do(ctx, s.take("FAILED-"+strings.ReplaceAll(step, " ", "-")))
		t.Fatalf("%s: %v", step, err)
	}
}

// logIn opens the login page of base and logs in as the administrator.
func logIn(base string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		for _, a := range []chromedp.Action[chromedp.Void]{
			browsertest.Navigate(base + "/login"),
			retry(chromedp.WaitVisible(chromedp.ID("password"))),
			chromedp.SendKeys(chromedp.ID("password"), testPassword),
			chromedp.Click(chromedp.ID("login-btn")),
			waitText("h1", "Dashboard"),
		} {
			if _, err := a(ctx, tg); err != nil {
				return err
			}
		}
		return nil
	})
}

// retry runs an idempotent action again while it fails (a node of a page
// that was just replaced), until the step's time is up.
func retry(a chromedp.Action[chromedp.Void]) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		for {
			_, err := a(ctx, tg)
			if err == nil {
				return nil
			}
			select {
			case <-ctx.Done():
				return err
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
}

// crl returns a PEM CRL of the root revoking nothing.
func (ca *testCA) crl(t *testing.T, dir string) string {
	t.Helper()
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: time.Now().Add(-time.Hour), NextUpdate: time.Now().Add(7 * 24 * time.Hour),
	}, ca.root, ca.rootKey)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "root.crl")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
