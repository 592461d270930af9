package web

import (
	"context"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/emiago/sipgo/sip"

	"github.com/palisade-sbc/palisade/internal/admin"
	"github.com/palisade-sbc/palisade/internal/config"
)

// answeringSIP stands in for the SIP subsystem: it answers every request
// 200 and keeps what it was asked to send.
type answeringSIP struct {
	fakeSIP
	mu   sync.Mutex
	sent []*sip.Request
}

func (a *answeringSIP) Contact(string) (sip.Uri, error) {
	return sip.Uri{Scheme: "sip", Host: "127.0.0.2", Port: 5061}, nil
}

func (a *answeringSIP) Do(_ context.Context, _ string, req *sip.Request) (*sip.Response, error) {
	a.mu.Lock()
	a.sent = append(a.sent, req)
	a.mu.Unlock()
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	res.AppendHeader(sip.NewHeader("Server", "TestTrunk/1.0"))
	res.AppendHeader(sip.NewHeader("Allow", "INVITE, ACK, BYE, OPTIONS"))
	return res, nil
}

// TestBrowserPing: Logging and Tools → OPTIONS Ping sends an OPTIONS to the
// chosen peer's address and shows the answer and both messages.
func TestBrowserPing(t *testing.T) {
	ctx := browser(t)
	sipSvc := &answeringSIP{}
	u := newTestUnitWith(t, func(env *admin.Env) {
		env.Live = &admin.Live{SIP: sipSvc}
	})
	bg := context.Background()
	cfg, etag, _ := u.mgr.Preliminary(bg)
	cfg.Peers = []config.Peer{{Name: "trunk", Kind: "itsp", Interface: "outside", Address: "192.0.2.10:5070", Transport: "udp", OptionsInterval: config.Duration(60e9)}}
	if _, err := u.mgr.SetPreliminary(bg, cfg, etag, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := u.mgr.Apply(bg, 0, "test"); err != nil {
		t.Fatal(err)
	}
	sh := newShots(t)
	sh.run(t, ctx, "ping",
		logIn(u.srv.URL),
		chromedp.Navigate(u.srv.URL+"/tools/ping"),
		retry(chromedp.SetValue(chromedp.ID("ping-peer"), "trunk")),
		chromedp.Click(chromedp.ID("ping-btn")),
		waitText("#ping-answer", "trunk answered 200 OK"),
		waitText("#ping-result", "TestTrunk/1.0"),
		waitText("#ping-result", "OPTIONS sip:192.0.2.10:5070 SIP/2.0"),
		sh.take("options-ping"),
	)
	sipSvc.mu.Lock()
	defer sipSvc.mu.Unlock()
	if len(sipSvc.sent) != 1 {
		t.Fatalf("%d requests sent, want 1", len(sipSvc.sent))
	}
	req := sipSvc.sent[0]
	if req.Method != sip.OPTIONS || req.CallID() == nil || req.CSeq() == nil || req.From() == nil || !req.From().Params.Has("tag") {
		t.Errorf("not a complete OPTIONS:\n%s", req)
	}
}
