package admin

import "net/http"

// The "ha" status section: the takeover of calls between the units of a
// cluster (internal/ha/takeover registers its source with observe); null
// on a unit without floating addresses.
func init() {
	RegisterStatus("ha", func(env *Env, r *http.Request) (any, error) {
		if s := observeService(env); s != nil {
			if src, ok := s.Sources.Get("ha"); ok {
				return src.Status(r.Context())
			}
		}
		return nil, nil
	})
}
