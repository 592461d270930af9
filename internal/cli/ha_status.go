package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/ha/takeover"
)

func init() { StatusPrinter("ha", printHAStatus) }

// haLine is the text form of the "ha" status section (docs/ha.md).
func haLine(st *takeover.Status) string {
	if st == nil {
		return "no floating addresses (ha.floating)"
	}
	role := "standby: another unit owns the floating addresses"
	switch {
	case st.Mode == config.HAModeRehome && st.Owner:
		role = "rehome mode: watching the other units"
	case st.Mode == config.HAModeRehome:
		role = "rehome mode: not registered in etcd (the calls of other units are not watched)"
	case st.Owner:
		role = "owner of the floating addresses"
	}
	if st.Standby {
		role += "; on standby (keepalived: VRRP backup)"
	}
	s := fmt.Sprintf("%s (%s)\ntakeovers %d, calls adopted %d, call records refused %d", role,
		strings.Join(st.Interfaces, ", "), st.Takeovers, st.CallsAdopted, st.CallsRefused)
	if !st.LastTakeover.IsZero() {
		s += ", last takeover " + st.LastTakeover.UTC().Format(time.RFC3339)
	}
	if st.Reconnects+st.ReconnectsFailed > 0 {
		s += fmt.Sprintf("\nconnections towards peers reopened %d, failed %d", st.Reconnects, st.ReconnectsFailed)
	}
	if g := st.MediaGap; g.Directions > 0 {
		s += fmt.Sprintf("\nmedia gap of adopted streams (restore to first packet, %d directions): median %v, max %v",
			g.Directions, g.Median.Round(time.Millisecond), g.Max.Round(time.Millisecond))
	}
	return s
}

func printHAStatus(w io.Writer, raw json.RawMessage) {
	var st *takeover.Status
	if json.Unmarshal(raw, &st) != nil {
		fmt.Fprintf(w, "%s\n", raw)
		return
	}
	fmt.Fprintln(w, haLine(st))
}
