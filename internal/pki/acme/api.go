package acme

import (
	"net/http"

	"github.com/palisade-sbc/palisade/internal/admin"
)

// Mount returns the ACME endpoints (docs/acme.md) of m for admin.NewHandler:
// the state of every managed certificate, renewing one now, revoking one.
// With a nil m (a stopped unit's data directory) they answer that the unit
// is not running.
func Mount(m *Manager) func(*admin.Routes) {
	bind := func(fn func(*Manager, *admin.Env, http.ResponseWriter, *http.Request) error) admin.HandlerFunc {
		return func(env *admin.Env, w http.ResponseWriter, r *http.Request) error {
			if m == nil || !env.Running() {
				return admin.ErrUnitStopped
			}
			return fn(m, env, w, r)
		}
	}
	return func(rt *admin.Routes) {
		rt.API("GET /api/v1/acme", bind(apiStatus))
		rt.API("POST /api/v1/acme/{name}/renew", bind(apiRenew))
		rt.API("POST /api/v1/acme/{name}/revoke", bind(apiRevoke))
	}
}

func apiStatus(m *Manager, env *admin.Env, w http.ResponseWriter, r *http.Request) error {
	st := m.Status()
	if st == nil {
		st = []Status{}
	}
	return admin.JSON(w, http.StatusOK, st)
}

func apiRenew(m *Manager, env *admin.Env, w http.ResponseWriter, r *http.Request) error {
	if err := m.Renew(r.PathValue("name")); err != nil {
		return admin.Errorf(http.StatusNotFound, "%s", err.Error())
	}
	return admin.JSON(w, http.StatusAccepted, map[string]string{"result": "renewal started"})
}

func apiRevoke(m *Manager, env *admin.Env, w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if !m.manages(name) {
		return admin.Errorf(http.StatusNotFound, "ACME does not manage the certificate %q", name)
	}
	if err := m.Revoke(r.Context(), name); err != nil {
		return admin.Errorf(http.StatusBadGateway, "%s", err.Error())
	}
	return admin.JSON(w, http.StatusOK, map[string]string{"result": "revoked; a new certificate is being obtained"})
}
