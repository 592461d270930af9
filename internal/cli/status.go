package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"sort"
)

// status shows GET /api/v1/status: the "unit" section is built in; feature
// packages add sections with admin.RegisterStatus (calls, registrations,
// peers, certificates) and may register a text printer with StatusPrinter.
func init() {
	Register(&Command{
		Name:    "status",
		Summary: "show the unit's status",
		Usage:   "status [calls|registrations|peers|certificates|unit] [--json]",
		Run:     runStatus,
	})
}

var statusPrinters = map[string]func(w io.Writer, section json.RawMessage){}

// StatusPrinter registers the text form of a status section (call from init);
// sections without one print as indented JSON.
func StatusPrinter(section string, fn func(w io.Writer, section json.RawMessage)) {
	statusPrinters[section] = fn
}

func init() {
	StatusPrinter("unit", func(w io.Writer, raw json.RawMessage) {
		var u struct {
			Running bool   `json:"running"`
			Version string `json:"version"`
			Commit  string `json:"commit"`
			PID     int    `json:"pid"`
			Uptime  string `json:"uptime"`
			Config  struct {
				PreliminaryChanged bool   `json:"preliminary_changed"`
				RunningVersion     int    `json:"running_version"`
				PendingConfirm     bool   `json:"pending_confirm"`
				ConfirmDeadline    string `json:"confirm_deadline"`
				LastRevertReason   string `json:"last_revert_reason"`
			} `json:"config"`
		}
		if json.Unmarshal(raw, &u) != nil {
			fmt.Fprintf(w, "%s\n", raw)
			return
		}
		if u.Running {
			fmt.Fprintf(w, "running (pid %d, up %s), palisade %s (%s)\n", u.PID, u.Uptime, u.Version, u.Commit)
		} else {
			fmt.Fprintf(w, "not running, palisade %s (%s)\n", u.Version, u.Commit)
		}
		switch {
		case u.Config.PendingConfirm:
			fmt.Fprintf(w, "configuration: applied, waiting for confirmation until %s\n", u.Config.ConfirmDeadline)
		default:
			fmt.Fprintf(w, "configuration: saved version %d\n", u.Config.RunningVersion)
		}
		if u.Config.PreliminaryChanged {
			fmt.Fprintln(w, "changes have been made to the preliminary configuration, but have not been applied")
		}
		if u.Config.LastRevertReason != "" {
			fmt.Fprintf(w, "last revert: %s\n", u.Config.LastRevertReason)
		}
	})
}

func runStatus(c *Context, args []string) error {
	if len(args) > 1 {
		return c.Usagef("status takes at most one section")
	}
	path := "/api/v1/status"
	if len(args) == 1 {
		path += "/" + url.PathEscape(args[0])
	}
	var raw json.RawMessage
	if err := c.Call("GET", path, nil, &raw); err != nil {
		return err
	}
	sections := map[string]json.RawMessage{}
	if len(args) == 1 {
		sections[args[0]] = raw
	} else if err := json.Unmarshal(raw, &sections); err != nil {
		return fmt.Errorf("unexpected status answer: %w", err)
	}
	return c.Output(raw, func(w io.Writer) {
		names := make([]string, 0, len(sections))
		for k := range sections {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, name := range names {
			fmt.Fprintf(w, "== %s\n", name)
			if p := statusPrinters[name]; p != nil {
				p(w, sections[name])
				continue
			}
			var v any
			_ = json.Unmarshal(sections[name], &v)
			b, _ := json.MarshalIndent(v, "", "  ")
			fmt.Fprintf(w, "%s\n", b)
		}
	})
}
