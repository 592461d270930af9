package acme

import (
	"net/http"

	"github.com/palisade-sbc/palisade/internal/admin"
)

// The ACME endpoints (docs/acme.md): the state of every managed
// certificate, renewing one now, revoking one.
func init() {
	admin.RegisterRoutes(func(rt *admin.Routes) {
		rt.API("GET /api/v1/acme", apiStatus)
		rt.API("POST /api/v1/acme/{name}/renew", apiRenew)
		rt.API("POST /api/v1/acme/{name}/revoke", apiRevoke)
	})
}

func managerOf(env *admin.Env) (*Manager, error) {
	if !env.Running() {
		return nil, admin.ErrUnitStopped
	}
	m, ok := env.Unit.Subsystem(SubsystemName).(*Manager)
	if !ok {
		return nil, admin.Errorf(http.StatusServiceUnavailable, "the ACME subsystem is not running")
	}
	return m, nil
}

func apiStatus(env *admin.Env, w http.ResponseWriter, r *http.Request) error {
	m, err := managerOf(env)
	if err != nil {
		return err
	}
	st := m.Status()
	if st == nil {
		st = []Status{}
	}
	return admin.JSON(w, http.StatusOK, st)
}

func apiRenew(env *admin.Env, w http.ResponseWriter, r *http.Request) error {
	m, err := managerOf(env)
	if err != nil {
		return err
	}
	if err := m.Renew(r.PathValue("name")); err != nil {
		return admin.Errorf(http.StatusNotFound, "%s", err.Error())
	}
	return admin.JSON(w, http.StatusAccepted, map[string]string{"result": "renewal started"})
}

func apiRevoke(env *admin.Env, w http.ResponseWriter, r *http.Request) error {
	m, err := managerOf(env)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	if !m.manages(name) {
		return admin.Errorf(http.StatusNotFound, "ACME does not manage the certificate %q", name)
	}
	if err := m.Revoke(r.Context(), name); err != nil {
		return admin.Errorf(http.StatusBadGateway, "%s", err.Error())
	}
	return admin.JSON(w, http.StatusOK, map[string]string{"result": "revoked; a new certificate is being obtained"})
}
