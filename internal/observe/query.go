package observe

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/palisade-sbc/palisade/internal/store"
)

// CallRow is one line of the call list (GET /api/v1/calls, `palisade
// calls`): a call in progress, an ended call's record, or a traced call
// without a record, merged by the unit's call id.
type CallRow struct {
	ID        string        `json:"id"`
	State     string        `json:"state"` // active | ended
	Direction string        `json:"direction,omitempty"`
	Start     time.Time     `json:"start"`
	Answer    time.Time     `json:"answer,omitzero"`
	End       time.Time     `json:"end,omitzero"`
	Duration  time.Duration `json:"duration"`
	From      string        `json:"from"`
	To        string        `json:"to"`
	CallIDs   []string      `json:"call_ids,omitempty"` // SIP Call-IDs of the legs
	Code      int           `json:"code,omitempty"`
	Reason    string        `json:"reason,omitempty"`
	Failed    bool          `json:"failed"`
	Traced    bool          `json:"traced"` // its SIP trace can be shown
	Messages  int           `json:"messages,omitempty"`
	Media     *[2]MediaLeg  `json:"media,omitempty"`
	Unit      string        `json:"unit,omitempty"` // the unit of a cluster that carries or carried the call
}

// CallQuery selects rows; zero fields match everything.
type CallQuery struct {
	Active bool      // only calls in progress
	Ended  bool      // only ended calls
	Since  time.Time // calls that started (or, when traced, had messages) at or after
	Number string    // part of the From or To
	CallID string    // the unit's id or a leg's SIP Call-ID
	Result string    // failed | ok | a code (486) | a class (4xx)
	Text   string    // free search: part of a number, of a call id or SIP Call-ID, or a result
	Limit  int       // newest first
}

// ListCalls merges the calls in progress and the traces of svc (nil on a
// stopped unit) with the call records in st.
func ListCalls(ctx context.Context, st store.Reader, svc *Service, q CallQuery) ([]CallRow, error) {
	rows := map[string]*CallRow{}
	if svc != nil {
		for _, sum := range svc.Traces.List(CallFilter{Since: q.Since}) {
			r := &CallRow{ID: sum.ID, State: "ended", Direction: sum.Direction, Start: sum.Start, Answer: sum.Answer,
				From: sum.From, To: sum.To, CallIDs: sum.CallIDs, Code: sum.Result, Reason: sum.Reason,
				Failed: sum.Failed, Traced: true, Messages: sum.Messages}
			end := sum.Last
			if !sum.Ended {
				r.State, end = "active", time.Now()
			}
			if !sum.Answer.IsZero() {
				r.Duration = end.Sub(sum.Answer)
			}
			rows[sum.ID] = r
		}
	}
	if !q.Active {
		if svc != nil {
			svc.Recorder.Flush() // records of calls that just ended are still queued
		}
		cdrs, _, err := ListCDRs(ctx, st, q.Since)
		if err != nil {
			return nil, err
		}
		for i := range cdrs {
			mergeCDR(rows, &cdrs[i], "ended")
		}
	}
	if svc != nil {
		for _, c := range svc.Recorder.Active() {
			mergeCDR(rows, &c, "active")
		}
	}
	var out []CallRow
	for _, r := range rows {
		if q.match(r) {
			out = append(out, *r)
		}
	}
	return newestFirst(out, func(r *CallRow) (time.Time, string) { return r.Start, r.ID }, q.Limit), nil
}

// mergeCDR lays a record (or a call in progress) over what the trace said:
// the record knows the legs and the outcome best.
func mergeCDR(rows map[string]*CallRow, c *CDR, state string) {
	r := rows[c.ID]
	if r == nil {
		r = &CallRow{ID: c.ID}
		rows[c.ID] = r
	}
	r.State, r.Direction, r.Start, r.Answer, r.End, r.Duration = state, c.Direction, c.Start, c.Answer, c.End, c.Duration
	if c.A.From != "" {
		r.From = UserOrURI(c.A.From)
	}
	if c.A.To != "" {
		r.To = UserOrURI(c.A.To)
	}
	for _, id := range []string{c.A.CallID, c.B.CallID} {
		if id != "" && !slices.Contains(r.CallIDs, id) {
			r.CallIDs = append(r.CallIDs, id)
		}
	}
	if state == "ended" {
		r.Code, r.Reason, r.Failed = c.Code, c.Reason, c.Failed()
	}
	media := c.Media
	if media != ([2]MediaLeg{}) {
		r.Media = &media
	}
}

// UserOrURI is the user part of a SIP URI ("sip:4687@host" → "4687"), or
// the URI when it has none; tables show numbers this way.
func UserOrURI(uri string) string {
	if u := uriUser(uri); u != "" {
		return u
	}
	return uri
}

func (q CallQuery) match(r *CallRow) bool {
	sum := CallSummary{ID: r.ID, Start: r.Start, Last: r.Start, From: r.From, To: r.To, CallIDs: r.CallIDs,
		Result: r.Code, Failed: r.Failed, Ended: r.State == "ended"}
	if !r.End.IsZero() {
		sum.Last = r.End
	}
	f := CallFilter{Number: q.Number, CallID: q.CallID, Result: q.Result, Active: q.Active, Ended: q.Ended, Since: q.Since}
	return f.match(&sum) && (q.Text == "" || matchText(q.Text, &sum))
}

// matchText is the search box of the call list: one word that may be a
// number, a call id or a result.
func matchText(text string, s *CallSummary) bool {
	text = strings.TrimSpace(text)
	if strings.Contains(s.From, text) || strings.Contains(s.To, text) || strings.Contains(s.ID, text) {
		return true
	}
	for _, id := range s.CallIDs {
		if strings.Contains(id, text) {
			return true
		}
	}
	return (text == "failed" || text == "ok" || len(text) == 3) && matchResult(text, s)
}

// ParseSince reads a "since" parameter: a duration back from now ("90m",
// "2h", "3d" for days) or an RFC 3339 time. "" is the zero time.
func ParseSince(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		if _, err := fmt.Sscanf(days, "%d", &n); err == nil && n >= 0 && fmt.Sprint(n) == days {
			return now.Add(-time.Duration(n) * 24 * time.Hour), nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("since %q: want a duration like 30m, 2h or 7d, or an RFC 3339 time", s)
	}
	return now.Add(-d), nil
}
