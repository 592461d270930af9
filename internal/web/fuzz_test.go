package web

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/palisade-sbc/palisade/internal/config"
)

// FuzzSavePage posts arbitrary form bodies to every page's save function:
// no panic, and whatever comes out is either field errors or a document.
func FuzzSavePage(f *testing.F) {
	f.Add("dns.key=r0&dns.domain=a&dns.port=x&dns.del=r0")
	f.Add("peers.key=r0&peers.key=r1&peers.name=a&peers.headers=X:1;bad&peers.options_interval=zz")
	f.Add("suites.key=a&suites.group=&suites.suite=&rules.key=1&rules.forward_to=,,&tc.key=1&tc.days=mon%20tue")
	f.Add("dp.key=a&dp.group=a&dp.name=x&dp.to=p&dp.timeout=zz&dp.key=b&dp.group=a&dp.to=sip:x@y&dp.del=c&dp.group=&dp.key=c")
	f.Add("dp.key=a&dp.del=a&dp.group=b&dp.rewrite=1&dp.key=b&dp.key=c&dp.group=c")
	f.Fuzz(func(t *testing.T, body string) {
		for _, p := range configPages {
			r := httptest.NewRequest(http.MethodPost, p.Path, strings.NewReader(body))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if _, err := url.ParseQuery(body); err != nil {
				continue
			}
			f := &form{r: r}
			p.save(f, config.Default())
		}
	})
}
