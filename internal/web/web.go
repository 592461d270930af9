// Package web is the browser administration of the unit (SPEC §2.8): server
// rendered pages (html/template, assets embedded with go:embed, a little
// JavaScript) with the tabs of the seed's appliance. The composition root
// (internal/cli/wire.go) mounts it on the admin handler with Mount; every
// change goes through the same lifecycle.Manager the JSON API uses, into the
// preliminary configuration.
package web

import (
	"embed"
	"errors"
	"io/fs"
	"net/http"

	"github.com/palisade-sbc/palisade/internal/admin"
)

//go:embed assets templates
var files embed.FS

// Mount registers the web admin's pages on rt; pass it to admin.NewHandler.
// The pages use what rt.Env() holds (store, lifecycle, sessions, and the
// running subsystems in Env.Live).
func Mount(rt *admin.Routes) {
	s := newServer(rt.Env())
	assets, _ := fs.Sub(files, "assets")
	rt.Page("GET /assets/", http.StripPrefix("/assets/", cacheAssets(http.FileServerFS(assets))))
	rt.Page("GET /login", http.HandlerFunc(s.loginPage))
	rt.Page("POST /login", http.HandlerFunc(s.loginPost))
	rt.Page("POST /logout", s.auth(s.logout))
	rt.Page("GET /{$}", http.RedirectHandler("/dashboard", http.StatusSeeOther))
	rt.Page("GET /dashboard", s.auth(s.dashboardPage))
	rt.Page("GET /help/configuration", s.auth(s.helpPage))
	s.lifecycleRoutes(rt)
	s.certRoutes(rt)
	for _, p := range configPages {
		rt.Page("GET "+p.Path, s.auth(s.showPage(p)))
		rt.Page("POST "+p.Path, s.auth(s.savePage(p)))
	}
	rt.Page("POST /traffic/profile", s.auth(s.applyProfile))
	rt.Page("GET /tools/status", s.auth(s.static("status")))
	rt.Page("GET /tools/log", s.auth(s.logPage))
	rt.Page("GET /tools/log/download", s.auth(s.logDownload))
	rt.Page("GET /tools/calls", s.auth(s.static("calls")))
	rt.Page("GET /tools/diagnose", s.auth(s.static("diagnose")))
	rt.Page("GET /tools/route", s.auth(s.routePage))
	rt.Page("GET /tools/ping", s.auth(s.pingPage))
	rt.Page("POST /tools/ping", s.auth(s.pingPage))
	rt.Page("GET /tools/call", s.auth(s.callPage))
	rt.Page("POST /tools/call", s.auth(s.callPage))
}

func cacheAssets(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=300")
		h.ServeHTTP(w, r)
	})
}

// server holds what the pages need.
type server struct {
	env *admin.Env
}

func newServer(env *admin.Env) *server { return &server{env: env} }

// auth sends requests without a session to the login page.
func (s *server) auth(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if admin.PrincipalFrom(r) == nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/login?next="+r.URL.Path, http.StatusSeeOther)
				return
			}
			http.Error(w, "log in first", http.StatusUnauthorized)
			return
		}
		h(w, r)
	})
}

func (s *server) loginPage(w http.ResponseWriter, r *http.Request) {
	if admin.PrincipalFrom(r) != nil {
		http.Redirect(w, r, "/dashboard", http.StatusSeeOther)
		return
	}
	s.renderLogin(w, r, http.StatusOK, "")
}

func (s *server) loginPost(w http.ResponseWriter, r *http.Request) {
	_, err := s.env.Auth.Login(w, r, r.PostFormValue("password"))
	if err != nil {
		status := http.StatusUnauthorized
		var ae *admin.Error
		if errors.As(err, &ae) {
			status = ae.Status
		}
		if s.env.Log != nil {
			s.env.Log.Warn("web admin login failed", "remote", r.RemoteAddr, "err", err)
		}
		s.renderLogin(w, r, status, err.Error())
		return
	}
	next := r.PostFormValue("next")
	if next == "" || next[0] != '/' || len(next) > 1 && (next[1] == '/' || next[1] == '\\') {
		next = "/dashboard"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *server) logout(w http.ResponseWriter, r *http.Request) {
	s.env.Auth.Logout(w, r)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
