package trunk

import (
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// FuzzHistoryInfo feeds History-Info values from outside to the rewrite:
// it never panics, and what it sends on names no host but the unit's.
func FuzzHistoryInfo(f *testing.F) {
	f.Add(`<sip:+4930111@10.0.0.5:5060;user=phone?Reason=SIP%3Bcause%3D302>;index=1, <sip:2@h>;index=1.1`)
	f.Add(`"a,b" <sip:x@10.1.1.1>;index=1`)
	f.Add(`<<sip:x@y>>, <`)
	f.Fuzz(func(t *testing.T, v string) {
		for _, out := range HistoryInfo(HistoryRewrite, []string{v}, "sbc.example.com") {
			for _, e := range splitEntries(out) {
				i := strings.IndexByte(e, '<')
				j := strings.LastIndexByte(e, '>')
				if i < 0 || j < i {
					t.Fatalf("entry without URI sent: %q (from %q)", e, v)
				}
				raw, _, _ := strings.Cut(e[i+1:j], "?")
				var u sip.Uri
				if err := sip.ParseUri(raw, &u); err != nil || u.Host != "sbc.example.com" || u.Port != 0 {
					t.Fatalf("rewritten entry keeps another host: %q (from %q): %v", e, v, err)
				}
			}
		}
	})
}
