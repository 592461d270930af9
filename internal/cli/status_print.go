package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/palisade-sbc/palisade/internal/human"
	"github.com/palisade-sbc/palisade/internal/observe"
)

// Text forms of the status sections served by the observe package; other
// sections print as JSON.
func init() {
	StatusPrinter(observe.StatusCalls, printActiveCalls)
	StatusPrinter(observe.StatusCertificates, printCertificates)
	StatusPrinter(observe.StatusPeers, printPeers)
}

// printPeers is the text form of `palisade status peers` (the SIP layer's
// OPTIONS keepalive state of each peer).
func printPeers(w io.Writer, section json.RawMessage) {
	var peers []struct {
		Name      string               `json:"name"`
		Up        bool                 `json:"up"`
		State     string               `json:"state"`
		Failures  int                  `json:"failures"`
		LastCheck time.Time            `json:"last_check"`
		LastError string               `json:"last_error"`
		Keepalive bool                 `json:"keepalive"`
		Since     time.Time            `json:"since"`
		Targets   []observe.PeerTarget `json:"targets"`
	}
	if !decodeRows(w, section, &peers, "no peers configured") {
		return
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "PEER\tSTATE\tSINCE\tKEEPALIVE\tFAILURES\tLAST CHECK\tLAST ERROR")
	for _, p := range peers {
		state, now := p.State, time.Now()
		switch {
		case state == observe.PeerUnchecked:
			state = "not checked yet"
		case state == observe.PeerUnmonitored:
			state = "not monitored"
		case state == "" && p.Up:
			state = "up"
		case state == "":
			state = "down"
		}
		since, check := whenAgo(p.Since, now), whenAgo(p.LastCheck, now)
		ka := "off"
		if p.Keepalive {
			ka = "OPTIONS"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", p.Name, state, since, ka, p.Failures, check, dash(p.LastError))
		for _, tg := range p.Targets {
			fmt.Fprintf(tw, "  %s\t%s\t\t\t\t%s\t%s\n", tg.Host+" "+tg.Address+"/"+tg.Transport, targetState(tg), answerText(tg.LastStatus), dash(tg.LastError))
		}
	}
	tw.Flush()
}

// targetState is "up", "down", "out until <time>" (Retry-After) or "tried
// last until <time>" (a call found it dead; the peer has no keepalive).
func targetState(tg observe.PeerTarget) string {
	switch {
	case !tg.OutUntil.IsZero() && time.Now().Before(tg.OutUntil):
		return "out until " + tg.OutUntil.Local().Format("15:04:05")
	case !tg.HeldUntil.IsZero() && time.Now().Before(tg.HeldUntil):
		return "tried last until " + tg.HeldUntil.Local().Format("15:04:05")
	case tg.Up:
		return "up"
	}
	return "down"
}

func answerText(status int) string {
	if status == 0 {
		return "-"
	}
	return fmt.Sprintf("answer %d", status)
}

// whenAgo is a local time with how long ago it was, "-" for none.
func whenAgo(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05") + " (" + human.Ago(t, now) + ")"
}

// printActiveCalls is the text form of `palisade status calls`: both legs,
// media addresses, codecs, SRTP and packet counters of each call.
func printActiveCalls(w io.Writer, section json.RawMessage) {
	var calls []observe.CDR
	if !decodeRows(w, section, &calls, "no calls in progress") {
		return
	}
	for _, c := range calls {
		state := "ringing"
		if !c.Answer.IsZero() {
			state = "answered " + human.Duration(c.Duration)
		}
		fmt.Fprintf(w, "%s  %s  %s  started %s\n", c.ID, c.Direction, state, c.Start.Local().Format("15:04:05"))
		for i, l := range []observe.CallLeg{c.A, c.B} {
			m := c.Media[i]
			srtp := "RTP"
			if m.SRTP {
				srtp = "SRTP " + m.Suite
			}
			fmt.Fprintf(w, "  %s leg %s/%s %s  %s → %s  Call-ID %s\n", []string{"A", "B"}[i], dash(l.Interface), dash(l.Transport),
				addr(l.Remote), dash(l.From), dash(l.To), dash(l.CallID))
			fmt.Fprintf(w, "    media %s ⇄ %s  %s %s  in %d pkts  out %d pkts  lost %d  jitter %.1f ms  auth failures %d\n",
				addr(m.Local), addr(m.Remote), dash(m.Codec), srtp, m.PacketsIn, m.PacketsOut, m.Lost, m.JitterMs, m.AuthFailures)
		}
	}
}

// printCertificates is the text form of `palisade status certificates`.
func printCertificates(w io.Writer, section json.RawMessage) {
	var certs []struct {
		Name     string    `json:"name"`
		Kind     string    `json:"kind"`
		State    string    `json:"state"`
		Subject  string    `json:"subject"`
		NotAfter time.Time `json:"not_after"`
		DaysLeft int       `json:"days_left"`
		Chain    string    `json:"chain"`
	}
	if err := json.Unmarshal(section, &certs); err != nil {
		fmt.Fprintf(w, "%s\n", section)
		return
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "NAME\tKIND\tSTATE\tDAYS LEFT\tNOT AFTER\tSUBJECT\tCHAIN")
	for _, c := range certs {
		days, until := "-", "-"
		if !c.NotAfter.IsZero() {
			days, until = human.Days(c.DaysLeft), c.NotAfter.Format("2006-01-02")
			if c.DaysLeft >= 0 && c.DaysLeft < 30 {
				days += " (renew soon)"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Name, c.Kind, dash(c.State), days, until, dash(c.Subject), dash(c.Chain))
	}
	tw.Flush()
}

// decodeRows reads a status section that is a list into rows. It prints the
// section as it came when it is not such a list and the empty text when the
// list is empty; then there is nothing more to print.
func decodeRows[T any](w io.Writer, section json.RawMessage, rows *[]T, empty string) bool {
	if err := json.Unmarshal(section, rows); err != nil {
		fmt.Fprintf(w, "%s\n", section)
		return false
	}
	if len(*rows) == 0 {
		fmt.Fprintln(w, empty)
		return false
	}
	return true
}
