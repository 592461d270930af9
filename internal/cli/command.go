// Package cli implements the palisade subcommands (SPEC §4.1).
//
// # Adding a command (for feature packages)
//
// Each top-level command lives in its own file of this package and registers
// itself from init; nothing else needs editing:
//
//	func init() {
//		Register(&Command{
//			Name:    "cert",
//			Summary: "manage the unit's own certificates",
//			Usage:   "cert new NAME --cn FQDN ... | csr NAME | import NAME FILE... | list",
//			Run:     runCert,
//		})
//	}
//
//	func runCert(c *Context, args []string) error {
//		return c.Dispatch(args, map[string]func(*Context, []string) error{
//			"list": func(c *Context, args []string) error {
//				var certs []certInfo
//				if err := c.Call("GET", "/api/v1/certs", nil, &certs); err != nil {
//					return err
//				}
//				return c.Output(certs, func(w io.Writer) { ... text form ... })
//			},
//		})
//	}
//
// Commands talk to the unit only through the admin API (Context.Call /
// Context.Client): over DATA/admin.sock when the unit runs, over HTTPS with
// --server and a token, or in-process on the data directory when no unit
// runs (Context.Running says which). The global flags (--data, --server,
// --token, --ca, --insecure, --json) are taken out of the arguments before
// Run sees them, wherever they stand. Return an error for failure: Main
// prints it as one line (every field error of a rejected configuration on
// its own line) and exits 1. Use Context.Usagef for wrong arguments (exit 2).
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
)

// Command is one top-level subcommand.
type Command struct {
	Name    string
	Summary string // one line for the command list
	Usage   string // the synopsis after "palisade "
	Hidden  bool
	Run     func(c *Context, args []string) error
}

var (
	commandsMu sync.Mutex
	commands   = map[string]*Command{}
)

// Register adds a command; call it from init. A duplicate name panics, so a
// clash between two files shows at once.
func Register(cmd *Command) {
	commandsMu.Lock()
	defer commandsMu.Unlock()
	if _, dup := commands[cmd.Name]; dup {
		panic("cli: command registered twice: " + cmd.Name)
	}
	commands[cmd.Name] = cmd
}

func lookup(name string) *Command {
	commandsMu.Lock()
	defer commandsMu.Unlock()
	return commands[name]
}

