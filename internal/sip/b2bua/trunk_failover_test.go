package b2bua

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/config"
)

// cloudPeer configures the peer "cloud" known as sip.cloud.test with
// trunk.targets sip2 and sip3, each name overridden to one address (as
// the Teams profile writes for sip/sip2/sip3.pstnhub.microsoft.com), and
// a dial plan sending every call to it.
func cloudPeer(c *config.Config, targets ...config.Target) {
	names := []string{"sip.cloud.test", "sip2.cloud.test", "sip3.cloud.test"}
	c.Peers = append(c.Peers, config.Peer{Name: "cloud", Kind: "itsp", Interface: "outside", Domain: names[0], Transport: "udp",
		Trunk: config.PeerTrunk{Targets: names[1:len(targets)]}})
	for i, tg := range targets {
		c.Routing.DNSOverride = append(c.Routing.DNSOverride, config.DNSOverride{Domain: names[i], Targets: []config.Target{tg}})
	}
	c.DialPlan.Rules = []config.DialRule{{Name: "out", ForwardTo: []config.Forward{{Peer: "cloud"}}}}
}

func peerStateOf(u *testUnit, name string) PeerState {
	for _, p := range u.PeerStates() {
		if p.Name == name {
			return p
		}
	}
	return PeerState{}
}

// TestPeerTargetsFailover: a call to a peer tries its names in order, each
// through its DNS override; a silent first datacentre is given up after
// invite_timeout and the second answers (the override's host in the
// Request-URI); the next call skips the dead one (held out).
func TestPeerTargetsFailover(t *testing.T) {
	pbx := newPeerUA(t, "pbx", "127.0.0.1", "udp")
	dead := newBlackHole(t, "127.0.0.3")
	second := newPeerUA(t, "second", "127.0.0.4", "udp")
	third := newPeerUA(t, "third", "127.0.0.5", "udp")
	u := newTestUnit(t, pbx, nil, func(c *config.Config) {
		c.SIP.InviteTimeout = config.Duration(700 * time.Millisecond)
		cloudPeer(c, udpTarget(dead.addr), udpTarget(second.Addr), udpTarget(third.Addr))
	})
	ctx := ctxT(t)
	for i := range 2 {
		sess := answeredCall(t, ctx, pbx, u)
		_ = sess.Ack(ctx)
		inv := second.Next(sip.INVITE)
		if inv.Recipient.Host != second.IP {
			t.Fatalf("call %d: second datacentre got Request-URI %s", i, inv.Recipient.String())
		}
		hangUp(t, ctx, sess, second, u)
	}
	if n := len(dead.branches()); n != 1 {
		t.Fatalf("the dead datacentre got %d INVITE transactions, want 1 (the second call skips it)", n)
	}
	if n := third.Wire.Count("INVITE "); n != 0 {
		t.Fatalf("the third datacentre got %d INVITEs", n)
	}
}

