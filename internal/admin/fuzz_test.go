package admin

import (
	"net/http"
	"testing"

	"github.com/palisade-sbc/palisade/internal/config"
)

// FuzzPutPreliminary feeds arbitrary bodies to the endpoints that decode
// outside JSON: the handler must answer, never panic, and never with a 5xx.
func FuzzPutPreliminary(f *testing.F) {
	doc, _ := config.Encode(config.Default())
	for _, seed := range [][]byte{doc, []byte(`{}`), []byte(`{"schema":1,"sip":{"listeners":[{"port":70000}]}}`),
		[]byte(`[`), []byte(`{"unit":{"name":"x","name":"y"}}`), []byte(`null`), []byte(`"\u0000"`)} {
		f.Add(seed)
	}
	fx := newFixture(f) // one handler for every input: the password hash is costly
	f.Fuzz(func(t *testing.T, body []byte) {
		fx.t = t
		for _, ep := range []struct{ method, path string }{
			{"PUT", "/api/v1/config/preliminary"},
			{"PUT", "/api/v1/config/preliminary/path/sip.listeners[0]"},
			{"POST", "/api/v1/config/apply"},
			{"POST", "/api/v1/tokens"},
			{"POST", "/api/v1/login"},
		} {
			r := fx.doLocal(ep.method, ep.path, body, nil)
			if r.status >= http.StatusInternalServerError {
				t.Fatalf("%s %s with %q: %d %s", ep.method, ep.path, body, r.status, r.body)
			}
		}
	})
}
