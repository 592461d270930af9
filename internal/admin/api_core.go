package admin

import (
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/palisade-sbc/palisade/internal/unit"
)

// StatusFunc returns one section of GET /api/v1/status (and of
// /api/v1/status/{section}). env.Live is nil on a stopped unit.
type StatusFunc func(env *Env, r *http.Request) (any, error)

var (
	statusMu       sync.Mutex
	statusSections = map[string]StatusFunc{}
)

// RegisterStatus adds a status section ("calls", "registrations", "peers",
// "certificates", ...) shown by GET /api/v1/status and `palisade status`.
// Call it from init.
func RegisterStatus(section string, fn StatusFunc) {
	statusMu.Lock()
	defer statusMu.Unlock()
	statusSections[section] = fn
}

var started = time.Now()

func coreRoutes(rt *Routes) {
	rt.mux.Handle("POST /api/v1/login", rt.wrap(login, false))
	rt.API("POST /api/v1/logout", logout)
	rt.API("GET /api/v1/whoami", whoami)
	rt.API("GET /api/v1/tokens", listTokens)
	rt.API("POST /api/v1/tokens", newToken)
	rt.API("DELETE /api/v1/tokens/{id}", deleteToken)
	rt.API("GET /api/v1/audit", auditLog)
	rt.API("GET /api/v1/status", status)
	rt.API("GET /api/v1/status/{section}", status)
}

func login(env *Env, w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Password string `json:"password"`
	}
	if err := DecodeJSON(r, &req); err != nil {
		return err
	}
	csrf, err := env.Auth.Login(w, r, req.Password)
	if err != nil {
		env.Auth.failLog(env).Warn("login", "admin login failed", "source", sourceOf(r), "err", err)
		return err
	}
	return JSON(w, http.StatusOK, map[string]string{"csrf_token": csrf})
}

func logout(env *Env, w http.ResponseWriter, r *http.Request) error {
	env.Auth.Logout(w, r)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func whoami(env *Env, w http.ResponseWriter, r *http.Request) error {
	p := PrincipalFrom(r)
	return JSON(w, http.StatusOK, map[string]string{"kind": p.Kind, "name": p.Name})
}

func listTokens(env *Env, w http.ResponseWriter, r *http.Request) error {
	ts, err := env.Auth.Tokens(r.Context())
	if err != nil {
		return err
	}
	return JSON(w, http.StatusOK, ts)
}

func newToken(env *Env, w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name string `json:"name"`
	}
	if err := DecodeJSON(r, &req); err != nil {
		return err
	}
	if req.Name == "" || len(req.Name) > 64 {
		return Errorf(http.StatusBadRequest, "a token needs a name of 1 to 64 characters")
	}
	secret, t, err := env.Auth.NewToken(r.Context(), req.Name, Author(r))
	if err != nil {
		return err
	}
	audit(env, r, "admin.token.new", "token "+t.Name+" ("+t.ID+")")
	return JSON(w, http.StatusCreated, struct {
		Token
		Secret string `json:"token"`
	}{t, secret})
}

func deleteToken(env *Env, w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := env.Auth.DeleteToken(r.Context(), id); err != nil {
		return err
	}
	audit(env, r, "admin.token.delete", "token "+id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func auditLog(env *Env, w http.ResponseWriter, r *http.Request) error {
	limit := 100
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 10000 {
			return Errorf(http.StatusBadRequest, "limit must be a number from 1 to 10000")
		}
		limit = n
	}
	entries, err := env.Store.AuditLog(r.Context(), limit)
	if err != nil {
		return err
	}
	return JSON(w, http.StatusOK, entries)
}

// status answers the unit section and every registered section, or one
// section when the path names it.
func status(env *Env, w http.ResponseWriter, r *http.Request) error {
	statusMu.Lock()
	sections := make(map[string]StatusFunc, len(statusSections)+1)
	for k, v := range statusSections {
		sections[k] = v
	}
	statusMu.Unlock()
	sections["unit"] = unitStatus
	names := make([]string, 0, len(sections))
	for k := range sections {
		names = append(names, k)
	}
	sort.Strings(names)
	if one := r.PathValue("section"); one != "" {
		fn, ok := sections[one]
		if !ok {
			return Errorf(http.StatusNotFound, "no status section %q (have: %v)", one, names)
		}
		v, err := fn(env, r)
		if err != nil {
			return err
		}
		return JSON(w, http.StatusOK, v)
	}
	out := make(map[string]any, len(sections))
	for _, name := range names {
		v, err := sections[name](env, r)
		if err != nil {
			out[name] = map[string]string{"error": err.Error()}
			continue
		}
		out[name] = v
	}
	return JSON(w, http.StatusOK, out)
}

func unitStatus(env *Env, r *http.Request) (any, error) {
	ver, rev := unit.Version()
	st, err := env.Config.State(r.Context())
	if err != nil {
		return nil, err
	}
	out := map[string]any{"running": env.Running(), "version": ver, "commit": rev, "config": st}
	if env.Running() {
		out["pid"] = os.Getpid()
		out["uptime"] = time.Since(started).Round(time.Second).String()
	}
	return out, nil
}
