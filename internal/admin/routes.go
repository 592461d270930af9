// Package admin is the unit's administration surface: the JSON API under
// /api/v1 (sessions, API tokens, CSRF, the whole configuration lifecycle),
// /metrics, and the same API on the local socket DATA/admin.sock.
//
// # Adding API routes (for feature packages)
//
// Put your endpoints in a file of this package named after your feature
// (e.g. internal/admin/certs.go, owned by you) and register them at init time
// with RegisterRoutes. A package of its own (like internal/web) exports a
// Mount(*admin.Routes) instead, which the composition root passes to
// NewHandler, so that nothing is wired by the side effect of an import:
//
//	func init() {
//		admin.RegisterRoutes(func(rt *admin.Routes) {
//			rt.API("GET /api/v1/certs", listCerts)          // needs a session, token or admin.sock
//			rt.API("POST /api/v1/certs/{name}/csr", newCSR) // CSRF is checked for you
//		})
//	}
//
//	func listCerts(env *admin.Env, w http.ResponseWriter, r *http.Request) error {
//		certs, err := pki.List(r.Context(), env.Store)
//		if err != nil {
//			return err // mapped to a status in one place (see errors.go)
//		}
//		return admin.JSON(w, http.StatusOK, certs)
//	}
//
// A HandlerFunc returns an error instead of writing one: lifecycle errors,
// config.Errors (422 with every field path), store.ErrNotFound (404) and
// *admin.Error (any status) are mapped by writeError. Use admin.Author(r) as
// the author of every change, admin.DecodeJSON to read a request body
// strictly. Env.Live gives the running subsystems, each through a small
// interface of this package (nil when the CLI works on a stopped unit's data
// directory; answer with admin.ErrUnitStopped then). The composition root
// (internal/cli/wire.go) fills it; handlers never look subsystems up.
//
// rt.Page registers a handler that does not require authentication (the web
// admin's login page and assets); it must check admin.PrincipalFrom(r)
// itself. Every request still passes the access list, the security headers
// and, for cookie sessions on unsafe methods, the CSRF check (header
// X-CSRF-Token or form field csrf_token).
package admin

import (
	"log/slog"
	"net/http"
	"sync"

	"github.com/palisade-sbc/palisade/internal/lifecycle"
	"github.com/palisade-sbc/palisade/internal/store"
)

// Env is what every handler may use.
type Env struct {
	Store  store.Store
	Config lifecycle.Manager
	// Live is what the running unit's subsystems offer; nil when the
	// handler serves a stopped unit's data directory in-process (CLI
	// without a running unit).
	Live *Live
	Log  *slog.Logger
	// Auth holds sessions and tokens; the web admin logs users in through it.
	Auth *Auth
	// DataDir is the unit's data directory.
	DataDir string
}

// Running reports whether a unit runs behind this handler.
func (e *Env) Running() bool { return e.Live != nil }

// HandlerFunc is an API handler; a returned error is written by writeError.
type HandlerFunc func(env *Env, w http.ResponseWriter, r *http.Request) error

// Routes collects the endpoints of one handler.
type Routes struct {
	env *Env
	mux *http.ServeMux
}

// API registers an endpoint that requires authentication (session cookie,
// Bearer token, or the local socket). pattern is an http.ServeMux pattern
// with method, e.g. "GET /api/v1/certs/{name}".
func (rt *Routes) API(pattern string, h HandlerFunc) {
	rt.mux.Handle(pattern, rt.wrap(h, true))
}

// Page registers a handler that does not require authentication (web admin
// pages decide themselves, with PrincipalFrom, whether to show a login form).
func (rt *Routes) Page(pattern string, h http.Handler) {
	rt.mux.Handle(pattern, h)
}

// Env returns the environment the routes are built for.
func (rt *Routes) Env() *Env { return rt.env }

func (rt *Routes) wrap(h HandlerFunc, needAuth bool) http.Handler {
	env := rt.env
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if needAuth && PrincipalFrom(r) == nil {
			writeError(env, w, r, errUnauthorized)
			return
		}
		if err := h(env, w, r); err != nil {
			writeError(env, w, r, err)
		}
	})
}

var (
	registryMu sync.Mutex
	registry   []func(*Routes)
)

// RegisterRoutes adds a function that registers routes on every admin
// handler built afterwards. Call it from init.
func RegisterRoutes(fn func(*Routes)) {
	registryMu.Lock()
	defer registryMu.Unlock()
	registry = append(registry, fn)
}

func registered() []func(*Routes) {
	registryMu.Lock()
	defer registryMu.Unlock()
	return append([](func(*Routes)){}, registry...)
}
