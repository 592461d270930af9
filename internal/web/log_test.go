package web

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/palisade-sbc/palisade/internal/admin"
	"github.com/palisade-sbc/palisade/internal/observe"
)

// The Log page shows the unit's newest log records from the ring the
// composition root gives it, filtered by level; a stopped unit has none.
func TestLogPageShowsRecentLog(t *testing.T) {
	ring := observe.NewLogRing(observe.LogRingSize)
	u := newTestUnitWith(t, func(env *admin.Env) { env.Live = &admin.Live{RecentLog: ring} })
	log := slog.New(ring.Handler(slog.NewTextHandler(io.Discard, nil)))
	log.Info("peer came up", "peer", "itsp")
	log.Warn("certificate expires soon", "name", "SBC at HQ")
	c := u.client(t)
	u.login(t, c)
	page := u.get(t, c, "/tools/log", http.StatusOK)
	if !strings.Contains(page, "peer came up") || !strings.Contains(page, "certificate expires soon") || !strings.Contains(page, "peer=itsp") {
		t.Errorf("the recent log is not shown: %s", excerpt(page, "Recent log"))
	}
	if page := u.get(t, c, "/tools/log?level=warn", http.StatusOK); strings.Contains(page, "peer came up") || !strings.Contains(page, "certificate expires soon") {
		t.Errorf("level warn: %s", excerpt(page, "Recent log"))
	}

	stopped := newTestUnit(t)
	c = stopped.client(t)
	stopped.login(t, c)
	if page := stopped.get(t, c, "/tools/log", http.StatusOK); !strings.Contains(page, "Nothing logged matches.") {
		t.Errorf("without a running unit: %s", excerpt(page, "Recent log"))
	}
}
