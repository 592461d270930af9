package web

import (
	"context"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/palisade-sbc/palisade/internal/config"
)

// Number rules written on the page read back as the same text, and words
// that are not rule parts are field errors.
func TestNumberRuleText(t *testing.T) {
	for _, tc := range []struct {
		in    string
		want  []config.NumberRule
		text  string
		fails bool
	}{
		{in: "", want: []config.NumberRule{}, text: ""},
		{in: " match=00(\\d+)  replace=+$1 ;", want: []config.NumberRule{{Match: `00(\d+)`, Replace: "+$1"}}, text: `match=00(\d+) replace=+$1`},
		{in: "fields=from, strip_prefix=0;add_prefix=+", want: []config.NumberRule{{Fields: []string{"from"}, StripPrefix: "0"}, {AddPrefix: "+"}},
			text: "fields=from strip_prefix=0; add_prefix=+"},
		{in: `match="0 1;2" fields="from, pai"; add_prefix="""+"`, want: []config.NumberRule{{Match: "0 1;2", Fields: []string{"from", "pai"}}, {AddPrefix: `"+`}},
			text: `fields=from,pai match="0 1;2"; add_prefix="""+"`},
		{in: `match=a"b replace=$1`, want: []config.NumberRule{{Match: `a"b`, Replace: "$1"}}, text: `match="a""b" replace=$1`},
		{in: `match="unclosed`, fails: true},
		{in: `match="a"b`, fails: true},
		{in: "prefix=0", fails: true},
		{in: "match", fails: true},
	} {
		f := &form{r: &http.Request{}}
		got := parseRules(f, tc.in, "peers[0].trunk.numbers.outbound")
		if tc.fails {
			if len(f.errs) != 1 || !strings.HasPrefix(f.errs[0].Path, "peers[0].trunk.numbers.outbound[0]") {
				t.Errorf("%q: errors %v", tc.in, f.errs)
			}
			continue
		}
		if len(f.errs) != 0 || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: %+v %v", tc.in, got, f.errs)
		}
		if s := ruleList(got); s != tc.text {
			t.Errorf("%q shown as %q, want %q", tc.in, s, tc.text)
		}
	}
}

// A rule the page cannot read is shown next to its field, with the typed
// text kept and the trunk part open.
func TestTrunkRuleErrorOnPage(t *testing.T) {
	u, c, form := accountsForm(t)
	form.Set("peers.num_in", "prefix=0")
	form.Set("peers.ranges", "52.112.0.0/14")
	page, _ := u.post(t, c, "/traffic/accounts", form, http.StatusUnprocessableEntity)
	for _, want := range []string{`data-path="peers[0].trunk.numbers.inbound"`, `&#34;prefix&#34; is not a part of a number rule`,
		`name="peers.num_in" value="prefix=0"`, `<details class="trunk" open>`} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
}

