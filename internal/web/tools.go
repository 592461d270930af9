package web

import (
	"log/slog"
	"net/http"
	"strings"

	"github.com/palisade-sbc/palisade/internal/observe"
	"github.com/palisade-sbc/palisade/internal/store"
)

// logData is the Log page: the unit's recent log and the audit log.
type logData struct {
	Audit  []store.AuditEntry
	Recent []observe.LogRecord
	Level  string
}

// logPage shows the audit log: who changed, applied, confirmed or reverted
// what, and when (newest first).
func (s *server) logPage(w http.ResponseWriter, r *http.Request) {
	v := s.newView(r.Context(), r, "Log")
	entries, err := s.env.Store.AuditLog(r.Context(), 500)
	if err != nil {
		v.Problem = "cannot read the audit log: " + err.Error()
	}
	level := slog.LevelInfo
	if err := level.UnmarshalText([]byte(r.URL.Query().Get("level"))); err != nil {
		level = slog.LevelInfo
	}
	var recent []observe.LogRecord
	if live := s.env.Live; live != nil && live.RecentLog != nil { // none on a stopped unit
		recent = live.RecentLog.Newest(500, level)
	}
	v.Data = logData{Audit: entries, Recent: recent, Level: strings.ToLower(level.String())}
	s.render(w, http.StatusOK, "log", v)
}
