package admin

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/store"
)

const testPassword = "correct horse battery staple"

type apiFixture struct {
	t       testing.TB
	h       *Handler
	mgr     *fakeManager
	applier *recordingApplier
	cookie  *http.Cookie
	csrf    string
}

func newFixture(t testing.TB) *apiFixture {
	t.Helper()
	cfg := config.Default()
	hash, err := HashPassword(testPassword)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Admin.PasswordHash = hash
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatalf("default config does not validate: %v", errs)
	}
	ap := &recordingApplier{}
	mgr := newFakeManager(cfg, ap)
	env := &Env{Store: store.NewMemory(), Config: mgr, Live: &Live{}, Log: slog.New(slog.DiscardHandler)}
	h := NewHandler(env)
	env.Auth.SetAdmin(cfg.Admin)
	return &apiFixture{t: t, h: h, mgr: mgr, applier: ap}
}

type result struct {
	status int
	header http.Header
	body   []byte
}

func (r result) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// do sends a request from 127.0.0.1 with the given headers.
func (f *apiFixture) do(method, path string, body any, hdr map[string]string) result {
	f.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req := httptest.NewRequest(method, path, rd)
	req.RemoteAddr = "127.0.0.1:40000"
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if f.cookie != nil {
		req.AddCookie(f.cookie)
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	return result{status: res.StatusCode, header: res.Header, body: b}
}

func (f *apiFixture) login() {
	f.t.Helper()
	req := httptest.NewRequest("POST", "/api/v1/login", strings.NewReader(`{"password":"`+testPassword+`"}`))
	req.RemoteAddr = "127.0.0.1:40000"
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		f.t.Fatalf("login: %d %s", rec.Code, rec.Body)
	}
	var out struct {
		CSRF string `json:"csrf_token"`
	}
	json.Unmarshal(rec.Body.Bytes(), &out)
	f.csrf = out.CSRF
	for _, c := range rec.Result().Cookies() {
		if c.Name == SessionCookie {
			f.cookie = c
		}
	}
	if f.cookie == nil || f.csrf == "" {
		f.t.Fatalf("login gave no session cookie or CSRF token: %v", rec.Header())
	}
}

func TestUnauthenticatedIs401(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct{ method, path string }{
		{"GET", "/api/v1/config/preliminary"},
		{"GET", "/api/v1/config/running"},
		{"PUT", "/api/v1/config/preliminary"},
		{"POST", "/api/v1/config/apply"},
		{"GET", "/api/v1/tokens"},
		{"POST", "/api/v1/tokens"},
		{"GET", "/api/v1/audit"},
		{"GET", "/api/v1/no-such-thing"},
		{"GET", "/api/v1/status"},
	} {
		t.Run(tc.method+tc.path, func(t *testing.T) {
			r := f.do(tc.method, tc.path, nil, nil)
			if r.status != http.StatusUnauthorized {
				t.Fatalf("got %d %s, want 401", r.status, r.body)
			}
		})
	}
	r := f.do("GET", "/api/v1/config/running", nil, map[string]string{"Authorization": "Bearer pal_000000000000_nope"})
	if r.status != http.StatusUnauthorized {
		t.Fatalf("bad token: got %d", r.status)
	}
}

