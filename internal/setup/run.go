package setup

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/palisade-sbc/palisade/internal/admin"
)

// Env is what Run needs from the command line around it.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	// Data, CA and Insecure come from the CLI's global flags.
	Data     string
	CA       string
	Insecure bool
	// Addrs lists the machine's interface addresses, offered as defaults
	// for the inside and outside addresses; nil means SystemAddrs (tests
	// give fixed ones).
	Addrs func() ([]HostAddr, error)
}

// Run is `palisade setup`: parse the flags, ask what is missing on a
// terminal (unless --non-interactive), build the configuration and write,
// upload and/or back it up.
func Run(ctx context.Context, env Env, args []string) error {
	var a Answers
	var o Options
	fs := flag.NewFlagSet("setup", flag.ContinueOnError)
	fs.SetOutput(env.Stdout)
	bindFlags(fs, &a, &o)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (setup takes only flags)", fs.Arg(0))
	}
	// The CLI takes --data and --insecure out of the arguments before
	// setup sees them; they arrive in env.
	if o.Data == "" {
		o.Data = env.Data
	}
	if o.Data == "" {
		o.Data = "palisade-data"
	}
	o.Insecure = o.Insecure || env.Insecure

	tty, isTTY := env.Stdin.(*os.File)
	interactive := !o.NonInteractive && isTTY && IsTerminal(tty)
	if interactive {
		a.fillDefaults()
		p := &prompter{in: newLineReader(env.Stdin), out: env.Stdout, tty: tty}
		list := env.Addrs
		if list == nil {
			list = SystemAddrs
		}
		addrs, err := list()
		if err != nil {
			// Only the defaults are lost: the questions are still asked.
			fmt.Fprintf(env.Stdout, "warning: %v; no addresses to offer\n", err)
		}
		p.addrs = addrs
		if err := p.interview(&a, &o); err != nil {
			return err
		}
	} else {
		a.fillDefaults()
		a.fillTransportDefault()
	}
	if err := a.Check(); err != nil {
		if !interactive && !o.NonInteractive {
			return fmt.Errorf("%w\n(input is not a terminal: give every value as a flag, see palisade setup --help)", err)
		}
		return err
	}
	if err := CheckPassword(a.AdminPassword); err != nil {
		fmt.Fprintf(env.Stdout, "warning: --admin-password: %v; the unit accepts it, but choose a longer one\n", err)
	}
	cfg, err := Build(a)
	if err != nil {
		return err
	}
	if o.Upload != "" {
		// The running unit's password: the one given for it, else the new
		// one (a unit set up before), else the generated one in its data
		// directory (a unit on its first start).
		var pws []string
		for _, p := range []string{o.UploadPassword, os.Getenv("PALISADE_PASSWORD"), a.AdminPassword, readTrim(filepath.Join(o.Data, initialPasswordFile))} {
			if p != "" && !slices.Contains(pws, p) {
				pws = append(pws, p)
			}
		}
		ca := env.CA
		if ca == "" && !o.Insecure {
			// A unit on this machine leaves its admin certificate in its
			// data directory.
			if _, err := os.Stat(filepath.Join(o.Data, admin.CertFile)); err == nil {
				ca = filepath.Join(o.Data, admin.CertFile)
			}
		}
		if err := Upload(ctx, o.Upload, pws, ca, o.Insecure, cfg, a, env.Stdout); err != nil {
			return err
		}
	} else {
		what, err := WriteDataDir(ctx, o.Data, cfg, a)
		if err != nil {
			return err
		}
		fmt.Fprintln(env.Stdout, what)
	}
	if o.Backup != "" {
		if err := WriteBackup(ctx, o.Backup, cfg, a, o.Passphrase); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "Wrote the backup file %s.\n", o.Backup)
	}
	return nil
}

// initialPasswordFile is where a unit's first start writes its generated
// admin password (cli.PasswordFile).
const initialPasswordFile = "initial-admin-password"

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// Usage is the synopsis shown by the CLI.
const Usage = "setup [--data DIR] [--upload URL [--upload-password PW]] [--backup FILE] [--non-interactive] " +
	"[--admin-password PW] [--topology standalone|one-armed] [--inside-address IP] [--outside-address IP] " +
	"[--outside-fqdn NAME] [--gateway IP] [--dns IP[:PORT],...] [--pbx-type T] [--pbx-address HOST[:PORT]] " +
	"[--pbx-transport udp|tcp|tls] [--itsp PROFILE] [--itsp-domain DOMAIN | --itsp-address HOST[:PORT]] " +
	"[--itsp-transport udp|tcp|tls] [--itsp-prefix DIGITS] [--itsp-username U --itsp-password P [--itsp-register]] [--certificate NAME]"
