package cli

import (
	"bytes"
	"os/exec"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestGlobalFlagHelpCoversGlobalFlags(t *testing.T) {
	var have, want []string
	for _, f := range globalFlagHelp {
		have = append(have, f.Name)
		if (f.Arg == "") != globalFlags[f.Name] {
			t.Errorf("--%s: argument %q, but globalFlags says bool=%v", f.Name, f.Arg, globalFlags[f.Name])
		}
	}
	for f := range globalFlags {
		want = append(want, f)
	}
	sort.Strings(have)
	sort.Strings(want)
	if !reflect.DeepEqual(have, want) {
		t.Fatalf("globalFlagHelp describes %v, globalFlags has %v", have, want)
	}
}

func TestParseUsage(t *testing.T) {
	for _, tc := range []struct {
		name, usage string
		want        usageHelp
	}{
		{"status", "status [calls|registrations|peers] [--json]",
			usageHelp{Subcommands: []string{"calls", "registrations", "peers"}, Flags: []string{"json"}, Values: map[string][]string{}}},
		{"config", "config show [--running|--saved] | export [FILE]\n       | apply [--confirm-within DURATION] | confirm",
			usageHelp{Subcommands: []string{"show", "export", "apply", "confirm"}, Flags: []string{"running", "saved", "confirm-within"}, Values: map[string][]string{}}},
		{"run", "run [--data DIR] [--log-format text|json]",
			usageHelp{Flags: []string{"data", "log-format"}, Values: map[string][]string{"log-format": {"text", "json"}}}},
		{"trace", "trace [CALL-ID | --since DURATION (default 15m)] [--pcap FILE]",
			usageHelp{Flags: []string{"since", "pcap"}, Values: map[string][]string{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseUsage(tc.name, tc.usage); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// The manual page names every visible command with its synopsis, and
// groff reads it without a warning.
func TestManPage(t *testing.T) {
	var b bytes.Buffer
	if err := writeManPage(&b, time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	if !strings.HasPrefix(page, `.TH PALISADE 1 "2026-01-02"`) {
		t.Fatalf("header: %.80q", page)
	}
	for _, c := range sortedCommands() {
		if c.Hidden {
			if strings.Contains(page, ".SS "+c.Name+"\n") {
				t.Errorf("hidden command %s in the manual", c.Name)
			}
			continue
		}
		if !strings.Contains(page, ".SS "+c.Name+"\n") || !strings.Contains(page, roffText("palisade "+strings.Split(c.Usage, "\n")[0])) {
			t.Errorf("command %s or its synopsis missing from the manual", c.Name)
		}
	}
	groff, err := exec.LookPath("groff")
	if err != nil {
		t.Skip("install Debian package groff to check the roff")
	}
	cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z")
	cmd.Stdin = strings.NewReader(page)
	out, err := cmd.CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Fatalf("groff: %v\n%s", err, out)
	}
}

// The completion script works in a real bash: words completed at a few
// positions of a command line.
func TestBashCompletion(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("install Debian package bash")
	}
	var b bytes.Buffer
	if err := writeBashCompletion(&b); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		line string // words typed; the last is the one being completed
		want []string
		not  []string
	}{
		{"palisade ", []string{"run", "config", "setup", "--data"}, []string{"manpage"}},
		{"palisade con", []string{"config"}, []string{"run"}},
		{"palisade --data /x config ap", []string{"apply"}, nil},
		{"palisade config apply --", []string{"--confirm-within", "--json"}, []string{"apply"}},
		{"palisade run --log-format ", []string{"text", "json"}, []string{"--data"}},
		{"palisade status ", []string{"calls", "peers", "--json"}, nil},
		{"palisade help se", []string{"setup"}, nil},
	} {
		words := strings.Split(tc.line, " ")
		quoted := make([]string, len(words))
		for i, w := range words {
			quoted[i] = "'" + w + "'"
		}
		script := b.String() + "\nCOMP_WORDS=(" + strings.Join(quoted, " ") + ")\nCOMP_CWORD=" +
			strconv.Itoa(len(words)-1) + "\n_palisade\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
		out, err := exec.Command(bash, "--norc", "-c", script).CombinedOutput()
		if err != nil {
			t.Fatalf("%q: %v\n%s", tc.line, err, out)
		}
		got := map[string]bool{}
		for _, w := range strings.Fields(string(out)) {
			got[w] = true
		}
		for _, w := range tc.want {
			if !got[w] {
				t.Errorf("%q: %q not offered (got %s)", tc.line, w, out)
			}
		}
		for _, w := range tc.not {
			if got[w] {
				t.Errorf("%q: %q offered", tc.line, w)
			}
		}
	}
}
