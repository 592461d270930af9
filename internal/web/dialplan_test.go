package web

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
)

// The dial plan page posts a rule as a group of rows: the first with the
// match fields, the rest with one destination each. Deleting a rule's
// first row deletes the rule with all its rows.
func TestDialPlanGroupedRows(t *testing.T) {
	u := newTestUnit(t)
	c := u.client(t)
	csrf := u.login(t, c)
	richConfig(t, u)
	form := formOf(t, u.get(t, c, "/traffic/dialplan", http.StatusOK))
	form.Set("csrf_token", csrf)
	if got := form["dp.key"]; len(got) != 3 {
		t.Fatalf("rows posted for two rules with 2+1 destinations: %v", got)
	}
	// A new rule of two rows, as the "Add" button makes it.
	add := func(key, group, name, match, pattern, to, rewrite, timeout string) {
		for k, v := range map[string]string{"key": key, "group": group, "name": name, "match": match, "pattern": pattern,
			"tail": "", "from_uri": "", "source": "", "time_class": "", "to": to, "rewrite": rewrite, "timeout": timeout} {
			form.Add("dp."+k, v)
		}
	}
	add("n1", "n1", "emergency", "head", "112", "itsp", "", "10s")
	add("n2", "n1", "", "", "", "sip:112@backup.example.net", "${user}", "")
	form.Add("dp.del", "r1-0") // the "in" rule
	u.post(t, c, "/traffic/dialplan", form, http.StatusSeeOther)

	cfg, _, _ := u.mgr.Preliminary(context.Background())
	rules := cfg.DialPlan.Rules
	if len(rules) != 2 || rules[0].Name != "out" || rules[1].Name != "emergency" {
		t.Fatalf("rules after save: %+v", rules)
	}
	want := []config.Forward{{Peer: "itsp", Timeout: config.Duration(10 * time.Second)}, {URI: "sip:112@backup.example.net", Rewrite: "${user}"}}
	if got := rules[1].ForwardTo; len(got) != 2 || got[0] != want[0] || got[1] != want[1] || rules[1].Head != "112" {
		t.Fatalf("new rule = %+v", rules[1])
	}
	if got := rules[0].ForwardTo; len(got) != 2 || got[0].Timeout.D() != 20*time.Second || got[1].Rewrite != "0${user}" {
		t.Fatalf("kept rule = %+v", rules[0])
	}

	// A rule without any destination is refused next to the rule.
	form = formOf(t, u.get(t, c, "/traffic/dialplan", http.StatusOK))
	form.Set("csrf_token", csrf)
	add("n3", "n3", "nowhere", "prefix", "7", "", "", "")
	body, _ := u.post(t, c, "/traffic/dialplan", form, http.StatusUnprocessableEntity)
	if !strings.Contains(body, `data-path="dial_plan.rules[2].forward_to"`) {
		t.Errorf("no error for the rule without destinations:\n%s", excerpt(body, "nowhere"))
	}
}

func TestFormDuration(t *testing.T) {
	for in, want := range map[time.Duration]string{
		0: "0s", time.Minute: "1m", 90 * time.Minute: "1h30m", 2160 * time.Hour: "2160h",
		500 * time.Millisecond: "500ms", time.Hour + time.Second: "1h0m1s",
	} {
		got := formDuration(config.Duration(in))
		if got != want {
			t.Errorf("%v: %q, want %q", in, got, want)
		}
		back, err := time.ParseDuration(got)
		if err != nil || back != in {
			t.Errorf("%q reads back as %v (%v)", got, back, err)
		}
	}
}

// Messages name the page and button, not the CLI command.
func TestPageWords(t *testing.T) {
	for in, want := range map[string]string{
		"import the certificate of &#34;X&#34; with &#39;palisade ca import&#39; if you trust it": "import the certificate of &#34;X&#34; on Basic Configuration → Certificates with “Import CA certificate” if you trust it",
		"the request is pending): import it with 'palisade cert import' or choose":                "the request is pending): import it with “Import” on the certificate's row of Basic Configuration → Certificates or choose",
		"waits for the CA-signed certificate (&#39;palisade cert import&#39;)":                    "waits for the CA-signed certificate (“Import” on the certificate's row of Basic Configuration → Certificates)",
	} {
		if got := string(pageWords([]byte(in))); got != want {
			t.Errorf("%s\n got %s\nwant %s", in, got, want)
		}
	}
}
