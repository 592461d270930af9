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
