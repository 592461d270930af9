//go:build linux

package cli

import (
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/testkit"
	"github.com/palisade-sbc/palisade/internal/testkit/siptest"
)

// callerTrack answers re-INVITEs towards the caller as a phone does: a
// re-INVITE without SDP gets the call's SDP as an offer, the answer in the
// ACK moves the caller's media, and the Contact of the re-INVITE is the
// call's new target.
type callerTrack struct {
	mu       sync.Mutex
	ends     map[string]*rtpEnd
	contacts map[string]sip.Uri
}

func (c *callerTrack) add(l *callerLeg) {
	c.mu.Lock()
	c.ends[l.sess.InviteRequest.CallID().Value()] = l.in
	c.mu.Unlock()
}

// contact is the Contact of the last re-INVITE of the call of l.
func (c *callerTrack) contact(l *callerLeg) (sip.Uri, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	u, ok := c.contacts[l.sess.InviteRequest.CallID().Value()]
	return u, ok
}

func (c *callerTrack) setup(t *testing.T) func(p *siptest.Peer) {
	return func(p *siptest.Peer) {
		p.Respond = func(req *sip.Request) (int, []byte) {
			if req.Method != sip.INVITE {
				return 200, nil
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			e := c.ends[req.CallID().Value()]
			if e == nil {
				return 481, nil
			}
			if ct := req.Contact(); ct != nil {
				c.contacts[req.CallID().Value()] = ct.Address
			}
			return 200, offerSDP(e) // with its a=rtcp
		}
		p.Srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) {
			p.Push(req)
			if len(req.Body()) > 0 {
				c.mu.Lock()
				e := c.ends[req.CallID().Value()]
				c.mu.Unlock()
				if e != nil {
					remote, _ := mediaOf(t, req.Body())
					e.retarget(remote, nil, nil)
				}
			}
			_ = p.DS.ReadAck(req, tx)
		})
	}
}

// TestCallsRehomed: ha.mode "rehome", units with addresses of their own.
// Go user agents place calls through a (RTP inside, SRTP outside); a is
// killed. b re-INVITEs both parties of each call with its own Contact and
// media (a new key outside); the media goes on both ways through b's
// addresses with no SRTP authentication failure, and the caller's BYE to
// b's Contact is answered 200.
func TestCallsRehomed(t *testing.T) {
	p := newHAPair(t, config.HAModeRehome)
	dirA, dirB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	a := p.start(t, dirA, p.storeURL, "a")
	b := p.start(t, dirB, p.storeURL, "b")
	bLog := func() string { return testkit.LastLines(b.log.String(), 60) }

	legs := p.placeCalls(t, 2, 1)
	mediaBack(t, legs, time.Now().Add(time.Second), func() string { return testkit.LastLines(a.log.String(), 40) })
	before := mediaTargets(legs)
	killed := kill9(t, a)
	waitLog(t, b, "ha: rehome: calls of a unit gone moved here", 30*time.Second)
	if !strings.Contains(b.log.String(), "calls_adopted=2 calls_refused=0") {
		t.Fatalf("b did not move the 2 calls:\n%s", bLog())
	}
	mediaBack(t, legs, killed.Add(500*time.Millisecond), bLog)
	time.Sleep(time.Second)
	for i, l := range legs {
		t.Logf("call %d: media gap of the rehome: to the caller %v, to the callee %v", i,
			l.in.gap(killed).Round(time.Millisecond), l.out.gap(killed).Round(time.Millisecond))
		if f := l.out.authFailures(); f != 0 {
			t.Errorf("call %d: %d SRTP authentication failures at the callee", i, f)
		}
	}
	checkMoved(t, p, legs, before)
	p.byeAll(t, legs, bLog)
	if n := answeredCalls(t, dirB); n != 0 {
		t.Errorf("b still carries %d calls after the BYEs", n)
	}
}

// mediaTargets is where each call's caller and callee send their media.
func mediaTargets(legs []*callerLeg) [][2]netip.AddrPort {
	var out [][2]netip.AddrPort
	for _, l := range legs {
		in, _, _ := l.in.state()
		o, _, _ := l.out.state()
		out = append(out, [2]netip.AddrPort{in, o})
	}
	return out
}

// checkMoved: both parties of every call send to other addresses than
// before (b's), and b's re-INVITE reached the caller.
func checkMoved(t *testing.T, p *haPair, legs []*callerLeg, before [][2]netip.AddrPort) {
	t.Helper()
	for i, now := range mediaTargets(legs) {
		t.Logf("call %d: the caller sends to %v (was %v), the callee to %v (was %v)", i, now[0], before[i][0], now[1], before[i][1])
		if now[0].Addr() == before[i][0].Addr() || now[1].Addr() == before[i][1].Addr() {
			t.Errorf("call %d: the media still goes to a's addresses", i)
		}
		if target, ok := p.track.contact(legs[i]); !ok || target.Host == p.dst.Addr().String() {
			t.Errorf("call %d: no re-INVITE from b reached the caller (Contact %v)", i, target)
		}
	}
}
