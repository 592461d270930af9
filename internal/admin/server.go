package admin

import (
	"context"
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler is the admin HTTP handler: the same one serves the HTTPS
// listener, admin.sock and the CLI working on a stopped unit's data directory.
type Handler struct {
	env *Env
	mux *http.ServeMux
}

// NewHandler builds the handler with the core routes, every route
// registered with RegisterRoutes and those of mounts (the web admin's, given
// by the composition root). env.Auth is created when nil.
func NewHandler(env *Env, mounts ...func(*Routes)) *Handler {
	if env.Auth == nil {
		env.Auth = NewAuth(env.Store)
	}
	h := &Handler{env: env, mux: http.NewServeMux()}
	rt := &Routes{env: env, mux: h.mux}
	coreRoutes(rt)
	configRoutes(rt)
	for _, fn := range append(registered(), mounts...) {
		fn(rt)
	}
	h.mux.Handle("GET /metrics", promhttp.Handler())
	h.mux.HandleFunc("/api/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeError(env, w, r, Errorf(http.StatusNotFound, "no such API endpoint: %s %s", r.Method, r.URL.Path))
	})
	return h
}

// Env returns the handler's environment.
func (h *Handler) Env() *Env { return h.env }

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		// A bug in one handler answers 500 and is logged; it never takes
		// the unit (or the CLI working in-process) down.
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			panicsTotal.Inc()
			writeError(h.env, w, r, fmt.Errorf("handler panic: %v", v))
		}
	}()
	securityHeaders(w.Header())
	_, local := localUID(r.Context())
	if !local && !h.env.Auth.allowed(r.RemoteAddr) {
		deniedTotal.WithLabelValues("network").Inc()
		writeError(h.env, w, r, Errorf(http.StatusForbidden, "your address is not in admin.allowed_networks"))
		return
	}
	p := h.env.Auth.authenticate(r)
	if up, err := unitPrincipal(h.env, r); err != nil { // units.go: another unit of the cluster asks
		deniedTotal.WithLabelValues("unit").Inc()
		writeError(h.env, w, r, err)
		return
	} else if up != nil {
		p = up
	}
	if p != nil {
		r = r.WithContext(context.WithValue(r.Context(), principalKey{}, p))
	}
	isLogin := r.URL.Path == "/api/v1/login"
	if strings.HasPrefix(r.URL.Path, "/api/v1/") && p == nil && !isLogin {
		writeError(h.env, w, r, errUnauthorized)
		return
	}
	if p != nil && p.Kind == "session" && !safeMethod(r.Method) && !isLogin && !csrfOK(w, r, p.CSRF) {
		deniedTotal.WithLabelValues("csrf").Inc()
		writeError(h.env, w, r, Errorf(http.StatusForbidden, "missing or wrong CSRF token (send the %s header from the login answer)", CSRFHeader))
		return
	}
	h.mux.ServeHTTP(w, r)
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// csrfOK checks the X-CSRF-Token header, or for HTML forms (urlencoded or
// multipart) the form field csrf_token. Form bodies are bounded by maxBody.
func csrfOK(w http.ResponseWriter, r *http.Request, want string) bool {
	got := r.Header.Get(CSRFHeader)
	if got == "" {
		ct := r.Header.Get("Content-Type")
		if strings.HasPrefix(ct, "application/x-www-form-urlencoded") || strings.HasPrefix(ct, "multipart/form-data") {
			r.Body = http.MaxBytesReader(w, r.Body, maxBody)
			got = r.PostFormValue("csrf_token") // parses multipart too (32 MB in memory at most)
		}
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func securityHeaders(h http.Header) {
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	h.Set("Strict-Transport-Security", "max-age=31536000")
	h.Set("Cache-Control", "no-store")
}

// allowed reports whether remote (host:port) is in admin.allowed_networks.
// An empty list allows no address: the admin is then reachable over
// admin.sock only (the safe reading of a list that was emptied by mistake).
func (a *Auth) allowed(remote string) bool {
	nets := a.Settings().AllowedNetworks
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	for _, n := range nets {
		pfx, err := netip.ParsePrefix(n)
		if err != nil {
			if one, err2 := netip.ParseAddr(n); err2 == nil && one.Unmap() == ip {
				return true
			}
			continue
		}
		if pfx.Contains(ip) {
			return true
		}
	}
	return false
}