func TestLoginSessionAndCSRF(t *testing.T) {
	f := newFixture(t)
	if r := f.do("POST", "/api/v1/login", `{"password":"wrong"}`, nil); r.status != http.StatusUnauthorized {
		t.Fatalf("wrong password: got %d", r.status)
	}
	f.login()
	if !f.cookie.Secure || !f.cookie.HttpOnly || f.cookie.SameSite != http.SameSiteStrictMode {
		t.Fatalf("session cookie attributes: %+v", f.cookie)
	}
	r := f.do("GET", "/api/v1/config/preliminary", nil, nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET with session: %d %s", r.status, r.body)
	}
	for _, h := range []string{"X-Content-Type-Options", "X-Frame-Options", "Content-Security-Policy", "Strict-Transport-Security"} {
		if r.header.Get(h) == "" {
			t.Errorf("security header %s missing", h)
		}
	}
	doc := r.body
	if r := f.do("PUT", "/api/v1/config/preliminary", doc, nil); r.status != http.StatusForbidden {
		t.Fatalf("PUT without CSRF token: got %d, want 403", r.status)
	}
	if r := f.do("PUT", "/api/v1/config/preliminary", doc, map[string]string{CSRFHeader: "forged"}); r.status != http.StatusForbidden {
		t.Fatalf("PUT with a wrong CSRF token: got %d, want 403", r.status)
	}
	if r := f.do("PUT", "/api/v1/config/preliminary", doc, map[string]string{CSRFHeader: f.csrf}); r.status != http.StatusOK {
		t.Fatalf("PUT with CSRF token: %d %s", r.status, r.body)
	}
	// HTML forms carry the token as a field, urlencoded or multipart.
	if r := f.do("POST", "/api/v1/config/undo", "csrf_token="+f.csrf, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}); r.status != http.StatusOK {
		t.Fatalf("urlencoded form with csrf_token: %d %s", r.status, r.body)
	}
	mp := "--XX\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n" + f.csrf + "\r\n--XX--\r\n"
	if r := f.do("POST", "/api/v1/config/undo", mp, map[string]string{"Content-Type": "multipart/form-data; boundary=XX"}); r.status != http.StatusOK {
		t.Fatalf("multipart form with csrf_token: %d %s", r.status, r.body)
	}
	if r := f.do("POST", "/api/v1/config/undo", "csrf_token=nope", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}); r.status != http.StatusForbidden {
		t.Fatalf("form with a wrong csrf_token: %d", r.status)
	}
	if r := f.do("POST", "/api/v1/logout", nil, map[string]string{CSRFHeader: f.csrf}); r.status != http.StatusNoContent {
		t.Fatalf("logout: %d", r.status)
	}
	if r := f.do("GET", "/api/v1/config/preliminary", nil, nil); r.status != http.StatusUnauthorized {
		t.Fatalf("after logout: got %d, want 401", r.status)
	}
}

func TestTokens(t *testing.T) {
	f := newFixture(t)
	f.login()
	r := f.do("POST", "/api/v1/tokens", `{"name":"ci"}`, map[string]string{CSRFHeader: f.csrf})
	if r.status != http.StatusCreated {
		t.Fatalf("new token: %d %s", r.status, r.body)
	}
	var tok struct {
		ID    string `json:"id"`
		Token string `json:"token"`
		Hash  string `json:"hash"`
	}
	r.decode(t, &tok)
	if tok.Hash != "" || !strings.HasPrefix(tok.Token, "pal_") {
		t.Fatalf("token answer: %s", r.body)
	}
	raw, err := f.h.env.Store.Get(t.Context(), tokenPrefix+tok.ID)
	if err != nil || bytes.Contains(raw, []byte(tok.Token[len("pal_"+tok.ID+"_"):])) {
		t.Fatalf("the token secret must be stored hashed only: %s, %v", raw, err)
	}
	f.cookie = nil
	bearer := map[string]string{"Authorization": "Bearer " + tok.Token}
	// No CSRF token needed: a Bearer token is not sent by browsers on their own.
	doc := f.do("GET", "/api/v1/config/preliminary", nil, bearer)
	if doc.status != http.StatusOK {
		t.Fatalf("GET with token: %d", doc.status)
	}
	if r := f.do("PUT", "/api/v1/config/preliminary", doc.body, bearer); r.status != http.StatusOK {
		t.Fatalf("PUT with token: %d %s", r.status, r.body)
	}
	if r := f.do("DELETE", "/api/v1/tokens/"+tok.ID, nil, bearer); r.status != http.StatusNoContent {
		t.Fatalf("delete token: %d %s", r.status, r.body)
	}
	if r := f.do("GET", "/api/v1/config/preliminary", nil, bearer); r.status != http.StatusUnauthorized {
		t.Fatalf("revoked token: got %d, want 401", r.status)
	}
}

// doLocal serves requests as if they came over admin.sock.
func (f *apiFixture) doLocal(method, path string, body any, hdr map[string]string) result {
	f.t.Helper()
	var rd io.Reader
	if b, ok := body.([]byte); ok {
		rd = bytes.NewReader(b)
	} else if s, ok := body.(string); ok {
		rd = strings.NewReader(s)
	}
	req := httptest.NewRequest(method, path, rd)
	req = req.WithContext(WithLocal(req.Context(), 1000))
	req.RemoteAddr = "@"
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Result().Body)
	return result{status: rec.Code, header: rec.Header(), body: b}
}

