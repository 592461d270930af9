package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/palisade-sbc/palisade/internal/observe/alarms"
)

// `palisade status alarms`: the unit's active alarms.
func init() { StatusPrinter("alarms", printAlarms) }

func printAlarms(w io.Writer, section json.RawMessage) {
	var list []alarms.Alarm
	if !decodeRows(w, section, &list, "no active alarms") {
		return
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "SEVERITY\tALARM\tABOUT\tRAISED\tWHAT IS WRONG")
	now := time.Now()
	for _, a := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.Severity, a.Kind, dash(a.Subject), whenAgo(a.Raised, now), a.Text)
	}
	tw.Flush()
}
