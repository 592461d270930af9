package web

import (
	"net/http"
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
	u := newTestUnit(t)
	withTables(t, u)
	c := u.client(t)
	csrf := u.login(t, c)
	form := formOf(t, u.get(t, c, "/traffic/accounts", http.StatusOK))
	form.Set("csrf_token", csrf)
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