func sortedCommands() []*Command {
	commandsMu.Lock()
	defer commandsMu.Unlock()
	out := make([]*Command, 0, len(commands))
	for _, c := range commands {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Context is what a command gets: global flags, output streams and the
// connection to the unit.
type Context struct {
	Data     string // data directory (--data, $PALISADE_DATA, ./palisade-data)
	Server   string // --server URL
	Token    string // --token or $PALISADE_TOKEN
	CA       string // --ca FILE: trust this certificate for --server
	Insecure bool   // --insecure: accept any server certificate
	JSON     bool   // --json: machine-readable output

	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer

	ctx    context.Context
	cmd    *Command
	client *Client
}

// Ctx is the command's context (cancelled by SIGINT).
func (c *Context) Ctx() context.Context { return c.ctx }

// usageError makes Main print the command's usage and exit 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// Usagef reports wrong arguments.
func (c *Context) Usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// Dispatch runs the subcommand named by args[0] from subs.
func (c *Context) Dispatch(args []string, subs map[string]func(*Context, []string) error) error {
	if len(args) == 0 {
		return c.Usagef("%s needs a subcommand", c.cmd.Name)
	}
	fn, ok := subs[args[0]]
	if !ok {
		names := make([]string, 0, len(subs))
		for k := range subs {
			names = append(names, k)
		}
		sort.Strings(names)
		return c.Usagef("unknown subcommand %q (one of: %s)", args[0], strings.Join(names, ", "))
	}
	return fn(c, args[1:])
}

// Output prints v as JSON with --json, else calls text.
func (c *Context) Output(v any, text func(w io.Writer)) error {
	if c.JSON || text == nil {
		enc := json.NewEncoder(c.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	text(c.Stdout)
	return nil
}

// globalFlags are taken out of the arguments wherever they stand; the bool
// ones take no value.
var globalFlags = map[string]bool{"data": false, "server": false, "token": false, "ca": false, "json": true, "insecure": true}

// extractGlobals removes the global flags from args into c.
func (c *Context) extractGlobals(args []string) ([]string, error) {
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		if !strings.HasPrefix(a, "-") {
			rest = append(rest, a)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		isBool, global := globalFlags[name]
		if !global {
			rest = append(rest, a)
			continue
		}
		if !isBool && !hasVal {
			if i+1 >= len(args) {
				return nil, &usageError{msg: "flag --" + name + " needs a value"}
			}
			i++
			val = args[i]
		}
		switch name {
		case "data":
			c.Data = val
		case "server":
			c.Server = val
		case "token":
			c.Token = val
		case "ca":
			c.CA = val
		case "json":
			c.JSON = !hasVal || val == "true"
		case "insecure":
			c.Insecure = !hasVal || val == "true"
		}
	}
	return rest, nil
}

// Main runs the palisade command line and returns the exit code.
func Main(args []string) int {
	return run(context.Background(), args, os.Stdin, os.Stdout, os.Stderr)
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	c := &Context{Stdin: stdin, Stdout: stdout, Stderr: stderr, ctx: ctx,
		Data: os.Getenv("PALISADE_DATA"), Token: os.Getenv("PALISADE_TOKEN")}
	if c.Data == "" {
		c.Data = "palisade-data"
	}
	rest, err := c.extractGlobals(args)
	if err != nil {
		fmt.Fprintln(stderr, "palisade:", err)
		return 2
	}
	if len(rest) == 2 && rest[0] == "help" || len(rest) >= 2 && (rest[1] == "-h" || rest[1] == "--help") {
		name := rest[1]
		if rest[0] != "help" {
			name = rest[0]
		}
		if cmd := lookup(name); cmd != nil {
			fmt.Fprintf(stdout, "palisade %s: %s\nusage: palisade %s\n", cmd.Name, cmd.Summary, cmd.Usage)
			return 0
		}
	}
	if len(rest) == 0 || rest[0] == "help" || rest[0] == "-h" || rest[0] == "--help" {
		usage(stdout)
		if len(rest) == 0 {
			return 2
		}
		return 0
	}
	cmd := lookup(rest[0])
	if cmd == nil {
		fmt.Fprintf(stderr, "palisade: unknown command %q (palisade help lists them)\n", rest[0])
		return 2
	}
	c.cmd = cmd
	defer c.close()
	err = cmd.Run(c, rest[1:])
	if err == nil {
		return 0
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "palisade %s: %s\nusage: palisade %s\n", cmd.Name, ue.msg, cmd.Usage)
		return 2
	}
	printError(stderr, cmd.Name, err)
	return 1
}

// printError prints err as one line, followed by one line per field error
// of a rejected configuration.
func printError(w io.Writer, name string, err error) {
	var ae *APIError
	if errors.As(err, &ae) && len(ae.Errors) > 0 {
		fmt.Fprintf(w, "palisade %s: %s\n", name, ae.Message)
		for _, fe := range ae.Errors {
			fmt.Fprintf(w, "  %s: %s\n", fe.Path, fe.Message)
		}
		return
	}
	msg := strings.ReplaceAll(err.Error(), "\n", "; ")
	fmt.Fprintf(w, "palisade %s: %s\n", name, msg)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: palisade COMMAND [ARGS]   (global flags: --data DIR --server URL --token T --ca FILE --insecure --json)")
	fmt.Fprintln(w, "\ncommands (palisade help COMMAND for its usage):")
	for _, c := range sortedCommands() {
		if c.Hidden {
			continue
		}
		fmt.Fprintf(w, "  %-10s %s\n", c.Name, c.Summary)
	}
}
