package cli

import (
	"encoding/csv"
	"encoding/json"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/observe"
	"github.com/palisade-sbc/palisade/internal/store"
)

// TestObserveCommandsOnDataDirectory runs calls, cdr and trace on a stopped
// unit's data directory holding two call records.
func TestObserveCommandsOnDataDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	rec := observe.NewRecorder(st, nil, nil)
	now := time.Now()
	rec.CallStarted(observe.CallStart{ID: "old", Time: now.Add(-3 * time.Hour), Direction: observe.DirInbound,
		A: observe.CallLeg{From: "sip:+4610@trunk", To: "sip:1001@pbx", Remote: netip.MustParseAddrPort("203.0.113.5:5061")}})
	rec.CallAnswered(observe.CallAnswer{ID: "old", Time: now.Add(-3*time.Hour + time.Second)})
	rec.CallEnded(observe.CallEnd{ID: "old", Time: now.Add(-3*time.Hour + time.Minute), Code: 200, EndedBy: observe.EndedByCaller})
	rec.CallStarted(observe.CallStart{ID: "new", Time: now.Add(-time.Minute), Direction: observe.DirOutbound,
		A: observe.CallLeg{From: "sip:1002@pbx", To: "sip:4687@pbx"}})
	rec.CallEnded(observe.CallEnd{ID: "new", Time: now, Code: 486, Reason: "Busy Here", EndedBy: observe.EndedByCallee})
	rec.Close() // writes the queued records
	st.Close()

	out := mustCLI(t, dir, "cdr")
	if !strings.Contains(out, "486 Busy Here") || !strings.Contains(out, "+4610") || strings.Count(out, "\n") != 3 {
		t.Errorf("cdr:\n%s", out)
	}
	rows, err := csv.NewReader(strings.NewReader(mustCLI(t, dir, "cdr", "--csv", "--since", "1h"))).ReadAll()
	if err != nil || len(rows) != 2 || rows[1][0] != "new" {
		t.Errorf("cdr --csv --since 1h: %v %v", rows, err)
	}
	var cdrs []observe.CDR
	if err := json.Unmarshal([]byte(mustCLI(t, dir, "cdr", "--json")), &cdrs); err != nil || len(cdrs) != 2 || cdrs[0].Duration != 59*time.Second {
		t.Errorf("cdr --json: %+v %v", cdrs, err)
	}

	out = mustCLI(t, dir, "calls", "--ended", "--since", "2h")
	if !strings.Contains(out, "new") || strings.Contains(out, "old") {
		t.Errorf("calls --ended --since 2h:\n%s", out)
	}
	if out := mustCLI(t, dir, "calls", "--active"); !strings.Contains(out, "no calls") {
		t.Errorf("calls --active:\n%s", out)
	}
	var calls []observe.CallRow
	if err := json.Unmarshal([]byte(mustCLI(t, dir, "calls", "--json", "--result", "failed")), &calls); err != nil || len(calls) != 1 || calls[0].ID != "new" {
		t.Errorf("calls --result failed: %+v %v", calls, err)
	}

	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"trace", "new"}, 1, "not running"},
		{[]string{"trace"}, 1, "not running"}, // the last 15 minutes, from the running unit
		{[]string{"trace", "--svg", "x.svg"}, 2, "needs a CALL-ID"},
		{[]string{"trace", "a", "--since", "1h"}, 2, "not both"},
		{[]string{"calls", "--active", "--ended"}, 2, "exclude"},
		{[]string{"cdr", "--since", "soon"}, 1, "since"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := palisade(t, dir, tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.msg) {
				t.Errorf("exit %d, stderr %q; want exit %d with %q", r.code, r.stderr, tc.code, tc.msg)
			}
		})
	}
}
