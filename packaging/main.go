// Command mkdeb builds Palisade's Debian package with nfpm (used as a
// library): the binary, the systemd unit, the maintainer scripts, the man
// page and bash completion the binary generated from its own help, and the
// administrator docs. `make deb` runs it; docs/operations.md describes the
// package.
//
// It lives in its own Go module so that the packager's dependencies stay
// out of the unit's.
package main

import (
	"bytes"
	"compress/gzip"
	"embed"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
)

//go:embed files
var embedded embed.FS

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mkdeb:", err)
		os.Exit(1)
	}
}

type options struct {
	bin, man, completion, out, version, arch string
	docs                                     []string
}

func run(args []string) error {
	var o options
	fs := flag.NewFlagSet("mkdeb", flag.ContinueOnError)
	fs.StringVar(&o.bin, "bin", "", "the palisade binary (linux)")
	fs.StringVar(&o.man, "man", "", "palisade(1) in roff (`palisade manpage`)")
	fs.StringVar(&o.completion, "completion", "", "bash completion (`palisade completion bash`)")
	fs.StringVar(&o.out, "out", "dist", "directory the .deb is written to")
	fs.StringVar(&o.version, "version", "0.1.0-dev", "package version (a leading v is dropped; -suffix becomes ~suffix)")
	fs.StringVar(&o.arch, "arch", "amd64", "Debian architecture of the binary")
	docs := fs.String("docs", "", "comma-separated files for /usr/share/doc/palisade/")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.bin == "" || o.man == "" || o.completion == "" {
		return fmt.Errorf("-bin, -man and -completion are required")
	}
	if *docs != "" {
		o.docs = strings.Split(*docs, ",")
	}
	path, err := build(o)
	if err != nil {
		return err
	}
	fmt.Println(path)
	return nil
}

// build writes the package and returns its path.
func build(o options) (string, error) {
	work, err := os.MkdirTemp("", "palisade-deb")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	// The embedded files and the gzipped man page go through files on disk:
	// nfpm takes its contents and scripts by path.
	staged := map[string]string{}
	for _, name := range []string{"palisade.service", "default", "postinst", "prerm", "postrm", "copyright", "keepalived-notify", "keepalived.conf", "ha-floating.conf", "media-realtime.conf"} {
		b, err := embedded.ReadFile("files/" + name)
		if err != nil {
			return "", err
		}
		p := filepath.Join(work, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return "", err
		}
		staged[name] = p
	}
	man, err := os.ReadFile(o.man)
	if err != nil {
		return "", err
	}
	manGz := filepath.Join(work, "palisade.1.gz")
	if err := writeGzip(manGz, man); err != nil {
		return "", err
	}

	mtime := sourceDate()
	mode := func(m os.FileMode) *files.ContentFileInfo {
		return &files.ContentFileInfo{Mode: m, MTime: mtime, Owner: "root", Group: "root"}
	}
	contents := files.Contents{
		{Source: o.bin, Destination: "/usr/bin/palisade", FileInfo: mode(0o755)},
		{Source: staged["palisade.service"], Destination: "/usr/lib/systemd/system/palisade.service", FileInfo: mode(0o644)},
		{Source: staged["default"], Destination: "/etc/default/palisade", Type: files.TypeConfigNoReplace, FileInfo: mode(0o644)},
		{Source: manGz, Destination: "/usr/share/man/man1/palisade.1.gz", FileInfo: mode(0o644)},
		{Source: o.completion, Destination: "/usr/share/bash-completion/completions/palisade", FileInfo: mode(0o644)},
		{Source: staged["copyright"], Destination: "/usr/share/doc/palisade/copyright", FileInfo: mode(0o644)},
		// keepalived (VRRP) integration, docs/ha.md: the notify script and a sample configuration.
		{Source: staged["keepalived-notify"], Destination: "/usr/lib/palisade/keepalived-notify", FileInfo: mode(0o755)},
		{Source: staged["keepalived.conf"], Destination: "/usr/share/doc/palisade/examples/keepalived.conf", FileInfo: mode(0o644)},
		// the systemd drop-in a unit with floating addresses needs (docs/ha.md)
		{Source: staged["ha-floating.conf"], Destination: "/usr/share/doc/palisade/examples/ha-floating.conf", FileInfo: mode(0o644)},
		// the drop-in media.realtime_priority needs (docs/media.md)
		{Source: staged["media-realtime.conf"], Destination: "/usr/share/doc/palisade/examples/media-realtime.conf", FileInfo: mode(0o644)},
	}
	for _, d := range o.docs {
		contents = append(contents, &files.Content{Source: d, Destination: "/usr/share/doc/palisade/" + filepath.Base(d), FileInfo: mode(0o644)})
	}

	info := nfpm.WithDefaults(&nfpm.Info{
		Name:        "palisade",
		Arch:        o.arch,
		Platform:    "linux",
		Version:     strings.TrimPrefix(o.version, "v"),
		Section:     "net",
		Priority:    "optional",
		Maintainer:  "Palisade developers <palisade@localhost>",
		Description: description,
		Vendor:      "Palisade",
		License:     "proprietary",
		MTime:       mtime,
		Overridables: nfpm.Overridables{
			Contents:   contents,
			Depends:    []string{"passwd"}, // useradd in postinst
			Recommends: []string{"systemd"},
			Scripts: nfpm.Scripts{
				PostInstall: staged["postinst"],
				PreRemove:   staged["prerm"],
				PostRemove:  staged["postrm"],
			},
		},
	})
	if err := nfpm.PrepareForPackager(info, "deb"); err != nil {
		return "", fmt.Errorf("package contents: %w", err)
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return "", err
	}
	out := filepath.Join(o.out, deb.Default.ConventionalFileName(info))
	f, err := os.Create(out)
	if err != nil {
		return "", err
	}
	if err := deb.Default.Package(info, f); err != nil {
		f.Close()
		os.Remove(out)
		return "", fmt.Errorf("build %s: %w", out, err)
	}
	return out, f.Close()
}

const description = `enterprise session border controller in one binary
 Palisade sits between an organisation's IP-PBX (SIP over UDP, plain RTP)
 and a SIP trunk or cloud voice service (SIP over mutual TLS, SRTP) and
 relays every call as a back-to-back user agent. It routes, handles
 transfers itself, manages its own certificates, and is administered with
 a setup tool, a web admin, a CLI and a JSON API with a staged
 configuration. The package runs it as the systemd service palisade.`

// sourceDate is $SOURCE_DATE_EPOCH when set (reproducible packages), else now.
func sourceDate() time.Time {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return time.Unix(n, 0).UTC()
		}
	}
	return time.Now().UTC().Truncate(time.Second)
}

func writeGzip(path string, b []byte) error {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	zw.ModTime = time.Unix(0, 0) // no time stamp: the same page gives the same bytes
	if _, err := zw.Write(b); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}
