package web

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/palisade-sbc/palisade/internal/testkit/browsertest"

	"github.com/palisade-sbc/palisade/internal/admin"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/observe"
	"github.com/palisade-sbc/palisade/internal/observe/alarms"
	"github.com/palisade-sbc/palisade/internal/sip/b2bua"
)

// switchSIP is a SIP subsystem stand-in whose peers' states the test changes.
type switchSIP struct {
	mu    sync.Mutex
	peers []b2bua.PeerState
}

func (*switchSIP) Name() string                                { return "sip" }
func (*switchSIP) Apply(context.Context, *config.Config) error { return nil }
func (*switchSIP) Drain(context.Context) error                 { return nil }
func (*switchSIP) Close() error                                { return nil }
func (f *switchSIP) PeerStates() []b2bua.PeerState {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]b2bua.PeerState(nil), f.peers...)
}

func (f *switchSIP) set(p ...b2bua.PeerState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.peers = p
}

// TestBrowserDashboard: after login the dashboard is the first page; it shows
// the calls the recorder saw (ASR, ACD), the peers with "not checked yet"
// for a peer no check has reached, the certificates with days left, and the
// alarm of a peer that went down, which clears when the peer answers again.
func TestBrowserDashboard(t *testing.T) {
	ctx := browser(t)
	var svc *observe.Service
	sip := &switchSIP{}
	checked := time.Now().Add(-10 * time.Second)
	sip.set(
		b2bua.PeerState{Name: "itsp", Up: false, Failures: 3, LastCheck: checked, LastError: "no answer to OPTIONS", Keepalive: true},
		b2bua.PeerState{Name: "lab", Up: true, Keepalive: true}, // no check ran yet
	)
	u := newTestUnitWith(t, func(env *admin.Env) {
		svc = observe.New(env.Store, nil, nil)
		env.Live = &admin.Live{Observe: svc, Peers: sip}
	})
	t.Cleanup(func() { svc.Close() })
	// Three calls: one answered for 90 s, one busy, one still in progress.
	now := time.Now()
	rec := svc.Recorder
	rec.CallStarted(observe.CallStart{ID: "c1", Time: now.Add(-100 * time.Second), Direction: observe.DirOutbound})
	rec.CallAnswered(observe.CallAnswer{ID: "c1", Time: now.Add(-95 * time.Second)})
	rec.CallEnded(observe.CallEnd{ID: "c1", Time: now.Add(-5 * time.Second), Code: 200, EndedBy: observe.EndedByCaller})
	rec.CallStarted(observe.CallStart{ID: "c2", Time: now.Add(-3 * time.Second), Direction: observe.DirInbound})
	rec.CallEnded(observe.CallEnd{ID: "c2", Time: now.Add(-2 * time.Second), Code: 486, EndedBy: observe.EndedByCallee})
	rec.CallStarted(observe.CallStart{ID: "c3", Direction: observe.DirOutbound})

	sh := newShots(t)
	sh.run(t, ctx, "dashboard",
		logIn(u.srv.URL),
		waitText("h1", "Dashboard"),
		waitText("#active-calls", "1"),
		waitText("#traffic-stats tr[data-window='5m'] .calls", "3"),
		waitText("#traffic-stats tr[data-window='5m'] .asr", "50 %"),
		waitText("#traffic-stats tr[data-window='5m'] .acd", "1 min 30 s"),
		waitText("#dash-peers tr[data-peer='lab']", "not checked yet"),
		waitText("#dash-peers tr[data-peer='itsp']", "down"),
		waitText("#dash-certificates tr[data-cert='default']", "days"),
		waitText("#alarms tr[data-kind='peer_down'][data-subject='itsp']", "no answer to OPTIONS"),
		sh.take("dashboard-peer-down"),
	)
	var svg string
	sh.run(t, ctx, "graph", fetchText(u.srv.URL+"/api/v1/history/calls.svg?range=hour", &svg))
	if !strings.HasPrefix(svg, "<svg") || !strings.Contains(svg, "started") {
		t.Fatalf("calls graph: %.300s", svg)
	}
	// The peer answers again: the page (re-read every 10 s) shows the alarm cleared.
	sip.set(
		b2bua.PeerState{Name: "itsp", Up: true, LastCheck: time.Now(), Keepalive: true},
		b2bua.PeerState{Name: "lab", Up: true, LastCheck: time.Now(), Keepalive: true},
	)
	var alarmsJSON string
	sh.run(t, ctx, "alarm-cleared",
		waitText("#no-alarms", "No active alarms"),
		waitText("#dash-peers tr[data-peer='itsp']", "up"),
		chromedp.Click("#cleared-alarms summary", chromedp.NodeVisible),
		waitText("#cleared-alarms tr[data-kind='peer_down']", "itsp"),
		sh.take("dashboard-alarm-cleared"),
		fetchText(u.srv.URL+"/api/v1/alarms", &alarmsJSON),
	)
	var got struct{ Active, Cleared []alarms.Alarm }
	if err := json.Unmarshal([]byte(alarmsJSON), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Active) != 0 || len(got.Cleared) != 1 || got.Cleared[0].Subject != "itsp" || !got.Cleared[0].Cleared.After(got.Cleared[0].Raised) {
		t.Fatalf("/api/v1/alarms: %s", alarmsJSON)
	}
}

// TestBrowserStatusInWords: the Status page says the configuration state in
// sentences and shows times, durations and booleans for people.
func TestBrowserStatusInWords(t *testing.T) {
	ctx := browser(t)
	var svc *observe.Service
	sip := &switchSIP{}
	sip.set(b2bua.PeerState{Name: "lab", Up: true, Keepalive: true})
	u := newTestUnitWith(t, func(env *admin.Env) {
		svc = observe.New(env.Store, nil, nil)
		env.Live = &admin.Live{Observe: svc, Peers: sip}
	})
	t.Cleanup(func() { svc.Close() })
	sh := newShots(t)
	var text string
	sh.run(t, ctx, "status",
		logIn(u.srv.URL),
		browsertest.Navigate(u.srv.URL+"/tools/status"),
		waitText("#status", "Running the saved configuration, version 1"),
		waitText("#status", "not checked yet"),
		sh.take("status-in-words"),
		textOf(chromedp.CSS("#status"), &text),
	)
	for _, raw := range []string{"etag", "pending confirm", "running version", "true", "false", "unchecked"} {
		if strings.Contains(strings.ToLower(text), raw) {
			t.Errorf("the status page shows %q:\n%s", raw, text)
		}
	}
}