// TestPeerKeepaliveTargets: one keepalive state per target with the
// peer's "up" rule (2xx only); OPTIONS carry the interface's FQDN in
// Contact and the keepalive headers; a call skips the target marked down;
// every target down → 503 at once, nothing sent.
func TestPeerKeepaliveTargets(t *testing.T) {
	pbx := newPeerUA(t, "pbx", "127.0.0.1", "udp")
	first := newPeerUA(t, "first", "127.0.0.3", "udp")
	second := newPeerUA(t, "second", "127.0.0.4", "udp")
	status := make(chan int, 1)
	status <- 200
	optionsStatus := func(code int) func(*sip.Request) (int, []byte) {
		return func(req *sip.Request) (int, []byte) {
			if req.Method == sip.OPTIONS {
				if code == 0 {
					c := <-status
					status <- c
					return c, nil
				}
				return code, nil
			}
			return 200, nil
		}
	}
	first.SetRespond(optionsStatus(403)) // a 403 is no "up" for a cloud
	second.SetRespond(optionsStatus(0))
	u := newTestUnit(t, pbx, nil, func(c *config.Config) {
		c.Network.Interfaces[1].FQDN = "sbc.example.test"
		c.SIP.UserAgent = "Palisade/test"
		cloudPeer(c, udpTarget(first.Addr), udpTarget(second.Addr))
		p := &c.Peers[len(c.Peers)-1]
		p.OptionsInterval = config.Duration(30 * time.Millisecond)
		p.Headers = map[string]string{"X-Peer": "1"}
		p.Trunk.Keepalive = config.PeerKeepalive{Up: "2xx", DownAfter: 1, Headers: map[string]string{"X-MS-SBC": "Palisade/test"}}
	})
	waitFor(t, func() bool {
		st := peerStateOf(u, "cloud")
		return len(st.Targets) == 2 && !st.Targets[0].Up && st.Targets[1].Up && st.Up && !st.LastCheck.IsZero()
	}, "first target down, second up")
	st := peerStateOf(u, "cloud")
	if st.Targets[0].LastStatus != 403 || st.Targets[0].Address != first.Addr.String() || st.Targets[1].Address != second.Addr.String() {
		t.Fatalf("targets %+v", st.Targets)
	}
	opt := second.Next(sip.OPTIONS)
	if c := opt.Contact(); c == nil || c.Address.Host != "sbc.example.test" {
		t.Fatalf("OPTIONS Contact %v, want the interface FQDN", opt.Contact())
	}
	for _, h := range []string{"X-MS-SBC", "X-Peer", "Allow", "User-Agent"} {
		if opt.GetHeader(h) == nil {
			t.Errorf("OPTIONS without %s:\n%s", h, opt)
		}
	}
	ctx := ctxT(t)
	sess := answeredCall(t, ctx, pbx, u)
	_ = sess.Ack(ctx)
	second.Next(sip.INVITE)
	hangUp(t, ctx, sess, second, u)
	if n := first.Wire.Count("INVITE "); n != 0 {
		t.Fatalf("a target marked down got %d INVITEs", n)
	}
	// every target down: 503 at once
	<-status
	status <- 403
	waitFor(t, func() bool { return !peerStateOf(u, "cloud").Up }, "peer down")
	invites := second.Wire.Count("INVITE ")
	sess2, err := callDomain(ctx, pbx, u, "4930123456", "trunk.test")
	if err != nil {
		t.Fatal(err)
	}
	err = sess2.WaitAnswer(ctx, sipgo.AnswerOptions{})
	var de *sipgo.ErrDialogResponse
	if !errors.As(err, &de) || de.Res.StatusCode != 503 {
		t.Fatalf("caller got %v, want 503", err)
	}
	if n := second.Wire.Count("INVITE ") + first.Wire.Count("INVITE "); n != invites {
		t.Fatalf("%d INVITEs sent with every target down", n-invites)
	}
}

// TestPeerWithoutKeepaliveRetriedPerCall: a peer without keepalive whose
// only target was silent is not refused for the hold (nothing would tell
// the unit it is back): the next call tries it again and, once it
// answers, goes through.
func TestPeerWithoutKeepaliveRetriedPerCall(t *testing.T) {
	pbx := newPeerUA(t, "pbx", "127.0.0.1", "udp")
	var back atomic.Bool
	only := newChallengingHole(t, "127.0.0.3", func(req *sip.Request) *sip.Response {
		if req.Method != sip.INVITE || !back.Load() {
			return nil
		}
		return sip.NewResponseFromRequest(req, 486, "Busy Here", nil)
	})
	u := newTestUnit(t, pbx, nil, func(c *config.Config) {
		c.SIP.InviteTimeout = config.Duration(500 * time.Millisecond)
		cloudPeer(c, udpTarget(only.addr))
	})
	ctx := ctxT(t)
	for i, want := range []int{408, 486} {
		sess, err := callDomain(ctx, pbx, u, "4930123456", "trunk.test")
		if err != nil {
			t.Fatal(err)
		}
		err = sess.WaitAnswer(ctx, sipgo.AnswerOptions{})
		var de *sipgo.ErrDialogResponse
		if !errors.As(err, &de) || de.Res.StatusCode != want {
			t.Fatalf("call %d: caller got %v, want %d", i, err, want)
		}
		if n := len(only.branches()); n != i+1 {
			t.Fatalf("call %d: the only target got %d INVITE transactions, want %d", i, n, i+1)
		}
		back.Store(true)
	}
	waitNoCalls(t, u.Service)
}
