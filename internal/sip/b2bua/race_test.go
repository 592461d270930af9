package b2bua

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/config"
)

// TestAuthRetryEarlyMediaThenAnswer: a TCP trunk challenges every INVITE
// and answers the authorized retry with 183 (early media SDP) and 200 back
// to back, while the call list is read all the time. Every 183 reaches the
// PBX, with its SDP, before the 200 (the retry's responses are taken off
// the wire from the moment it is sent), and under -race the relay of the
// retry's responses shares no call state unlocked with other goroutines.
func TestAuthRetryEarlyMediaThenAnswer(t *testing.T) {
	const calls = 20
	pbx := newPeerUA(t, "pbx", "127.0.0.1", "udp")
	itsp := newPeerUA(t, "trunk", "127.0.0.3", "tcp")
	itsp.SetOnInvite(func(s *sipgo.DialogServerSession, req *sip.Request) {
		if req.GetHeader("Proxy-Authorization") == nil {
			_ = s.Respond(407, "Proxy Authentication Required", nil, sip.NewHeader("Proxy-Authenticate",
				`Digest realm="trunk.example", nonce="race-n0nce", algorithm=MD5, qop="auth"`))
			return
		}
		early := testSDP("127.0.0.3", 5002)
		_ = s.Respond(183, "Session Progress", early, sip.NewHeader("Content-Type", "application/sdp")) // no gap
		_ = s.RespondSDP(testSDP("127.0.0.3", 5000))
	})
	u := newTestUnit(t, pbx, nil, func(c *config.Config) {
		c.SIP.Listeners = append(c.SIP.Listeners, config.Listener{Interface: "outside", Transport: "tcp"})
		c.Peers = append(c.Peers, config.Peer{Name: "itsp", Kind: "itsp", Interface: "outside",
			Address: itsp.Addr.String(), Transport: "tcp", Auth: config.PeerAuth{Username: "palisade", Password: "s3cret"}})
	})

	// the call list is read while the calls ring and connect
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, st := range u.ActiveCalls() {
				_ = st.Legs[1].RemoteTag
			}
			sleepMS(1)
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	ctx := ctxT(t)
	for range calls {
		sess, err := pbx.Call(ctx, u.inside(), "4930123456", testSDP("127.0.0.1", 7000))
		if err != nil {
			t.Fatal(err)
		}
		if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
			t.Fatal(err)
		}
		_ = sess.Ack(ctx)
		_ = sess.Bye(context.Background())
		if first, retry := itsp.Next(sip.INVITE), itsp.Next(sip.INVITE); first.GetHeader("Proxy-Authorization") != nil ||
			retry.GetHeader("Proxy-Authorization") == nil {
			t.Fatal("the trunk did not see a challenged INVITE and its authorized retry")
		}
	}
	waitNoCalls(t, u.Service)

	// per call, on the PBX's wire: the first response after 100 Trying is
	// the 183 with SDP, and the 200 follows it
	type seen struct{ first, firstBody string }
	got := map[string]*seen{}
	for _, m := range pbx.Wire.All() {
		if !strings.HasPrefix(m, "SIP/2.0 ") || strings.HasPrefix(m, "SIP/2.0 100") || !strings.Contains(m, " INVITE\r\n") {
			continue
		}
		id := callIDOf(m)
		if got[id] == nil {
			_, body, _ := strings.Cut(m, "\r\n\r\n")
			got[id] = &seen{first: m[:11], firstBody: body}
		}
	}
	if len(got) != calls {
		t.Fatalf("responses of %d calls on the PBX's wire, want %d", len(got), calls)
	}
	for id, s := range got {
		if s.first != "SIP/2.0 183" {
			t.Errorf("call %s: %q reached the PBX before the 183", id, s.first)
		} else if !strings.Contains(s.firstBody, "m=audio 5002 ") {
			t.Errorf("call %s: 183 without the early media SDP: %q", id, s.firstBody)
		}
	}
}
