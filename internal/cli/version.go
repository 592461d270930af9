package cli

import (
	"fmt"
	"io"
	"runtime"

	"github.com/palisade-sbc/palisade/internal/unit"
)

func init() {
	Register(&Command{Name: "version", Summary: "print version and commit", Usage: "version [--json]",
		Run: func(c *Context, args []string) error {
			if len(args) > 0 {
				return c.Usagef("version takes no arguments")
			}
			ver, rev := unit.Version()
			v := map[string]string{"version": ver, "commit": rev, "go": runtime.Version()}
			return c.Output(v, func(w io.Writer) {
				fmt.Fprintf(w, "palisade %s (commit %s, %s)\n", ver, rev, runtime.Version())
			})
		}})
}
