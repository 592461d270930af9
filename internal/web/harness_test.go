package web

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/admin"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/lifecycle"
	"github.com/palisade-sbc/palisade/internal/pki"
	"github.com/palisade-sbc/palisade/internal/store"
)

const testPassword = "correct horse battery"

// recApplier records what the unit was asked to run.
type recApplier struct {
	mu      sync.Mutex
	applied []*config.Config
}

func (a *recApplier) Apply(_ context.Context, c *config.Config) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.applied = append(a.applied, c)
	return nil
}

func (a *recApplier) last() *config.Config {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.applied) == 0 {
		return nil
	}
	return a.applied[len(a.applied)-1]
}

// testUnit is a real admin handler (sessions, CSRF, access list) with the
// web admin mounted, over a real lifecycle manager and an in-memory store,
// served over HTTPS on a random loopback port.
type testUnit struct {
	srv     *httptest.Server
	mgr     *lifecycle.Mgr
	st      store.Store
	applier *recApplier
}

func newTestUnit(t *testing.T) *testUnit { return newTestUnitWith(t, nil) }

// newTestUnitWith lets the test add to the admin environment (e.g. a
// running unit with subsystems) before the handler is built.
func newTestUnitWith(t *testing.T, prepare func(env *admin.Env)) *testUnit {
	t.Helper()
	ctx := context.Background()
	st := store.NewMemory()
	cfg := config.Default()
	hash, err := admin.HashPassword(testPassword)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Admin.PasswordHash = hash
	// As a real unit does on first start: the "default" certificate.
	if _, err := (&pki.Certs{Store: st}).New(ctx, cfg, "default", pki.NewOptions{Subject: pki.Subject{CN: "palisade.localdomain"}, SelfSigned: true}); err != nil {
		t.Fatal(err)
	}
	if err := lifecycle.Bootstrap(ctx, st, cfg, "test"); err != nil {
		t.Fatal(err)
	}
	ap := &recApplier{}
	mgr, err := lifecycle.New(st, ap, nil)
	if err != nil {
		t.Fatal(err)
	}
	auth := admin.NewAuth(st)
	auth.SetAdmin(cfg.Admin)
	env := &admin.Env{Store: st, Config: mgr, Auth: auth}
	if prepare != nil {
		prepare(env)
	}
	h := admin.NewHandler(env, Mount)
	srv := httptest.NewTLSServer(h)
	t.Cleanup(func() {
		srv.Close()
		mgr.Close()
		st.Close()
	})
	return &testUnit{srv: srv, mgr: mgr, st: st, applier: ap}
}

// client is a logged-out browser-like HTTP client (cookies, no redirects).
func (u *testUnit) client(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Jar:       jar,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec // test server
		Timeout:   30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// login logs c in through the login form and returns the CSRF token of the
// session as the pages show it.
func (u *testUnit) login(t *testing.T, c *http.Client) string {
	t.Helper()
	resp, err := c.PostForm(u.srv.URL+"/login", url.Values{"password": {testPassword}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login answered %d", resp.StatusCode)
	}
	body := u.get(t, c, "/administration", http.StatusOK)
	m := regexp.MustCompile(`name="csrf-token" content="([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no CSRF token on the page")
	}
	return m[1]
}

func (u *testUnit) get(t *testing.T, c *http.Client, path string, want int) string {
	t.Helper()
	body, _ := u.check(t, "GET "+path, want)(c.Get(u.srv.URL + path))
	return body
}

func (u *testUnit) post(t *testing.T, c *http.Client, path string, form url.Values, want int) (string, *http.Response) {
	t.Helper()
	return u.check(t, "POST "+path, want)(c.PostForm(u.srv.URL+path, form))
}

// check returns a function that reads an answer and fails the test unless
// it has status want.
func (u *testUnit) check(t *testing.T, what string, want int) func(*http.Response, error) (string, *http.Response) {
	return func(resp *http.Response, err error) (string, *http.Response) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		_, _ = ioCopy(&b, resp)
		if resp.StatusCode != want {
			t.Fatalf("%s = %d, want %d: %.800s", what, resp.StatusCode, want, b.String())
		}
		return b.String(), resp
	}
}

func configDiff(a, b *config.Config) (string, error) {
	cs, err := config.Diff(a, b)
	if err != nil {
		return "", err
	}
	return config.FormatChanges(cs), nil
}
