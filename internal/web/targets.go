package web

import (
	"strconv"
	"time"

	"github.com/palisade-sbc/palisade/internal/human"
	"github.com/palisade-sbc/palisade/internal/observe"
)

// Each target of a peer (one resolved address of one of its names) has its
// own keepalive state; the dashboard lists them under their peer, and the
// status pages do the same in app.js (targetTable) with the same words.

// targetState is a target's state in words and its tag class.
func targetState(t observe.PeerTarget, now time.Time) (word, class string) {
	switch {
	case t.OutUntil.After(now):
		return "out until " + human.Time(t.OutUntil, now), "bad"
	case t.HeldUntil.After(now):
		return "tried last until " + human.Time(t.HeldUntil, now), "warn"
	case !t.Up:
		return "down", "bad"
	case t.LastStatus == 0 && t.LastError == "":
		return "not checked yet", "warn"
	}
	return "up", "ok"
}

// targetAnswer is the last answer to a keepalive OPTIONS, or why there was
// none.
func targetAnswer(t observe.PeerTarget) string {
	switch {
	case t.LastStatus != 0 && t.LastError != "":
		return strconv.Itoa(t.LastStatus) + " (" + t.LastError + ")"
	case t.LastStatus != 0:
		return strconv.Itoa(t.LastStatus)
	case t.LastError != "":
		return t.LastError
	}
	return "-"
}

func init() {
	funcs["targetWord"] = func(t observe.PeerTarget) string { w, _ := targetState(t, time.Now()); return w }
	funcs["targetClass"] = func(t observe.PeerTarget) string { _, c := targetState(t, time.Now()); return c }
	funcs["targetAnswer"] = targetAnswer
}