// Saving the accounts page without touching it keeps every trunk setting
// exactly (the form shows each in a shape it reads back).
func TestTrunkSettingsRoundTrip(t *testing.T) {
	u := newTestUnit(t)
	withTables(t, u)
	ctx := context.Background()
	cfg, etag, err := u.mgr.Preliminary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The profile and type stay unset (an unset one reads as generic; the
	// save must not write "generic" in).
	cfg.Peers[0].Trunk = config.PeerTrunk{
		Targets: []string{"sip2.example.net:5061", "sip3.example.net:5061"}, Ranges: []string{"52.112.0.0/14", "52.120.0.0/14"},
		Keepalive: config.PeerKeepalive{Up: "2xx", Headers: map[string]string{"X-MS-SBC": "Palisade/1.0"}, DownAfter: 2},
		Numbers: config.PeerNumbers{Outbound: []config.NumberRule{{Match: "00([1-9][0-9]{5,14})", Replace: "+$1"}, {Match: "[1-9][0-9]{6,14}", AddPrefix: "+"}},
			Inbound: []config.NumberRule{{Fields: []string{"from", "pai"}, Match: `\+[0-9]+`, StripPrefix: "+"},
				{Match: `([0-9]+);ext=([0-9]+)`, Replace: "$1$2"}, {Match: `"?([0-9]+) ([0-9]+)"?`, Replace: "$1$2"}}, UserPhone: true},
		Trust:       config.PeerTrust{SystemRoots: true, ServerAuthClientCert: true},
		Offer:       config.PeerOffer{Required: true, Codecs: []string{"PCMA", "telephone-event"}},
		HistoryInfo: "rewrite", OwnAllow: true,
	}
	if _, err := u.mgr.SetPreliminary(ctx, cfg, etag, "test"); err != nil {
		t.Fatal(err)
	}
	before, _, _ := u.mgr.Preliminary(ctx)
	c := u.client(t)
	csrf := u.login(t, c)
	form := formOf(t, u.get(t, c, "/traffic/accounts", http.StatusOK))
	form.Set("csrf_token", csrf)
	u.post(t, c, "/traffic/accounts", form, http.StatusSeeOther)
	after, _, _ := u.mgr.Preliminary(ctx)
	if d, err := configDiff(before, after); err != nil || d != "" {
		t.Fatalf("saving the page unchanged changed: %s %v", d, err)
	}
	// And cleared fields give the generic behaviour back.
	for _, k := range []string{"targets", "ranges", "ka_headers", "ka_down_after", "num_out", "num_in", "offer_codecs"} {
		form.Set("peers."+k, "")
	}
	for _, k := range []string{"ka_up", "history_info"} {
		form.Set("peers."+k, "")
	}
	for _, k := range []string{"user_phone", "system_roots", "server_auth", "offer_required", "own_allow"} {
		form.Set("peers."+k, "no")
	}
	form.Set("etag", formOf(t, u.get(t, c, "/traffic/accounts", http.StatusOK)).Get("etag"))
	u.post(t, c, "/traffic/accounts", form, http.StatusSeeOther)
	after, _, _ = u.mgr.Preliminary(ctx)
	if !after.Peers[0].Trunk.IsZero() {
		t.Fatalf("cleared trunk settings: %+v", after.Peers[0].Trunk)
	}
}

// A rule whose match has a space, ";" or '"' in it is typed quoted, saved
// as typed and shown again in the same text.
func TestTrunkRuleQuotedOnPage(t *testing.T) {
	u, c, form := accountsForm(t)
	text := `match="([0-9]+);ext=([0-9]+)" replace=$1$2; match="a""b c" add_prefix=+`
	form.Set("peers.num_out", text)
	u.post(t, c, "/traffic/accounts", form, http.StatusSeeOther)
	cfg, _, _ := u.mgr.Preliminary(context.Background())
	want := []config.NumberRule{{Fields: []string{}, Match: `([0-9]+);ext=([0-9]+)`, Replace: "$1$2"}, {Fields: []string{}, Match: `a"b c`, AddPrefix: "+"}}
	if got := cfg.Peers[0].Trunk.Numbers.Outbound; !reflect.DeepEqual(got, want) {
		t.Fatalf("saved %+v, want %+v", got, want)
	}
	if got := formOf(t, u.get(t, c, "/traffic/accounts", http.StatusOK)).Get("peers.num_out"); got != text {
		t.Fatalf("shown again as %q, want %q", got, text)
	}
}

// accountsForm logs in to a unit with a peer and returns the accounts
// page's form as the browser would send it.
func accountsForm(t *testing.T) (*testUnit, *http.Client, url.Values) {
	u := newTestUnit(t)
	withTables(t, u)
	c := u.client(t)
	csrf := u.login(t, c)
	form := formOf(t, u.get(t, c, "/traffic/accounts", http.StatusOK))
	form.Set("csrf_token", csrf)
	return u, c, form
}
