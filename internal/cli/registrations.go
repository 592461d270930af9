package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/palisade-sbc/palisade/internal/human"
	"github.com/palisade-sbc/palisade/internal/observe"
	"github.com/palisade-sbc/palisade/internal/registrar"
)

// The text form of `palisade status registrations`: phones registered at
// the local registrar and the unit's own registrations at trunks.
func init() {
	StatusPrinter(observe.StatusRegistrations, printRegistrations)
}

func printRegistrations(w io.Writer, section json.RawMessage) {
	var regs []registrar.Registration
	if !decodeRows(w, section, &regs, "no registrations") {
		return
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "KIND\tAOR\tSTATE\tEXPIRES IN\tCONTACT\tSOURCE\tQ\tDETAIL")
	for _, r := range regs {
		exp, q, src, detail := "-", "-", dash(r.Source), dash(r.UserAgent)
		if r.State == "registered" {
			exp = human.Duration(time.Duration(r.ExpiresIn) * time.Second)
		}
		if r.Kind == "local" {
			q = fmt.Sprint(r.Q)
			if r.Transport != "" {
				src += "/" + r.Transport
			}
		} else {
			src = "peer " + r.Peer
			detail = dash(r.LastError)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Kind, r.AOR, r.State, exp, dash(r.Contact), src, q, detail)
	}
	tw.Flush()
}
