package cli

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/palisade-sbc/palisade/internal/admin"
)

// `palisade tools route` says which rule a number from a source takes, the
// number sent and the time classes in force (here on a stopped unit's data
// directory, testing the preliminary plan before it is applied).
func TestToolsRoute(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	mustCLI(t, dir, "setup", "--non-interactive", "--admin-password", "long-enough-pw",
		"--inside-address", "127.0.0.1", "--outside-address", "127.0.0.2", "--pbx-address", "127.0.0.10", "--itsp-address", "127.0.0.20")
	mustCLI(t, dir, "config", "set", "peers", `[{"name":"pbx","kind":"pbx","interface":"inside","address":"127.0.0.10","transport":"udp"},
		{"name":"itsp","kind":"itsp","interface":"outside","address":"127.0.0.20","transport":"udp"}]`)
	mustCLI(t, dir, "config", "set", "dial_plan.rules", `[{"name":"out","prefix":"9","source":"pbx","forward_to":[{"peer":"itsp","rewrite":"0${user}"}]},
		{"name":"in","head":"+46","forward_to":[{"peer":"pbx"}]}]`)
	out := mustCLI(t, dir, "tools", "route", "912345", "--source", "pbx", "--preliminary")
	for _, want := range []string{`rule "out" matches`, "numbers starting with 9", "012345", "itsp"} {
		if !strings.Contains(out, want) {
			t.Errorf("tools route lacks %q:\n%s", want, out)
		}
	}
	var res admin.RouteResult
	if err := json.Unmarshal([]byte(mustCLI(t, dir, "tools", "route", "+4687", "--source", "itsp", "--preliminary", "--json")), &res); err != nil ||
		res.Rule != "in" || len(res.Targets) != 1 || res.Targets[0].Number != "+4687" {
		t.Errorf("route +4687 from itsp: %+v %v", res, err)
	}
	// From the wrong source the first rule does not match: the default
	// route (the peer on the other side) takes the call.
	if r := palisade(t, dir, "tools", "route", "912345", "--source", "itsp", "--preliminary"); r.code != 0 || !strings.Contains(r.stdout, "no dial plan rule matches") ||
		!strings.Contains(r.stdout, "sip:912345@127.0.0.10") {
		t.Errorf("912345 from itsp: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := palisade(t, dir, "tools", "call", "123"); r.code == 0 || !strings.Contains(r.stderr, "not running") {
		t.Errorf("tools call: exit %d %s", r.code, r.stderr)
	}
	if r := palisade(t, dir, "tools", "ping", "itsp"); r.code == 0 || !strings.Contains(r.stderr, "not running") {
		t.Errorf("tools ping on a stopped unit: exit %d %s", r.code, r.stderr)
	}
}
