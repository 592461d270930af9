package web

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/testkit/browsertest"

	"github.com/palisade-sbc/palisade/internal/admin"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/sip/b2bua"
	"github.com/palisade-sbc/palisade/internal/testkit"
	"github.com/palisade-sbc/palisade/internal/testkit/siptest"
)

// toolsUnit is a web admin whose SIP subsystem is real (inside 127.0.0.1,
// outside 127.0.0.2, free ports) with a trunk "itsp" played by a Go UA on
// 127.0.0.3 and a PBX peer, the same peers in the running configuration
// (the ladder names them).
func toolsUnit(t *testing.T, setup func(*siptest.Peer)) (*testUnit, *siptest.Peer) {
	t.Helper()
	trunk := siptest.NewPeerWith(t, "trunk", "127.0.0.3", "udp", setup)
	peers := []config.Peer{
		{Name: "pbx", Kind: "pbx", Interface: "inside", Address: "127.0.0.1:5", Transport: "udp"},
		{Name: "itsp", Kind: "itsp", Interface: "outside", Address: trunk.Addr.String(), Transport: "udp"},
	}
	scfg := config.Default()
	scfg.Network.DNSServers = []string{"127.0.0.1:9"}
	scfg.SIP.Listeners = []config.Listener{
		{Interface: "inside", Transport: "udp", Port: testkit.FreePort(t, "udp", "127.0.0.1")},
		{Interface: "outside", Transport: "udp", Port: testkit.FreePort(t, "udp", "127.0.0.2")},
	}
	scfg.Peers = peers
	sipSvc := b2bua.New(b2bua.Deps{})
	if err := sipSvc.Apply(context.Background(), scfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sipSvc.Close() })
	u := newTestUnitWith(t, func(env *admin.Env) { env.Live = &admin.Live{SIP: sipSvc} })
	bg := context.Background()
	cfg, etag, _ := u.mgr.Preliminary(bg)
	cfg.Peers = peers
	if _, err := u.mgr.SetPreliminary(bg, cfg, etag, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := u.mgr.Apply(bg, 0, "test"); err != nil {
		t.Fatal(err)
	}
	return u, trunk
}

// TestBrowserPing: Logging and Tools → OPTIONS Ping sends an OPTIONS to the
// chosen peer, then to a bare SIP URI, and shows the answer, both messages
// and their ladder with the peer's name.
func TestBrowserPing(t *testing.T) {
	ctx := browser(t)
	u, trunk := toolsUnit(t, nil)
	sh := newShots(t)
	sh.run(t, ctx, "ping peer",
		logIn(u.srv.URL),
		browsertest.Navigate(u.srv.URL+"/tools/ping"),
		retry(chromedp.SetValue(chromedp.ID("ping-peer"), "itsp")),
		chromedp.Click(chromedp.ID("ping-btn")),
		waitText("#ping-answer", "itsp answered 200"),
		waitText("#ping-result", "OPTIONS sip:"+trunk.Addr.String()+" SIP/2.0"),
		waitText("#ladder", "OPTIONS"),
	)
	if r := trunk.Next(sip.OPTIONS); r.From() == nil || !r.From().Params.Has("tag") || r.CallID() == nil {
		t.Errorf("not a complete OPTIONS:\n%s", r)
	}
	sh.run(t, ctx, "ping uri",
		browsertest.Navigate(u.srv.URL+"/tools/ping"),
		retry(chromedp.SendKeys(chromedp.ID("ping-uri"), "sip:"+trunk.Addr.String()+";transport=udp")),
		chromedp.Click(chromedp.ID("ping-btn")),
		waitText("#ping-answer", "itsp answered 200"),
		waitText("#ladder", "itsp"),
		waitText("#ladder", "200 Test"),
		sh.take("options-ping-uri"),
	)
	trunk.Next(sip.OPTIONS)
	sh.run(t, ctx, "ping bad uri",
		browsertest.Navigate(u.srv.URL+"/tools/ping"),
		retry(chromedp.SendKeys(chromedp.ID("ping-uri"), "http://example.com")),
		chromedp.Click(chromedp.ID("ping-btn")),
		waitText("#problem", "neither a peer name nor a SIP URI"),
	)
}

// TestBrowserTestCall: Logging and Tools → Test Call calls a number routed
// to the trunk, which answers; the page shows "answered" and the ladder
// with the trunk's name and INVITE … BYE. A busy trunk shows "rejected"
// with its status.
func TestBrowserTestCall(t *testing.T) {
	ctx := browser(t)
	var busy atomic.Bool
	u, trunk := toolsUnit(t, func(p *siptest.Peer) {
		p.OnInvite = func(s *sipgo.DialogServerSession, req *sip.Request) {
			if busy.Load() {
				_ = s.Respond(486, "Busy Here", nil)
				return
			}
			siptest.RingAndAnswer(s, req)
		}
	})
	sh := newShots(t)
	sh.run(t, ctx, "call",
		logIn(u.srv.URL),
		browsertest.Navigate(u.srv.URL+"/tools/call"),
		retry(chromedp.SendKeys(chromedp.ID("call-target"), "4930123")),
		chromedp.SetValue(chromedp.ID("call-hold"), "500ms"),
		chromedp.Click(chromedp.ID("call-btn")),
		waitText("#call-message", "answered by itsp"),
		waitText("#call-status", "200 OK"),
		waitText("#ladder", "INVITE"),
		waitText("#ladder", "180 Ringing"),
		waitText("#ladder", "BYE"),
		waitText("#ladder", "itsp"),
		sh.take("test-call-answered"),
	)
	if r := trunk.Next(sip.INVITE); r.Recipient.User != "4930123" || len(r.Body()) == 0 {
		t.Errorf("INVITE to the trunk:\n%s", r)
	}
	trunk.Next(sip.BYE)
	busy.Store(true)
	sh.run(t, ctx, "busy",
		browsertest.Navigate(u.srv.URL+"/tools/call"),
		retry(chromedp.SendKeys(chromedp.ID("call-target"), "sip:4930123@"+trunk.Addr.String())),
		chromedp.Click(chromedp.ID("call-btn")),
		waitText("#call-message", "rejected by itsp"),
		waitText("#call-status", "486 Busy Here"),
		sh.take("test-call-rejected"),
	)
	sh.run(t, ctx, "bad hold",
		browsertest.Navigate(u.srv.URL+"/tools/call"),
		retry(chromedp.SendKeys(chromedp.ID("call-target"), "1")),
		chromedp.SetValue(chromedp.ID("call-hold"), "soon"),
		chromedp.Click(chromedp.ID("call-btn")),
		waitText("#problem", "Hold must be a duration"),
	)
}
