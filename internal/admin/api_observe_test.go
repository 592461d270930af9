package admin

import (
	"bytes"
	"context"
	"encoding/csv"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/observe"
	"github.com/palisade-sbc/palisade/internal/observe/observetest"
	"github.com/palisade-sbc/palisade/internal/sip/b2bua"
)

// observeFixture is an API fixture whose unit has an observe service with
// one failed call traced and recorded, and one call in progress.
func observeFixture(t *testing.T) (*apiFixture, *observe.Service) {
	f := newFixture(t)
	f.login()
	svc := observe.New(f.h.env.Store, nil, nil)
	t.Cleanup(func() { svc.Close() })
	f.h.env.Live = &Live{Observe: svc}

	observetest.RecordBusyCall(svc)
	svc.Recorder.CallStarted(observe.CallStart{ID: "u2", Direction: observe.DirInbound,
		A: observe.CallLeg{From: "sip:+4610@trunk", To: "sip:1002@pbx"}})
	return f, svc
}

func TestObserveAPI(t *testing.T) {
	f, svc := observeFixture(t)

	var calls []observe.CallRow
	r := f.do("GET", "/api/v1/calls", nil, nil)
	r.decode(t, &calls)
	if r.status != 200 || len(calls) != 2 {
		t.Fatalf("calls: %d %s", r.status, r.body)
	}
	byID := map[string]observe.CallRow{}
	for _, c := range calls {
		byID[c.ID] = c
	}
	if u1 := byID["u1"]; u1.State != "ended" || u1.Code != 486 || !u1.Failed || !u1.Traced || u1.Messages != 4 || u1.From != "1001" {
		t.Errorf("u1 row %+v", u1)
	}
	if u2 := byID["u2"]; u2.State != "active" || u2.From != "+4610" {
		t.Errorf("u2 row %+v", u2)
	}
	r = f.do("GET", "/api/v1/calls?active=1", nil, nil)
	r.decode(t, &calls)
	if len(calls) != 1 || calls[0].ID != "u2" {
		t.Errorf("active calls %s", r.body)
	}
	r = f.do("GET", "/api/v1/calls?result=failed&number=4687", nil, nil)
	r.decode(t, &calls)
	if len(calls) != 1 || calls[0].ID != "u1" {
		t.Errorf("failed calls to 4687: %s", r.body)
	}
	for q, want := range map[string]string{"486": "u1", "b-leg": "u1", "%2B4610": "u2", "failed": "u1"} {
		r = f.do("GET", "/api/v1/calls?q="+q, nil, nil)
		r.decode(t, &calls)
		if len(calls) != 1 || calls[0].ID != want {
			t.Errorf("search %q: %s", q, r.body)
		}
	}
	if r := f.do("GET", "/api/v1/calls?since=yesterday", nil, nil); r.status != 400 {
		t.Errorf("bad since: %d", r.status)
	}

	var tr struct {
		Call     observe.CallSummary
		Messages []observe.Message
	}
	r = f.do("GET", "/api/v1/calls/b-leg/trace", nil, nil) // by the outside leg's Call-ID
	r.decode(t, &tr)
	if r.status != 200 || tr.Call.ID != "u1" || len(tr.Messages) != 4 || tr.Messages[2].Label != "486 Busy Here" {
		t.Fatalf("trace: %d %s", r.status, r.body)
	}
	if r := f.do("GET", "/api/v1/calls/nope/trace", nil, nil); r.status != 404 {
		t.Errorf("unknown call: %d", r.status)
	}

	r = f.do("GET", "/api/v1/calls/u1/ladder.svg", nil, nil)
	if r.status != 200 || r.header.Get("Content-Type") != "image/svg+xml" || bytes.Count(r.body, []byte(`<g class="msg`)) != 4 {
		t.Errorf("ladder: %d %s", r.status, r.body)
	}

	r = f.do("GET", "/api/v1/trace.pcap?call=u1", nil, nil)
	if r.status != 200 || !bytes.HasPrefix(r.body, []byte{0xd4, 0xc3, 0xb2, 0xa1}) || bytes.Count(r.body, []byte("Call-ID: ")) != 4 {
		t.Errorf("pcap: %d, %d bytes", r.status, len(r.body))
	}
	var win []observe.Message
	r = f.do("GET", "/api/v1/trace?since=1h", nil, nil)
	r.decode(t, &win)
	if len(win) != 4 {
		t.Errorf("window: %s", r.body)
	}
	if r := f.do("GET", "/api/v1/trace.pcap", nil, nil); r.status != 400 {
		t.Errorf("pcap without call or since: %d", r.status)
	}

	r = f.do("GET", "/api/v1/cdr?format=csv", nil, nil)
	rows, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
	if err != nil || len(rows) != 2 || rows[1][0] != "u1" || !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") {
		t.Errorf("cdr csv: %v %q", err, r.body)
	}
	var cdrs []observe.CDR
	f.do("GET", "/api/v1/cdr?since=1h", nil, nil).decode(t, &cdrs)
	if len(cdrs) != 1 || cdrs[0].B.CallID != "b-leg" {
		t.Errorf("cdr json: %+v", cdrs)
	}

	var active []observe.CDR
	f.do("GET", "/api/v1/status/calls", nil, nil).decode(t, &active)
	if len(active) != 1 || active[0].ID != "u2" {
		t.Errorf("status calls: %+v", active)
	}
	if r := f.do("GET", "/api/v1/status/peers", nil, nil); r.status != 200 || strings.TrimSpace(string(r.body)) != "[]" {
		t.Errorf("peers without a source: %d %s", r.status, r.body)
	}
	// The SIP layer's keepalive states, dated by the observe service.
	f.h.env.Live.Peers = fakePeers{{Name: "trunk", Up: true, Keepalive: true, LastCheck: time.Now()}, {Name: "pbx", Failures: 3, LastError: "408"}}
	var peers []observe.PeerStatus
	f.do("GET", "/api/v1/status/peers", nil, nil).decode(t, &peers)
	if len(peers) != 2 || peers[0].Name != "pbx" || peers[0].State != "down" || peers[0].Failures != 3 ||
		peers[1].Name != "trunk" || peers[1].State != "up" || peers[1].Since.IsZero() {
		t.Errorf("peers from the SIP layer: %+v", peers)
	}
	svc.Sources.Register(observe.StatusSource{Kind: observe.StatusPeers, Status: func(context.Context) (any, error) {
		return []map[string]string{{"name": "trunk", "state": "up"}}, nil
	}})
	if r := f.do("GET", "/api/v1/status/peers", nil, nil); !bytes.Contains(r.body, []byte(`"up"`)) {
		t.Errorf("peers: %s", r.body)
	}
	if r := f.do("GET", "/api/v1/status/certificates", nil, nil); r.status != 200 {
		t.Errorf("certificates: %d %s", r.status, r.body)
	}
}

