package cli

import (
	"regexp"
	"strings"
)

// The man page (manpage.go) and the shell completion (completion.go) are
// generated from the same descriptions `palisade help` prints: each
// command's Name, Summary and Usage, and the global flags below. A new
// command or flag therefore reaches both without being written twice.

// globalFlagHelp describes the global flags (globalFlags in command.go; a
// test keeps the two lists equal).
var globalFlagHelp = []struct{ Name, Arg, Help string }{
	{"data", "DIR", "data directory of the unit (default $PALISADE_DATA, else ./palisade-data; the Debian package's service uses /var/lib/palisade)"},
	{"server", "URL", "talk to a unit's admin API at URL (https://HOST:8443) instead of the local admin socket"},
	{"token", "T", "API token for --server (default $PALISADE_TOKEN)"},
	{"ca", "FILE", "trust this certificate (PEM) for the --server connection"},
	{"insecure", "", "accept any certificate from --server"},
	{"json", "", "machine-readable output (JSON) where the output is data"},
}

// usageHelp is what one command's Usage says, taken apart for completion.
type usageHelp struct {
	Subcommands []string            // first words of the alternatives, or choices of a leading [a|b|c]
	Flags       []string            // every --flag named, without dashes
	Values      map[string][]string // choices of a flag's value (--log-format text|json)
}

var (
	flagRe   = regexp.MustCompile(`--([a-z0-9][a-z0-9-]*)(?:[ =]([a-z0-9.][a-z0-9.-]*(?:\|[a-z0-9.][a-z0-9.-]*)+))?`)
	choiceRe = regexp.MustCompile(`^[a-z][a-z0-9-]*(?:\|[a-z][a-z0-9-]*)+$`)
	wordRe   = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
)

// parseUsage reads a Usage line ("config show [--running|--saved] | apply
// [--confirm-within DURATION] | ..."): lower-case words that start an
// alternative at the top level are subcommands, upper-case words are
// placeholders.
func parseUsage(name, usage string) usageHelp {
	u := strings.Join(strings.Fields(usage), " ")
	u = strings.TrimSpace(strings.TrimPrefix(u, name))
	h := usageHelp{Values: map[string][]string{}}
	seen := map[string]bool{}
	add := func(list *[]string, w string) {
		if !seen[w] {
			seen[w] = true
			*list = append(*list, w)
		}
	}
	for _, alt := range splitTop(u) {
		first, _, _ := strings.Cut(strings.TrimSpace(alt), " ")
		switch {
		case wordRe.MatchString(first):
			add(&h.Subcommands, first)
		case strings.HasPrefix(first, "[") && strings.HasSuffix(first, "]") && choiceRe.MatchString(first[1:len(first)-1]):
			for _, w := range strings.Split(first[1:len(first)-1], "|") {
				add(&h.Subcommands, w)
			}
		}
	}
	for _, m := range flagRe.FindAllStringSubmatch(u, -1) {
		add(&h.Flags, "--"+m[1])
		if m[2] != "" {
			h.Values[m[1]] = strings.Split(m[2], "|")
		}
	}
	for i, f := range h.Flags {
		h.Flags[i] = strings.TrimPrefix(f, "--")
	}
	return h
}

// splitTop splits s at the '|' that stand outside brackets.
func splitTop(s string) []string {
	var out []string
	depth, start := 0, 0
	for i, r := range s {
		switch r {
		case '[', '(':
			depth++
		case ']', ')':
			depth--
		case '|':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}
