package cli

import (
	"github.com/palisade-sbc/palisade/internal/setup"
)

func init() {
	Register(&Command{
		Name:    "setup",
		Summary: "create the first configuration (interactive on a terminal, or with flags)",
		Usage:   setup.Usage,
		Run: func(c *Context, args []string) error {
			return setup.Run(c.Ctx(), setup.Env{Stdin: c.Stdin, Stdout: c.Stdout, Data: c.Data, CA: c.CA, Insecure: c.Insecure}, args)
		},
	})
}
