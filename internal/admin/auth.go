package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/human"
	"github.com/palisade-sbc/palisade/internal/observe"
	"github.com/palisade-sbc/palisade/internal/store"
)

// SessionCookie is the name of the admin session cookie.
const SessionCookie = "palisade_session"

// CSRFHeader carries the session's CSRF token on unsafe requests made with
// the session cookie; HTML forms may send the form field "csrf_token" instead.
const CSRFHeader = "X-CSRF-Token"

// Principal is who makes a request.
type Principal struct {
	Kind string // "session", "token" or "local"
	// Name is the author recorded in the audit log and history,
	// e.g. "admin@127.0.0.1", "token:ci", "local:1000".
	Name string
	// CSRF is the session's CSRF token (Kind "session" only).
	CSRF string
}

type principalKey struct{}
type localKey struct{}

// PrincipalFrom returns who makes r, or nil when it carries no valid credential.
func PrincipalFrom(r *http.Request) *Principal {
	p, _ := r.Context().Value(principalKey{}).(*Principal)
	return p
}

// Author is the name to record for changes made by r.
func Author(r *http.Request) string {
	if p := PrincipalFrom(r); p != nil {
		return p.Name
	}
	return "unknown"
}

// WithLocal marks a request context as coming over the local socket from
// uid: filesystem permission on admin.sock is the credential.
func WithLocal(ctx context.Context, uid int) context.Context {
	return context.WithValue(ctx, localKey{}, uid)
}

func localUID(ctx context.Context) (int, bool) {
	uid, ok := ctx.Value(localKey{}).(int)
	return uid, ok
}

type session struct {
	csrf     string
	source   string
	lastSeen time.Time
}

// Auth holds the admin sessions, checks the password and API tokens, and
// limits login attempts per source address.
type Auth struct {
	st    store.Store
	admin atomic.Pointer[config.Admin]
	now   func() time.Time

	mu       sync.Mutex
	sessions map[string]*session // by session id
	limiter  loginLimiter

	failLogOnce sync.Once
	failLogger  *observe.LimitedLogger
}

// failLog logs failed logins at a bounded rate (a guessing flood from many
// addresses must not flood the log).
func (a *Auth) failLog(env *Env) *observe.LimitedLogger {
	a.failLogOnce.Do(func() {
		log := env.Log
		if log == nil {
			log = slog.New(slog.DiscardHandler)
		}
		a.failLogger = observe.NewLimitedLogger(log, time.Minute, 5)
	})
	return a.failLogger
}

// NewAuth returns an Auth over the token store st; the admin settings come
// from SetAdmin.
func NewAuth(st store.Store) *Auth {
	a := &Auth{st: st, now: time.Now, sessions: make(map[string]*session)}
	a.limiter.fails = make(map[string]*failState)
	a.admin.Store(&config.Admin{})
	return a
}

// SetAdmin installs the admin settings of the running configuration
// (password hash, allowed networks, session timeout).
func (a *Auth) SetAdmin(c config.Admin) { a.admin.Store(&c) }

// Settings returns the admin settings in force.
func (a *Auth) Settings() config.Admin { return *a.admin.Load() }

// ErrLockedOut is returned by Login while a source is locked out.
var ErrLockedOut = errors.New("too many failed logins from this address; try again later")

// lockedMessage says for how long the address is locked out.
func lockedMessage(wait time.Duration) string {
	wait = wait.Round(time.Second)
	return "too many failed logins from this address: it is locked out for " + human.Duration(wait) +
		" (until " + time.Now().Add(wait).UTC().Format("15:04:05") + " UTC)"
}

// auditLogin writes a login event to the audit log.
func (a *Auth) auditLogin(r *http.Request, action, detail string) {
	if a.st == nil {
		return
	}
	_ = a.st.Audit(r.Context(), store.AuditEntry{Time: time.Now().UTC(), Author: "login@" + sourceOf(r), Action: action, Detail: detail})
}

