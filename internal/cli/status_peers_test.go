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

// Targets of a peer are listed under it with their own state, so that a
// trunk that stays inactive shows which datacentre answered what.
func TestPrintPeerTargets(t *testing.T) {
	b, _ := json.Marshal([]observe.PeerStatus{{Name: "teams", Up: true, State: "up", Keepalive: true, Targets: []observe.PeerTarget{
		{Host: "sip.pstnhub.microsoft.com", Address: "52.114.1.1:5061", Transport: "tls", LastStatus: 403, LastError: "403 Forbidden"},
		{Host: "sip2.pstnhub.microsoft.com", Address: "52.114.2.2:5061", Transport: "tls", Up: true, LastStatus: 200},
	}}})
	var out bytes.Buffer
	printPeers(&out, b)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 || !strings.Contains(lines[2], "sip.pstnhub.microsoft.com 52.114.1.1:5061/tls") || !strings.Contains(lines[2], "down") ||
		!strings.Contains(lines[2], "answer 403") || !strings.Contains(lines[3], "up") || !strings.Contains(lines[3], "answer 200") {
		t.Fatalf("status peers:\n%s", out.String())
	}
}