func TestObserveAPIStoppedUnit(t *testing.T) {
	f, svc := observeFixture(t)
	svc.Recorder.Flush() // the records a stopped unit has are those written
	f.h.env.Live = nil   // as the CLI serves a stopped unit's data directory
	if r := f.do("GET", "/api/v1/calls/u1/trace", nil, nil); r.status != http.StatusConflict {
		t.Errorf("trace on a stopped unit: %d", r.status)
	}
	var cdrs []observe.CDR
	r := f.do("GET", "/api/v1/cdr", nil, nil)
	r.decode(t, &cdrs)
	if len(cdrs) != 1 {
		t.Errorf("cdr on a stopped unit: %s", r.body)
	}
	var calls []observe.CallRow
	f.do("GET", "/api/v1/calls", nil, nil).decode(t, &calls)
	if len(calls) != 1 || calls[0].ID != "u1" || calls[0].Traced {
		t.Errorf("calls on a stopped unit: %+v", calls)
	}
}

func TestObserveAPINeedsLogin(t *testing.T) {
	f := newFixture(t)
	for _, p := range []string{"/api/v1/calls", "/api/v1/calls/x/trace", "/api/v1/calls/x/ladder.svg", "/api/v1/trace.pcap?since=1h", "/api/v1/cdr"} {
		if r := f.do("GET", p, nil, nil); r.status != http.StatusUnauthorized {
			t.Errorf("%s: %d", p, r.status)
		}
	}
}

// fakePeers stands for the SIP layer's keepalive states.
type fakePeers []b2bua.PeerState

func (p fakePeers) PeerStates() []b2bua.PeerState { return p }
