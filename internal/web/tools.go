package web

import (
	"net/http"
)

// logPage shows the audit log: who changed, applied, confirmed or reverted
// what, and when (newest first).
func (s *server) logPage(w http.ResponseWriter, r *http.Request) {
	v := s.newView(r.Context(), r, "Log")
	entries, err := s.env.Store.AuditLog(r.Context(), 500)
	if err != nil {
		v.Problem = "cannot read the audit log: " + err.Error()
	}
	v.Data = entries
	s.render(w, http.StatusOK, "log", v)
}
