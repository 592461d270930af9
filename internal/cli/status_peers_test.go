package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/observe"
)

// `palisade status peers` shows each peer's state and since when.
func TestPrintPeersSince(t *testing.T) {
	since := time.Date(2026, 3, 4, 5, 6, 7, 0, time.Local)
	b, _ := json.Marshal([]observe.PeerStatus{{Name: "itsp", State: "down", Since: since, Failures: 3, Keepalive: true, LastError: "timeout"}})
	var out bytes.Buffer
	printPeers(&out, b)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "SINCE") || !strings.Contains(lines[1], "down") ||
		!strings.Contains(lines[1], "2026-03-04 05:06:07") {
		t.Fatalf("status peers:\n%s", out.String())
	}
}
