package web

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/palisade-sbc/palisade/internal/observe"
	"github.com/palisade-sbc/palisade/internal/store"
)

// logData is the Log page: the unit's recent log and the audit log.
type logData struct {
	Audit  []store.AuditEntry
	Recent []observe.LogRecord
	Level  string
	Text   string
	Peer   string
	CallID string
	Last   string // 5m, 15m, 1h, 6h or "" (everything kept)
	From   string // datetime-local, UTC
	To     string
	Query  string // the filter as a query string, for the download link
	Limit  int
}

// logTimeLayout is how the From/To fields are written (UTC).
const logTimeLayout = "2006-01-02T15:04"

// logShown bounds the lines on the page; the download has every match.
const logShown = 500

// parseLogFilter reads the Log page's filter from q; problems are returned
// as one message naming the fields.
func parseLogFilter(q url.Values, now time.Time) (observe.LogFilter, logData, string) {
	d := logData{Text: q.Get("q"), Peer: q.Get("peer"), CallID: q.Get("call_id"), Last: q.Get("last"), From: q.Get("from"), To: q.Get("to"), Limit: logShown}
	f := observe.LogFilter{Level: slog.LevelInfo, Text: d.Text, Peer: d.Peer, CallID: d.CallID}
	if err := f.Level.UnmarshalText([]byte(q.Get("level"))); err != nil {
		f.Level = slog.LevelInfo
	}
	d.Level = strings.ToLower(f.Level.String())
	var problems []string
	switch d.Last {
	case "", "all":
		d.Last = ""
	default:
		dur, err := time.ParseDuration(d.Last)
		if err != nil || dur <= 0 {
			problems = append(problems, "Last must be one of the choices")
		} else {
			f.From = now.Add(-dur)
		}
	}
	for _, tf := range []struct {
		in  string
		out *time.Time
		nam string
	}{{d.From, &f.From, "From"}, {d.To, &f.To, "To"}} {
		if tf.in == "" {
			continue
		}
		t, err := time.ParseInLocation(logTimeLayout, tf.in, time.UTC)
		if err != nil {
			problems = append(problems, tf.nam+" must be a date and time like "+now.UTC().Format(logTimeLayout))
			continue
		}
		if tf.nam == "To" {
			t = t.Add(time.Minute - time.Nanosecond) // to the end of that minute
		}
		if tf.out.IsZero() || tf.nam == "To" || t.After(*tf.out) {
			*tf.out = t
		}
	}
	qs := url.Values{}
	for k, v := range map[string]string{"level": d.Level, "q": d.Text, "peer": d.Peer, "call_id": d.CallID, "last": d.Last, "from": d.From, "to": d.To} {
		if v != "" {
			qs.Set(k, v)
		}
	}
	d.Query = qs.Encode()
	if len(problems) > 0 {
		return f, d, "Log filter: " + strings.Join(problems, "; ") + "."
	}
	return f, d, ""
}

// logPage shows the unit's recent log, filtered, and the audit log: who
// changed, applied, confirmed or reverted what, and when (newest first).
func (s *server) logPage(w http.ResponseWriter, r *http.Request) {
	v := s.newView(r.Context(), r, "Log")
	f, d, problem := parseLogFilter(r.URL.Query(), time.Now())
	v.Problem = problem
	entries, err := s.env.Store.AuditLog(r.Context(), 500)
	if err != nil {
		v.Problem = "cannot read the audit log: " + err.Error()
	}
	d.Audit = entries
	if live := s.env.Live; problem == "" && live != nil && live.RecentLog != nil { // none on a stopped unit
		d.Recent = live.RecentLog.Find(logShown, f)
	}
	v.Data = d
	s.render(w, http.StatusOK, "log", v)
}

// logDownload answers the matching records (all the unit keeps), oldest
// first, as text lines.
func (s *server) logDownload(w http.ResponseWriter, r *http.Request) {
	f, _, problem := parseLogFilter(r.URL.Query(), time.Now())
	if problem != "" {
		http.Error(w, problem, http.StatusBadRequest)
		return
	}
	var recs []observe.LogRecord
	if live := s.env.Live; live != nil && live.RecentLog != nil {
		recs = live.RecentLog.Find(observe.LogRingSize, f)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="palisade-log-`+time.Now().UTC().Format("20060102-150405")+`.txt"`)
	for i := len(recs) - 1; i >= 0; i-- {
		rec := recs[i]
		fmt.Fprintf(w, "%s %-5s %s %s\n", rec.Time.UTC().Format("2006-01-02T15:04:05.000Z"), rec.Level, rec.Msg, rec.Attrs)
	}
}
