package cli

import (
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"

	"github.com/palisade-sbc/palisade/internal/observe"
)

func init() {
	Register(&Command{
		Name:    "trace",
		Summary: "show the cleartext SIP of both legs of a call, or export it as pcap",
		Usage:   "trace [CALL-ID | --since DURATION (default 15m)] [--pcap FILE] [--svg FILE] [--json]",
		Run:     runTrace,
	})
}

// defaultTraceWindow is what `palisade trace` without arguments shows.
const defaultTraceWindow = "15m"

func runTrace(c *Context, args []string) error {
	fs := flag.NewFlagSet("trace", flag.ContinueOnError)
	since := fs.String("since", "", "every traced message since this long ago (30m, 2h) or an RFC 3339 time")
	pcap := fs.String("pcap", "", "write the messages to this pcap file (Wireshark, tshark)")
	svg := fs.String("svg", "", "write the call-flow diagram of CALL-ID to this SVG file")
	pos, err := parseFlags(c, fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) > 1:
		return c.Usagef("trace takes one CALL-ID")
	case len(pos) == 1 && *since != "":
		return c.Usagef("give a CALL-ID or --since, not both")
	case *svg != "" && len(pos) == 0:
		return c.Usagef("--svg needs a CALL-ID")
	}
	q := url.Values{}
	switch {
	case len(pos) == 1:
		q.Set("call", pos[0])
	case *since != "":
		q.Set("since", *since)
	default:
		q.Set("since", defaultTraceWindow)
	}
	if *pcap != "" {
		if err := download(c, "/api/v1/trace.pcap?"+q.Encode(), *pcap); err != nil {
			return err
		}
	}
	if *svg != "" {
		if err := download(c, "/api/v1/calls/"+url.PathEscape(pos[0])+"/ladder.svg", *svg); err != nil {
			return err
		}
	}
	if *pcap != "" || *svg != "" {
		return nil
	}
	var msgs []observe.Message
	if err := c.Call("GET", "/api/v1/trace?"+q.Encode(), nil, &msgs); err != nil {
		return err
	}
	return c.Output(msgs, func(w io.Writer) {
		if len(msgs) == 0 {
			fmt.Fprintln(w, "no SIP messages traced in that time")
			return
		}
		for _, m := range msgs {
			src, dst := m.Remote, m.Local
			if m.Direction == "out" {
				src, dst = m.Local, m.Remote
			}
			fmt.Fprintf(w, "#%d %s %s %s %s %s → %s\n", m.Index, m.Time.Local().Format("15:04:05.000"), m.Leg,
				map[string]string{"in": "received", "out": "sent"}[m.Direction], m.Transport, addr(src), addr(dst))
			fmt.Fprintf(w, "%s\n", m.Text)
		}
	})
}

// download writes the body of a GET to file and says so on stderr.
func download(c *Context, path, file string) error {
	cl, err := c.Client()
	if err != nil {
		return err
	}
	resp, err := cl.Do(c.Ctx(), "GET", path, nil, nil)
	if err != nil {
		return err
	}
	if err := os.WriteFile(file, resp.Body, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	fmt.Fprintf(c.Stderr, "wrote %s (%d bytes)\n", file, len(resp.Body))
	return nil
}
