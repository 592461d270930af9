package observe

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/palisade-sbc/palisade/internal/store"
)

// ListCDRs returns the stored records of calls that started at or after
// since (zero: all), oldest first. Records that do not decode are skipped
// and counted in skipped.
func ListCDRs(ctx context.Context, st store.Reader, since time.Time) (cdrs []CDR, skipped int, err error) {
	kvs, err := st.List(ctx, cdrPrefix)
	if err != nil {
		return nil, 0, fmt.Errorf("list call records: %w", err)
	}
	from := ""
	if !since.IsZero() {
		from = cdrPrefix + since.UTC().Format(cdrTimeLayout)
	}
	for _, kv := range kvs {
		if kv.Key < from { // keys sort by start time
			continue
		}
		var c CDR
		if err := json.Unmarshal(kv.Value, &c); err != nil {
			skipped++
			continue
		}
		cdrs = append(cdrs, c)
	}
	return cdrs, skipped, nil
}

// PruneCDRs deletes the records of calls that started before cutoff and
// returns how many it deleted.
func PruneCDRs(ctx context.Context, st store.Store, cutoff time.Time) (int, error) {
	kvs, err := st.List(ctx, cdrPrefix)
	if err != nil {
		return 0, fmt.Errorf("list call records: %w", err)
	}
	limit := cdrPrefix + cutoff.UTC().Format(cdrTimeLayout)
	var old []string
	for _, kv := range kvs {
		if kv.Key >= limit {
			break
		}
		old = append(old, kv.Key)
	}
	// Delete in bounded transactions so that a large backlog does not hold
	// the store for long.
	const batch = 500
	n := 0
	for len(old) > 0 {
		part := old[:min(batch, len(old))]
		old = old[len(part):]
		err := st.Update(ctx, func(tx store.Tx) error {
			for _, k := range part {
				if err := tx.Delete(ctx, k); err != nil && err != store.ErrNotFound {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return n, fmt.Errorf("prune call records: %w", err)
		}
		n += len(part)
		cdrPruned.Add(float64(len(part)))
	}
	return n, nil
}

// CSVHeader names the columns WriteCSV writes (documented in docs/cdr.md).
var CSVHeader = []string{
	"id", "direction", "start", "answer", "end", "duration_s", "code", "reason", "ended_by",
	"a_interface", "a_transport", "a_from", "a_to", "a_call_id", "a_remote",
	"b_interface", "b_transport", "b_from", "b_to", "b_call_id", "b_remote", "b_peer",
	"a_codec", "a_srtp", "a_packets_in", "a_packets_out", "a_lost",
	"b_codec", "b_srtp", "b_packets_in", "b_packets_out", "b_lost",
	"a_jitter_ms", "b_jitter_ms", // appended last: existing columns keep their positions
	"unit", // the unit of a cluster that carried the call (empty on a single unit)
}

// WriteCSV writes records as CSV with a header row. Times are RFC 3339 in UTC.
func WriteCSV(w io.Writer, cdrs []CDR) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	ts := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	addr := func(l CallLeg) string {
		if !l.Remote.IsValid() {
			return ""
		}
		return l.Remote.String()
	}
	u := func(n uint64) string { return strconv.FormatUint(n, 10) }
	for _, c := range cdrs {
		a, b, ma, mb := c.A, c.B, c.Media[0], c.Media[1]
		row := []string{
			c.ID, c.Direction, ts(c.Start), ts(c.Answer), ts(c.End),
			strconv.FormatFloat(c.Duration.Seconds(), 'f', 3, 64), strconv.Itoa(c.Code), c.Reason, c.EndedBy,
			a.Interface, a.Transport, a.From, a.To, a.CallID, addr(a),
			b.Interface, b.Transport, b.From, b.To, b.CallID, addr(b), b.Peer,
			ma.Codec, strconv.FormatBool(ma.SRTP), u(ma.PacketsIn), u(ma.PacketsOut), u(ma.Lost),
			mb.Codec, strconv.FormatBool(mb.SRTP), u(mb.PacketsIn), u(mb.PacketsOut), u(mb.Lost),
			strconv.FormatFloat(ma.JitterMs, 'f', 2, 64), strconv.FormatFloat(mb.JitterMs, 'f', 2, 64),
			c.Unit,
		}
		for i := range row {
			row[i] = csvSafe(row[i])
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// csvSafe defuses cells a spreadsheet would run as a formula: reason
// phrases and URIs come from outside callers. Phone numbers like +4687...
// stay as they are.
func csvSafe(v string) string {
	if v == "" {
		return v
	}
	switch v[0] {
	case '=', '@', '\t', '\r':
		return "'" + v
	case '+', '-':
		if len(v) == 1 || v[1] < '0' || v[1] > '9' {
			return "'" + v
		}
	}
	return v
}