func TestETagAndPreconditionFailed(t *testing.T) {
	f := newFixture(t)
	r := f.doLocal("GET", "/api/v1/config/preliminary", nil, nil)
	etag := r.header.Get("ETag")
	if r.status != http.StatusOK || etag == "" {
		t.Fatalf("GET preliminary: %d, ETag %q", r.status, etag)
	}
	doc := r.body
	if r := f.doLocal("PUT", "/api/v1/config/preliminary", doc, map[string]string{"If-Match": `"stale"`}); r.status != http.StatusPreconditionFailed {
		t.Fatalf("stale If-Match: got %d, want 412", r.status)
	}
	r = f.doLocal("PUT", "/api/v1/config/preliminary", doc, map[string]string{"If-Match": etag})
	if r.status != http.StatusOK || r.header.Get("ETag") == etag {
		t.Fatalf("matching If-Match: %d, new ETag %q", r.status, r.header.Get("ETag"))
	}
	// The old ETag is stale now: a second writer with it loses.
	if r := f.doLocal("PUT", "/api/v1/config/preliminary/path/unit.name", `"x"`, map[string]string{"If-Match": etag}); r.status != http.StatusPreconditionFailed {
		t.Fatalf("path set with stale If-Match: got %d, want 412", r.status)
	}
}

func TestValidationErrorsAre422WithEveryPath(t *testing.T) {
	f := newFixture(t)
	cfg := config.Default()
	cfg.SIP.Listeners[0].Port = 70000
	cfg.SIP.Listeners[1].Transport = "carrier-pigeon"
	cfg.TLS.MinVersion = "0.9"
	doc, _ := config.Encode(cfg)
	r := f.doLocal("PUT", "/api/v1/config/preliminary", doc, nil)
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("got %d %s, want 422", r.status, r.body)
	}
	var eb errorBody
	r.decode(t, &eb)
	want := []string{"sip.listeners[0].port", "sip.listeners[1].transport", "tls.min_version"}
	for _, p := range want {
		found := false
		for _, e := range eb.Errors {
			found = found || e.Path == p
		}
		if !found {
			t.Errorf("no error for %s in %s", p, r.body)
		}
	}
	// Unknown fields are errors too, with their path.
	r = f.doLocal("PUT", "/api/v1/config/preliminary", `{"schema":1,"unit":{"nmae":"x"}}`, nil)
	if r.status != http.StatusUnprocessableEntity || !bytes.Contains(r.body, []byte("unit.nmae")) {
		t.Fatalf("unknown field: %d %s", r.status, r.body)
	}
	if st, _ := f.mgr.State(t.Context()); st.PreliminaryChanged {
		t.Fatal("a rejected document changed the preliminary configuration")
	}
}

func TestApplyConfirmRevertThroughAPI(t *testing.T) {
	f := newFixture(t)
	if r := f.doLocal("PUT", "/api/v1/config/preliminary/path/unit.name", `"edge-1"`, nil); r.status != http.StatusOK {
		t.Fatalf("set unit.name: %d %s", r.status, r.body)
	}
	if r := f.doLocal("GET", "/api/v1/config/preliminary/path/unit.name", nil, nil); string(bytes.TrimSpace(r.body)) != `"edge-1"` {
		t.Fatalf("get unit.name: %s", r.body)
	}
	r := f.doLocal("POST", "/api/v1/config/apply", `{"confirm_within":"3s"}`, nil)
	if r.status != http.StatusOK {
		t.Fatalf("apply: %d %s", r.status, r.body)
	}
	if got := f.applier.last().Unit.Name; got != "edge-1" {
		t.Fatalf("the unit was switched to unit.name %q", got)
	}
	if r := f.doLocal("POST", "/api/v1/config/apply", nil, nil); r.status != http.StatusConflict {
		t.Fatalf("second apply while one waits: %d, want 409", r.status)
	}
	if r := f.doLocal("POST", "/api/v1/config/revert", nil, nil); r.status != http.StatusOK {
		t.Fatalf("revert: %d %s", r.status, r.body)
	}
	if got := f.applier.last().Unit.Name; got != "palisade" {
		t.Fatalf("after revert the unit runs unit.name %q", got)
	}
	if r := f.doLocal("POST", "/api/v1/config/confirm", nil, nil); r.status != http.StatusConflict {
		t.Fatalf("confirm with nothing pending: %d, want 409", r.status)
	}
	f.doLocal("POST", "/api/v1/config/apply", `{"confirm_within":"1m"}`, nil)
	r = f.doLocal("POST", "/api/v1/config/confirm", nil, nil)
	if r.status != http.StatusOK {
		t.Fatalf("confirm: %d %s", r.status, r.body)
	}
	r = f.doLocal("GET", "/api/v1/config/history", nil, nil)
	var vs []struct{ Number int }
	r.decode(t, &vs)
	if len(vs) != 2 || vs[1].Number != 2 {
		t.Fatalf("history: %s", r.body)
	}
	r = f.doLocal("GET", "/api/v1/config/diff?a=1&b=2", nil, nil)
	if r.status != http.StatusOK || !bytes.Contains(r.body, []byte("unit.name")) {
		t.Fatalf("diff: %d %s", r.status, r.body)
	}
	r = f.doLocal("GET", "/api/v1/config/saved", nil, nil)
	if !bytes.Contains(r.body, []byte(`"edge-1"`)) {
		t.Fatalf("saved config lacks the confirmed value: %s", r.body)
	}
}

