package admin

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/sip/b2bua"
)

// fakeTools records the test call asked for and answers it as given.
type fakeTools struct {
	got b2bua.TestCall
	res *b2bua.TestCallResult
	err error
}

func (f *fakeTools) Ping(context.Context, string) (*b2bua.PingOutcome, error) {
	return nil, errors.New("not here")
}

func (f *fakeTools) TestCall(_ context.Context, tc b2bua.TestCall) (*b2bua.TestCallResult, error) {
	f.got = tc
	return f.res, f.err
}

// TestToolsCallAPI: the target is a number or a URI by its form, the
// defaults are filled in, the outcome is said in one line, and what cannot
// be placed is a 400.
func TestToolsCallAPI(t *testing.T) {
	f := newFixture(t)
	f.login()
	csrf := map[string]string{CSRFHeader: f.csrf}
	fake := &fakeTools{res: &b2bua.TestCallResult{ID: "tools-1", Result: b2bua.TestRejected, Code: 486, Reason: "Busy Here",
		Target: "192.0.2.7:5060", Peer: "itsp", Source: "pbx"}}
	f.h.env.Live = &Live{SIP: fake}
	for _, tc := range []struct {
		body string
		want b2bua.TestCall
	}{
		{`{"target":"4930123"}`, b2bua.TestCall{Number: "4930123", Hold: DefaultTestHold, Ring: DefaultTestRing}},
		{`{"target":"sip:100@192.0.2.7:5060","from":"pbx","hold":1000000000}`, b2bua.TestCall{URI: "sip:100@192.0.2.7:5060", Source: "pbx", Hold: time.Second, Ring: DefaultTestRing}},
	} {
		r := f.do("POST", "/api/v1/tools/call", tc.body, csrf)
		if r.status != http.StatusOK || fake.got != tc.want {
			t.Errorf("%s: %d %s, asked %+v", tc.body, r.status, r.body, fake.got)
		}
		var res CallResult
		r.decode(t, &res)
		if res.Result != "rejected" || res.Message != "rejected by itsp (192.0.2.7:5060) with 486 Busy Here" || res.Messages == nil {
			t.Errorf("%s: %+v", tc.body, res)
		}
	}
	for _, body := range []string{`{}`, `{"number":"1","uri":"sip:a@b"}`} {
		if r := f.do("POST", "/api/v1/tools/call", body, csrf); r.status != http.StatusBadRequest {
			t.Errorf("%s: %d %s", body, r.status, r.body)
		}
	}
	fake.err = errors.New(`"nobody" is not a peer of the running configuration`)
	if r := f.do("POST", "/api/v1/tools/call", `{"target":"1","from":"nobody"}`, csrf); r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "nobody") {
		t.Errorf("unknown source: %d %s", r.status, r.body)
	}
	f.h.env.Live = nil
	if r := f.do("POST", "/api/v1/tools/call", `{"target":"1"}`, csrf); r.status != http.StatusConflict {
		t.Errorf("stopped unit: %d %s", r.status, r.body)
	}
}
