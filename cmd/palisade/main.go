// Command palisade is the Palisade session border controller: the unit
// itself (palisade run) and the tools that administer it.
package main

import (
	"os"

	"github.com/palisade-sbc/palisade/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:]))
}