func TestApplyOnStoppedUnitIsRefused(t *testing.T) {
	f := newFixture(t)
	f.h.env.Live = nil
	r := f.doLocal("POST", "/api/v1/config/apply", nil, nil)
	if r.status != http.StatusConflict || !bytes.Contains(r.body, []byte("not running")) {
		t.Fatalf("apply on a stopped unit: %d %s", r.status, r.body)
	}
	if len(f.applier.applied) != 0 {
		t.Fatal("a stopped unit was asked to apply")
	}
}

func TestAllowedNetworks(t *testing.T) {
	f := newFixture(t)
	req := httptest.NewRequest("POST", "/api/v1/login", strings.NewReader(`{"password":"`+testPassword+`"}`))
	req.RemoteAddr = "192.0.2.7:5555"
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Fatalf("login from outside allowed_networks: %d, want 403", rec.Code)
	}
	for _, tc := range []struct {
		nets   []string
		remote string
		ok     bool
	}{
		{[]string{"10.0.0.0/8"}, "10.1.2.3:1", true},
		{[]string{"10.0.0.0/8"}, "[::ffff:10.1.2.3]:1", true},
		{[]string{"10.0.0.0/8", "::1/128"}, "[::1]:1", true},
		{[]string{"10.0.0.0/8"}, "11.0.0.1:1", false},
		{[]string{}, "127.0.0.1:1", false},
		{[]string{"127.0.0.0/8"}, "garbage", false},
	} {
		a := NewAuth(store.NewMemory())
		a.SetAdmin(config.Admin{AllowedNetworks: tc.nets})
		if got := a.allowed(tc.remote); got != tc.ok {
			t.Errorf("allowed(%v, %s) = %v", tc.nets, tc.remote, got)
		}
	}
}

func TestLoginLockout(t *testing.T) {
	f := newFixture(t)
	for i := range maxFails {
		if r := f.do("POST", "/api/v1/login", `{"password":"guess"}`, nil); r.status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i, r.status)
		}
	}
	r := f.do("POST", "/api/v1/login", `{"password":"`+testPassword+`"}`, nil)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("after %d failures even the right password must wait: %d", maxFails, r.status)
	}
	// The answer says for how long; failures and the lockout are audited.
	if !strings.Contains(string(r.body), "locked out for ") || !strings.Contains(string(r.body), " UTC)") {
		t.Fatalf("lockout answer does not say for how long: %s", r.body)
	}
	entries, err := f.h.Env().Store.AuditLog(t.Context(), 100)
	if err != nil {
		t.Fatal(err)
	}
	var failed, lockouts int
	for _, e := range entries {
		switch e.Action {
		case "admin.login.failed":
			failed++
		case "admin.login.lockout":
			lockouts++
			if !strings.Contains(e.Detail, "1 min") {
				t.Errorf("lockout entry %q does not say for how long", e.Detail)
			}
		}
	}
	if failed != maxFails || lockouts != 1 {
		t.Fatalf("audit log: %d failed logins, %d lockouts; want %d and 1", failed, lockouts, maxFails)
	}
}

func TestPasswordHash(t *testing.T) {
	h, err := HashPassword("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q is not PHC argon2id", h)
	}
	for _, tc := range []struct {
		hash, pw string
		ok       bool
	}{{h, "s3cret", true}, {h, "s3cret ", false}, {"", "", false}, {"$argon2id$v=19$m=0,t=0,p=0$$", "x", false}, {"plain", "plain", false}} {
		ok, _ := CheckPassword(tc.hash, tc.pw)
		if ok != tc.ok {
			t.Errorf("CheckPassword(%q, %q) = %v", tc.hash, tc.pw, ok)
		}
	}
}

func TestHandlerPanicIs500(t *testing.T) {
	RegisterRoutes(func(rt *Routes) {
		rt.API("GET /api/v1/test-panic", func(*Env, http.ResponseWriter, *http.Request) error { panic("boom") })
	})
	f := newFixture(t)
	r := f.doLocal("GET", "/api/v1/test-panic", nil, nil)
	if r.status != http.StatusInternalServerError || !bytes.Contains(r.body, []byte("boom")) {
		t.Fatalf("panicking handler: %d %s", r.status, r.body)
	}
}
