package admin

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/observe"
)

// fakeUnits is a cluster of this unit a, unit b that answers and unit c
// that does not; a request with UnitHeader "good" comes from b.
type fakeUnits struct{ asked []string }

func (f *fakeUnits) Unit() string { return "a" }

func (f *fakeUnits) Verify(r *http.Request) (string, error) {
	if r.Header.Get(UnitHeader) == "good" {
		return "b", nil
	}
	return "", errors.New("unit signature does not verify")
}

func (f *fakeUnits) Get(_ context.Context, pathQuery string) (map[string][]byte, map[string]error) {
	f.asked = append(f.asked, pathQuery)
	b, _ := json.Marshal([]observe.CallRow{{ID: "from-b", State: "ended", Start: time.Now().Add(time.Hour)}})
	return map[string][]byte{"b": b}, map[string]error{"c": errors.New("connection refused")}
}

// TestClusterWideCalls: a user's listing merges the other units' rows
// with the unit; a unit's signed request lists only this unit, may list
// nothing but the call listings, and a bad signature is refused.
func TestClusterWideCalls(t *testing.T) {
	f, _ := observeFixture(t)
	units := &fakeUnits{}
	f.h.env.Live.Units = units

	r := f.do("GET", "/api/v1/calls?since=1h", nil, nil)
	var rows []observe.CallRow
	if err := json.Unmarshal(r.body, &rows); err != nil || r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if len(rows) < 2 || rows[0].ID != "from-b" || rows[0].Unit != "b" || rows[1].Unit != "a" {
		t.Fatalf("merged rows: %+v", rows)
	}
	if len(units.asked) != 1 || !strings.Contains(units.asked[0], "local=1") || !strings.Contains(units.asked[0], "since=1h") {
		t.Fatalf("asked the other units: %q", units.asked)
	}
	if m, _ := url.PathUnescape(r.header.Get(MissingUnitsHeader)); !strings.Contains(m, "c (connection refused)") {
		t.Fatalf("missing units header: %q", m)
	}

	// The CSV export merged cluster-wide names each row's unit in its last column.
	r = f.do("GET", "/api/v1/cdr?format=csv&since=1h", nil, nil)
	recs, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
	if err != nil || r.status != 200 || len(recs) < 3 {
		t.Fatalf("cluster-wide CSV: %d %v %s", r.status, err, r.body)
	}
	unitCol := slices.Index(recs[0], "unit")
	if unitCol < 0 || recs[1][unitCol] != "a" || recs[2][0] != "from-b" || recs[2][unitCol] != "b" { // oldest first
		t.Fatalf("cluster-wide CSV rows: %q", recs)
	}

	f.cookie = nil // from here on, only the unit signature
	r = f.do("GET", "/api/v1/calls", nil, map[string]string{UnitHeader: "good"})
	rows = nil
	if err := json.Unmarshal(r.body, &rows); err != nil || r.status != 200 {
		t.Fatalf("b's signed request: %d %s", r.status, r.body)
	}
	for _, row := range rows {
		if row.Unit != "" {
			t.Fatalf("a unit's request got a cluster-wide listing: %+v", rows)
		}
	}
	if len(units.asked) != 2 { // the listings of calls and CSV above
		t.Fatalf("a unit's request made this unit ask the others: %q", units.asked)
	}
	for _, tc := range []struct {
		method, path, sig string
		want              int
	}{
		{"GET", "/api/v1/config/running", "good", 403},
		{"POST", "/api/v1/cdr", "good", 403},
		{"GET", "/api/v1/cdr", "bad", 401},
	} {
		if r := f.do(tc.method, tc.path, nil, map[string]string{UnitHeader: tc.sig}); r.status != tc.want {
			t.Errorf("%s %s signed %s: %d %s, want %d", tc.method, tc.path, tc.sig, r.status, r.body, tc.want)
		}
	}
}