// Login checks password and, when it matches, starts a session: the cookie
// is set on w and the CSRF token returned. Failed attempts count against the
// request's source address (lockout after 5 within 15 minutes).
func (a *Auth) Login(w http.ResponseWriter, r *http.Request, password string) (string, error) {
	src := sourceOf(r)
	now := a.now()
	if wait := a.limiter.locked(src, now); wait > 0 {
		loginsTotal.WithLabelValues("locked_out").Inc()
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		return "", &Error{Status: http.StatusTooManyRequests, Message: lockedMessage(wait)}
	}
	ok, err := CheckPassword(a.Settings().PasswordHash, password)
	if err != nil || !ok {
		lock := a.limiter.fail(src, now)
		loginsTotal.WithLabelValues("bad_password").Inc()
		// Failed logins and lockouts are in the audit log (bounded: a
		// source is locked out after a few failures).
		a.auditLogin(r, "admin.login.failed", "wrong password from "+src)
		if lock > 0 {
			a.auditLogin(r, "admin.login.lockout", src+" locked out for "+human.Duration(lock))
			w.Header().Set("Retry-After", strconv.Itoa(int(lock.Seconds())))
			return "", &Error{Status: http.StatusUnauthorized, Message: "wrong password; " + lockedMessage(lock)}
		}
		return "", &Error{Status: http.StatusUnauthorized, Message: "wrong password"}
	}
	a.limiter.reset(src)
	loginsTotal.WithLabelValues("ok").Inc()
	id, csrf := randomToken(32), randomToken(32)
	a.mu.Lock()
	a.expireLocked(now)
	if len(a.sessions) >= maxSessions { // bound memory: the least recently used session goes
		var oldest string
		for k, s := range a.sessions {
			if oldest == "" || s.lastSeen.Before(a.sessions[oldest].lastSeen) {
				oldest = k
			}
		}
		delete(a.sessions, oldest)
	}
	a.sessions[id] = &session{csrf: csrf, source: src, lastSeen: now}
	a.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: id, Path: "/",
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	return csrf, nil
}

// Logout ends the session of r (if any) and clears the cookie.
func (a *Auth) Logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(SessionCookie); err == nil {
		a.mu.Lock()
		delete(a.sessions, c.Value)
		a.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

func (a *Auth) sessionTimeout() time.Duration {
	if d := a.Settings().SessionTimeout.D(); d > 0 {
		return d
	}
	return 30 * time.Minute
}

// expireLocked drops idle sessions; a.mu is held.
func (a *Auth) expireLocked(now time.Time) {
	limit := a.sessionTimeout()
	for id, s := range a.sessions {
		if now.Sub(s.lastSeen) > limit {
			delete(a.sessions, id)
		}
	}
}

// authenticate returns the principal of r: the local socket, a Bearer token
// or a session cookie, in that order; nil when none is valid.
func (a *Auth) authenticate(r *http.Request) *Principal {
	if uid, ok := localUID(r.Context()); ok {
		return &Principal{Kind: "local", Name: "local:" + strconv.Itoa(uid)}
	}
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			return nil
		}
		name, err := a.checkToken(r.Context(), strings.TrimSpace(tok))
		if err != nil {
			return nil
		}
		return &Principal{Kind: "token", Name: "token:" + name}
	}
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return nil
	}
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.sessions[c.Value]
	if s == nil {
		return nil
	}
	if now.Sub(s.lastSeen) > a.sessionTimeout() {
		delete(a.sessions, c.Value)
		return nil
	}
	s.lastSeen = now
	return &Principal{Kind: "session", Name: "admin@" + s.source, CSRF: s.csrf}
}

