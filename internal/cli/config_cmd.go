package cli

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/lifecycle"
)

func init() {
	Register(&Command{
		Name:    "config",
		Summary: "show, edit, apply, confirm and revert the configuration",
		Usage: "config show [--running|--saved|--preliminary] | export [FILE] | import FILE\n" +
			"       | apply [--confirm-within DURATION] | confirm | revert | undo | state\n" +
			"       | diff [A B] | history | load N | get PATH | set PATH JSON-VALUE\n" +
			"       | backup FILE (--passphrase P | --without-keys) | restore FILE [--passphrase P]\n" +
			"   (A, B: running, saved, preliminary or a version number)",
		Run: func(c *Context, args []string) error {
			return c.Dispatch(args, map[string]func(*Context, []string) error{
				"show": configShow, "export": configExport, "import": configImport,
				"apply": configApply, "confirm": configConfirm, "revert": configRevert,
				"undo": configUndo, "diff": configDiff, "history": configHistory,
				"get": configGet, "set": configSet, "state": configState, "load": configLoad,
				"backup": configBackup, "restore": configRestore,
			})
		},
	})
}

// parseFlags parses sub-command flags that may stand anywhere among args.
func parseFlags(c *Context, fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, c.Usagef("%v", err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// parseNoArgs is parseFlags for a command that takes flags only.
func parseNoArgs(c *Context, fs *flag.FlagSet, args []string) error {
	pos, err := parseFlags(c, fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return c.Usagef("unexpected argument %q", pos[0])
	}
	return nil
}

func configShow(c *Context, args []string) error {
	fs := flag.NewFlagSet("show", flag.ContinueOnError)
	running := fs.Bool("running", false, "")
	saved := fs.Bool("saved", false, "")
	prelim := fs.Bool("preliminary", false, "")
	pos, err := parseFlags(c, fs, args)
	if err != nil {
		return err
	}
	which := "preliminary"
	n := 0
	for _, f := range []struct {
		set  bool
		name string
	}{{*running, "running"}, {*saved, "saved"}, {*prelim, "preliminary"}} {
		if f.set {
			which = f.name
			n++
		}
	}
	if n > 1 || len(pos) > 0 {
		return c.Usagef("show takes one of --running, --saved, --preliminary")
	}
	var doc []byte
	if err := c.Call("GET", "/api/v1/config/"+which, nil, &doc); err != nil {
		return err
	}
	_, err = c.Stdout.Write(doc)
	if which == "preliminary" {
		c.notePending()
	}
	return err
}

// notePending tells (on stderr) when the preliminary configuration differs
// from the running one, as every admin surface must.
func (c *Context) notePending() {
	var st lifecycle.State
	if c.Call("GET", "/api/v1/config/state", nil, &st) == nil && st.PreliminaryChanged {
		fmt.Fprintln(c.Stderr, "note: changes have been made to the preliminary configuration, but have not been applied")
	}
}

func configExport(c *Context, args []string) error {
	if len(args) > 1 {
		return c.Usagef("export takes at most one FILE")
	}
	var doc []byte
	if err := c.Call("GET", "/api/v1/config/preliminary", nil, &doc); err != nil {
		return err
	}
	if len(args) == 0 || args[0] == "-" {
		_, err := c.Stdout.Write(doc)
		return err
	}
	if err := os.WriteFile(args[0], doc, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", args[0], err)
	}
	return nil
}

func readInput(c *Context, name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(c.Stdin)
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return b, nil
}

func configImport(c *Context, args []string) error {
	if len(args) != 1 {
		return c.Usagef("import needs one FILE (- for standard input)")
	}
	doc, err := readInput(c, args[0])
	if err != nil {
		return err
	}
	var out map[string]string
	if err := c.Call("PUT", "/api/v1/config/preliminary", doc, &out); err != nil {
		return err
	}
	return c.Output(out, func(w io.Writer) {
		fmt.Fprintln(w, "preliminary configuration updated; run 'palisade config apply' to use it")
	})
}

func configApply(c *Context, args []string) error {
	fs := flag.NewFlagSet("apply", flag.ContinueOnError)
	within := fs.Duration("confirm-within", 0, "")
	if err := parseNoArgs(c, fs, args); err != nil {
		return err
	}
	body := map[string]string{}
	if *within > 0 {
		body["confirm_within"] = within.String()
	}
	var st lifecycle.State
	if err := c.Call("POST", "/api/v1/config/apply", body, &st); err != nil {
		return err
	}
	return c.Output(st, func(w io.Writer) {
		left := time.Until(st.ConfirmDeadline).Round(time.Second)
		fmt.Fprintf(w, "applied; run 'palisade config confirm' within %s (until %s) or the previous configuration comes back\n",
			left, st.ConfirmDeadline.Local().Format(time.TimeOnly))
	})
}

func configConfirm(c *Context, args []string) error {
	if len(args) > 0 {
		return c.Usagef("confirm takes no arguments")
	}
	var v lifecycle.Version
	if err := c.Call("POST", "/api/v1/config/confirm", nil, &v); err != nil {
		return err
	}
	return c.Output(v, func(w io.Writer) {
		fmt.Fprintf(w, "confirmed and saved as version %d\n", v.Number)
	})
}

func simplePost(path, done string) func(*Context, []string) error {
	return func(c *Context, args []string) error {
		if len(args) > 0 {
			return c.Usagef("takes no arguments")
		}
		var st lifecycle.State
		if err := c.Call("POST", path, nil, &st); err != nil {
			return err
		}
		return c.Output(st, func(w io.Writer) { fmt.Fprintln(w, done) })
	}
}

var (
	configRevert = simplePost("/api/v1/config/revert", "reverted; the previous configuration runs again")
	configUndo   = simplePost("/api/v1/config/undo", "preliminary changes discarded")
)

func configState(c *Context, args []string) error {
	var st lifecycle.State
	if err := c.Call("GET", "/api/v1/config/state", nil, &st); err != nil {
		return err
	}
	return c.Output(st, func(w io.Writer) {
		fmt.Fprintf(w, "running version:      %d\n", st.RunningVersion)
		fmt.Fprintf(w, "preliminary changed:  %v\n", st.PreliminaryChanged)
		if st.PendingConfirm {
			fmt.Fprintf(w, "waiting for confirm:  until %s\n", st.ConfirmDeadline.Local().Format(time.TimeOnly))
		}
		if st.LastApplyError != "" {
			fmt.Fprintf(w, "last apply error:     %s\n", st.LastApplyError)
		}
		if st.LastRevertReason != "" {
			fmt.Fprintf(w, "last revert:          %s\n", st.LastRevertReason)
		}
	})
}

func configLoad(c *Context, args []string) error {
	if len(args) != 1 {
		return c.Usagef("load needs a version number")
	}
	if err := c.Call("POST", "/api/v1/config/versions/"+url.PathEscape(args[0])+"/load", nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(c.Stdout, "version %s loaded into the preliminary configuration\n", args[0])
	return nil
}

func configDiff(c *Context, args []string) error {
	a, b := "running", "preliminary"
	switch len(args) {
	case 0:
	case 2:
		a, b = args[0], args[1]
	default:
		return c.Usagef("diff takes no arguments or two (A B)")
	}
	var d struct {
		A       string          `json:"a"`
		B       string          `json:"b"`
		Changes []config.Change `json:"changes"`
	}
	q := url.Values{"a": {a}, "b": {b}}
	if err := c.Call("GET", "/api/v1/config/diff?"+q.Encode(), nil, &d); err != nil {
		return err
	}
	return c.Output(d, func(w io.Writer) {
		if len(d.Changes) == 0 {
			fmt.Fprintf(w, "%s and %s are the same\n", a, b)
			return
		}
		fmt.Fprintf(w, "--- %s\n+++ %s\n", a, b)
		for _, ch := range d.Changes {
			fmt.Fprintln(w, ch.String())
		}
	})
}

func configHistory(c *Context, args []string) error {
	if len(args) > 0 {
		return c.Usagef("history takes no arguments")
	}
	var vs []lifecycle.Version
	if err := c.Call("GET", "/api/v1/config/history", nil, &vs); err != nil {
		return err
	}
	return c.Output(vs, func(w io.Writer) {
		tw := newTable(w)
		fmt.Fprintln(tw, "VERSION\tTIME\tAUTHOR\tCOMMENT")
		for _, v := range vs {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", v.Number, v.Time.Local().Format(time.DateTime), v.Author, v.Comment)
		}
		tw.Flush()
	})
}

func configGet(c *Context, args []string) error {
	if len(args) != 1 {
		return c.Usagef("get needs a PATH like sip.listeners[0].port")
	}
	var v json.RawMessage
	if err := c.Call("GET", "/api/v1/config/preliminary/path/"+args[0], nil, &v); err != nil {
		return err
	}
	_, err := fmt.Fprintln(c.Stdout, strings.TrimSpace(string(v)))
	return err
}

func configSet(c *Context, args []string) error {
	if len(args) != 2 {
		return c.Usagef("set needs a PATH and a JSON value")
	}
	val := []byte(args[1])
	if !json.Valid(val) {
		if s := strings.TrimSpace(args[1]); s == "" || strings.ContainsAny(s[:1], "[{\"") {
			return fmt.Errorf("the value %q is not valid JSON", args[1])
		}
		val, _ = json.Marshal(args[1]) // a bare word is taken as a string
	}
	if err := c.Call("PUT", "/api/v1/config/preliminary/path/"+args[0], val, nil); err != nil {
		return err
	}
	if !c.JSON {
		fmt.Fprintf(c.Stdout, "%s set in the preliminary configuration\n", args[0])
	}
	return nil
}

func configBackup(c *Context, args []string) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	pass := fs.String("passphrase", "", "")
	noKeys := fs.Bool("without-keys", false, "")
	pos, err := parseFlags(c, fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return c.Usagef("backup needs a FILE (- for standard output)")
	}
	var data []byte
	// The unit refuses private keys in clear; its error names both choices.
	req := map[string]any{"passphrase": *pass, "without_keys": *noKeys}
	if err := c.Call("POST", "/api/v1/config/backup", req, &data); err != nil {
		return err
	}
	if *noKeys {
		fmt.Fprintln(c.Stderr, "note: the backup leaves the private keys out; a unit restored from it needs new keys (and certificates) for its own certificate entries")
	}
	if pos[0] == "-" {
		_, err := c.Stdout.Write(data)
		return err
	}
	return os.WriteFile(pos[0], data, 0o600)
}

func configRestore(c *Context, args []string) error {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	pass := fs.String("passphrase", "", "")
	pos, err := parseFlags(c, fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return c.Usagef("restore needs a FILE")
	}
	data, err := readInput(c, pos[0])
	if err != nil {
		return err
	}
	cl, err := c.Client()
	if err != nil {
		return err
	}
	hdr := http.Header{"Content-Type": {"application/octet-stream"}, "X-Backup-Passphrase": {*pass}}
	if _, err := cl.Do(c.ctx, "POST", "/api/v1/config/restore", hdr, data); err != nil {
		return err
	}
	fmt.Fprintln(c.Stdout, "backup restored into the preliminary configuration; review it and run 'palisade config apply'")
	return nil
}
