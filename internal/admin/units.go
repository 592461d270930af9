package admin

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// UnitHeader carries a request one unit of a cluster makes to another's
// admin API: the asking unit, the time and a MAC over both and the
// request, with the secret the units share in etcd (internal/cluster).
const UnitHeader = "X-Palisade-Unit"

// MissingUnitsHeader names, in a cluster-wide listing, the units whose
// part is missing and why.
const MissingUnitsHeader = "X-Palisade-Missing-Units"

// UnitPeers are the other units of a cluster as the admin API asks them
// (internal/cluster implements it).
type UnitPeers interface {
	// Unit is this unit's name.
	Unit() string
	// Verify checks r's UnitHeader and returns the asking unit.
	Verify(r *http.Request) (string, error)
	// Get sends GET pathQuery to every other live unit and returns their
	// answers' bodies (2xx only) by unit, and the reasons of those that
	// did not answer.
	Get(ctx context.Context, pathQuery string) (map[string][]byte, map[string]error)
}

// unitPaths are what another unit may ask: the listings merged across
// the cluster, nothing else.
var unitPaths = map[string]bool{"/api/v1/cdr": true, "/api/v1/calls": true}

// unitPrincipal is the principal of a request another unit signed, nil
// when r carries no UnitHeader; an error when the header is not valid or
// the request is not one a unit may make.
func unitPrincipal(env *Env, r *http.Request) (*Principal, error) {
	if r.Header.Get(UnitHeader) == "" {
		return nil, nil
	}
	if env.Live == nil || env.Live.Units == nil {
		return nil, Errorf(http.StatusUnauthorized, "this unit is not in a cluster")
	}
	name, err := env.Live.Units.Verify(r)
	if err != nil {
		return nil, Errorf(http.StatusUnauthorized, "%v", err)
	}
	if r.Method != http.MethodGet || !unitPaths[r.URL.Path] {
		return nil, Errorf(http.StatusForbidden, "a unit of the cluster may only list call records")
	}
	return &Principal{Kind: "unit", Name: "unit:" + name}, nil
}

// clusterWide reports whether r's listing is to include the other units:
// a running unit of a cluster, asked by a user (not by another unit) and
// without local=1.
func clusterWide(env *Env, r *http.Request) bool {
	if env.Live == nil || env.Live.Units == nil || queryFlag(r, "local") {
		return false
	}
	p := PrincipalFrom(r)
	return p == nil || p.Kind != "unit"
}

// fromOtherUnits asks the other units for the same listing (r's path and
// query with local=1) and returns their rows with unit set; units that do
// not answer are named in MissingUnitsHeader and logged.
func fromOtherUnits[T any](env *Env, w http.ResponseWriter, r *http.Request, unit func(*T, string)) []T {
	q := r.URL.Query()
	q.Set("local", "1")
	q.Del("format")
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	bodies, failed := env.Live.Units.Get(ctx, r.URL.Path+"?"+q.Encode())
	var rows []T
	for u, b := range bodies {
		var part []T
		if err := json.Unmarshal(b, &part); err != nil {
			failed[u] = fmt.Errorf("unreadable answer: %w", err)
			continue
		}
		for i := range part {
			unit(&part[i], u)
		}
		rows = append(rows, part...)
	}
	if len(failed) > 0 {
		var miss []string
		for u, err := range failed {
			miss = append(miss, u+" ("+err.Error()+")")
			env.Log.Warn("a unit's call records are missing from a cluster-wide listing", "unit", u, "err", err)
		}
		slices.Sort(miss)
		w.Header().Set(MissingUnitsHeader, url.PathEscape(strings.Join(miss, "; ")))
	}
	return rows
}

// byStart orders merged rows by start time (newest first when desc), ties
// by id, and keeps at most limit (0: all).
func byStart[T any](rows []T, key func(*T) (time.Time, string), desc bool, limit int) []T {
	slices.SortStableFunc(rows, func(a, b T) int {
		ta, ia := key(&a)
		tb, ib := key(&b)
		c := cmp.Or(ta.Compare(tb), strings.Compare(ia, ib))
		if desc {
			return -c
		}
		return c
	})
	if limit > 0 && len(rows) > limit {
		rows = rows[:limit]
	}
	return rows
}