// sourceOf is the client address of r without the port ("local" on the socket).
func sourceOf(r *http.Request) string {
	if _, ok := localUID(r.Context()); ok {
		return "local"
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// loginLimiter locks a source out after maxFails failed logins within
// failWindow; the lockout doubles with every further failure, up to maxLock.
type loginLimiter struct {
	mu    sync.Mutex
	fails map[string]*failState
}

type failState struct {
	n     int
	first time.Time
	until time.Time
}

// maxSessions bounds the sessions kept at once.
const maxSessions = 1000

const (
	maxFails   = 5
	failWindow = 15 * time.Minute
	baseLock   = time.Minute
	maxLock    = time.Hour
)

func (l *loginLimiter) locked(src string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if f := l.fails[src]; f != nil && now.Before(f.until) {
		return f.until.Sub(now)
	}
	return 0
}

// fail counts a failed login and returns how long the source is now
// locked out (0: not locked).
func (l *loginLimiter) fail(src string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.fails[src]
	if f == nil || now.Sub(f.first) > failWindow && now.After(f.until) {
		if len(l.fails) > 10000 { // bound memory under a flood from many sources
			clear(l.fails)
		}
		f = &failState{first: now}
		l.fails[src] = f
	}
	f.n++
	if f.n >= maxFails {
		lock := min(baseLock<<min(f.n-maxFails, 6), maxLock)
		f.until = now.Add(lock)
		return lock
	}
	return 0
}

func (l *loginLimiter) reset(src string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.fails, src)
}

// Token is an API token as listed (its secret is shown only once, on creation).
type Token struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	Author  string    `json:"author"`
	Hash    string    `json:"hash,omitempty"` // SHA-256 of the secret, hex; never sent out
}

const tokenPrefix = "admin/tokens/"

// NewToken makes an API token named name and returns the token string to
// send as "Authorization: Bearer <token>". Only its hash is stored.
func (a *Auth) NewToken(ctx context.Context, name, author string) (string, Token, error) {
	id := hex.EncodeToString([]byte(randomToken(6)))[:12]
	secret := randomToken(32)
	sum := sha256.Sum256([]byte(secret))
	t := Token{ID: id, Name: name, Created: a.now().UTC(), Author: author, Hash: hex.EncodeToString(sum[:])}
	b, err := json.Marshal(t)
	if err != nil {
		return "", Token{}, err
	}
	if err := a.st.Put(ctx, tokenPrefix+id, b); err != nil {
		return "", Token{}, fmt.Errorf("store token: %w", err)
	}
	t.Hash = ""
	return "pal_" + id + "_" + secret, t, nil
}

// Tokens lists the API tokens without their hashes.
func (a *Auth) Tokens(ctx context.Context) ([]Token, error) {
	kvs, err := a.st.List(ctx, tokenPrefix)
	if err != nil {
		return nil, err
	}
	out := make([]Token, 0, len(kvs))
	for _, kv := range kvs {
		var t Token
		if json.Unmarshal(kv.Value, &t) != nil {
			continue
		}
		t.Hash = ""
		out = append(out, t)
	}
	return out, nil
}

// DeleteToken revokes the token with id.
func (a *Auth) DeleteToken(ctx context.Context, id string) error {
	if _, err := a.st.Get(ctx, tokenPrefix+id); err != nil {
		return err
	}
	return a.st.Delete(ctx, tokenPrefix+id)
}

// checkToken returns the token's name when tok is a valid API token.
func (a *Auth) checkToken(ctx context.Context, tok string) (string, error) {
	rest, ok := strings.CutPrefix(tok, "pal_")
	id, secret, ok2 := strings.Cut(rest, "_")
	if !ok || !ok2 || len(id) != 12 || strings.ContainsAny(id, "/") {
		return "", errors.New("malformed token")
	}
	b, err := a.st.Get(ctx, tokenPrefix+id)
	if err != nil {
		return "", err
	}
	var t Token
	if err := json.Unmarshal(b, &t); err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare([]byte(hex.EncodeToString(sum[:])), []byte(t.Hash)) != 1 {
		return "", errors.New("wrong token")
	}
	return t.Name, nil
}
