//go:build linux

package cli

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/pki/pkitest"
	"github.com/palisade-sbc/palisade/internal/testkit"
)

// TestTLSLegsSurviveUnitLoss: the takeover of calls whose outside leg is
// mutual TLS (docs/ha.md). The trunk is Kamailio (it requires and checks
// the unit's client certificate) relaying to a Go SRTP callee; units a and
// b share the floating addresses on lo. a carries 3 calls with media and
// is killed with SIGKILL. b must open a TLS connection to Kamailio with the
// unit's certificate (seen by ss and in status ha), the media must go on,
// and re-INVITEs and BYEs from both sides must be answered 200: the
// caller's go out over b's new connection, the callee's come in over a
// connection Kamailio opens to b's listener and are matched to the calls
// by their dialogs. The re-INVITE b sends the callee shows b's Via and
// Contact on the floating outside address over TLS.
func TestTLSLegsSurviveUnitLoss(t *testing.T) {
	tp := newTLSTrunkPair(t, "")
	p, dirB, a, b, bLog, outside, tlsPort, kam := tp.p, tp.dirB, tp.a, tp.b, tp.bLog, tp.outside, tp.tlsPort, tp.kam

	const calls = 3
	legs := p.placeCalls(t, calls, 1)
	mediaBack(t, legs, time.Now().Add(time.Second), func() string { return testkit.LastLines(a.log.String(), 40) })
	killed := kill9(t, a)
	waitLog(t, b, "ha: floating addresses taken", 30*time.Second)
	waitLog(t, b, "ha: connections towards the peers of the calls carried on", 30*time.Second)
	if !strings.Contains(b.log.String(), fmt.Sprintf("calls_adopted=%d calls_refused=0", calls)) {
		t.Fatalf("b did not adopt the %d calls:\n%s", calls, bLog())
	}
	// One connection for the three calls, to the trunk, from b's process,
	// from the floating outside address: Kamailio took it only with a
	// client certificate of its CA.
	if st := mustCLI(t, dirB, "status", "ha"); !strings.Contains(st, "connections towards peers reopened 1, failed 0") {
		t.Fatalf("status ha on b:\n%s\n%s", st, bLog())
	}
	conns := tcpConns(t, b.Cmd.Process.Pid, func(_, remote string) bool { return remote == kam })
	t.Logf("b's connections to the trunk %s: %v", kam, conns)
	if len(conns) != 1 || !strings.HasPrefix(conns[0][0], outside+":") {
		t.Fatalf("b's connections to the trunk: %v, want one from %s", conns, outside)
	}
	mediaBack(t, legs, killed.Add(500*time.Millisecond), bLog)
	for i, l := range legs {
		t.Logf("call %d: media gap to the caller %v, to the callee %v", i, l.in.gap(killed).Round(time.Millisecond),
			l.out.gap(killed).Round(time.Millisecond))
		if f := l.out.authFailures(); f != 0 {
			t.Errorf("call %d: %d SRTP authentication failures at the callee", i, f)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The caller's re-INVITE goes to the callee over b's connection: b's
	// Via and Contact name the floating outside address and TLS.
	seen := len(p.callee.peer.Wire.All())
	reinvite(t, ctx, legs[0], bLog)
	// Kamailio wrote the source port it got the re-INVITE from into b's
	// Via: that of b's connection.
	if rport := checkOwnHeaders(t, p.callee.peer.Wire.All()[seen:], outside, tlsPort); !strings.HasSuffix(conns[0][0], ":"+rport) {
		t.Errorf("b's re-INVITE came from port %s, not over its connection %v", rport, conns[0])
	}
	// The callee's re-INVITEs come over a connection Kamailio opens to b's
	// listener.
	calleeReinvite(t, ctx, p, 1, bLog)
	calleeReinvite(t, ctx, p, 2, bLog)
	listener := fmt.Sprintf("%s:%d", outside, tlsPort)
	in := tcpConns(t, b.Cmd.Process.Pid, func(local, remote string) bool {
		return local == listener && strings.HasPrefix(remote, "127.0.0.4:")
	})
	t.Logf("connections of the trunk to b's listener %s: %v", listener, in)
	if len(in) == 0 {
		t.Errorf("the callee's re-INVITEs came over no connection of the trunk to b's listener")
	}
	// BYEs from both sides.
	if err := legs[0].sess.Bye(ctx); err != nil {
		t.Fatalf("the caller's BYE after the kill: %v\n%s", err, bLog())
	}
	p.callee.bye(t, ctx, 1)
	if err := legs[2].sess.Bye(ctx); err != nil {
		t.Fatalf("the caller's BYE after the kill: %v\n%s", err, bLog())
	}
	for _, l := range legs {
		l.stop()
	}
	if n := answeredCalls(t, dirB); n != 0 {
		t.Errorf("b still carries %d calls after the BYEs", n)
	}
	if conns := tcpConns(t, b.Cmd.Process.Pid, func(_, remote string) bool { return remote == kam }); len(conns) != 1 {
		t.Errorf("b's connections to the trunk at the end: %v (the requests went over another one)", conns)
	}
}

// TestTLSLegsRehomed: rehome mode with the trunk leg on mutual TLS. a is
// killed; b moves the calls with re-INVITEs from its own addresses. The
// callee's go to Kamailio over one TLS connection b opens from its own
// outside address with the unit's certificate (status ha counts it), the
// media goes on through b with the new keys, and BYEs from the callee
// (through Kamailio to b's new Contact) and from the caller are answered
// 200.
func TestTLSLegsRehomed(t *testing.T) {
	tp := newTLSTrunkPair(t, config.HAModeRehome)
	p, a, b, bLog := tp.p, tp.a, tp.b, tp.bLog
	bOutside := p.config(t).Units["b"].Interfaces[1].Address
	legs := p.placeCalls(t, 2, 1)
	mediaBack(t, legs, time.Now().Add(time.Second), func() string { return testkit.LastLines(a.log.String(), 40) })
	before := mediaTargets(legs)
	killed := kill9(t, a)
	waitLog(t, b, "ha: rehome: calls of a unit gone moved here", 30*time.Second)
	waitLog(t, b, "ha: connections towards the peers of the calls carried on", 30*time.Second)
	mediaBack(t, legs, killed.Add(500*time.Millisecond), bLog)
	checkMoved(t, p, legs, before)
	if st := mustCLI(t, tp.dirB, "status", "ha"); !strings.Contains(st, "connections towards peers reopened 1, failed 0") {
		t.Fatalf("status ha on b:\n%s\n%s", st, bLog())
	}
	conns := tcpConns(t, b.Cmd.Process.Pid, func(_, remote string) bool { return remote == tp.kam })
	t.Logf("b's connections to the trunk %s: %v", tp.kam, conns)
	if len(conns) != 1 || !strings.HasPrefix(conns[0][0], bOutside+":") {
		t.Fatalf("b's connections to the trunk: %v, want one from %s", conns, bOutside)
	}
	time.Sleep(time.Second) // media with the new keys
	for i, l := range legs {
		if f := l.out.authFailures(); f != 0 {
			t.Errorf("call %d: %d SRTP authentication failures at the callee", i, f)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The callee's BYE goes to b's Contact, which its re-INVITE brought.
	c := p.callee
	c.mu.Lock()
	s := c.sess[0]
	c.mu.Unlock()
	target := sip.Uri{Scheme: "sip", Host: bOutside, Port: tp.tlsPort, UriParams: sip.NewParams()}
	target.UriParams.Add("transport", "tls")
	bye := sip.NewRequest(sip.BYE, target)
	if res, err := s.Do(ctx, bye); err != nil || res.StatusCode != 200 {
		t.Fatalf("the callee's BYE to b after the rehome: %v %v\n%s", res, err, bLog())
	}
	legs[0].stop()
	p.byeAll(t, legs[1:], bLog)
	if n := answeredCalls(t, tp.dirB); n != 0 {
		t.Errorf("b still carries %d calls after the BYEs", n)
	}
}

// kill9 kills the unit with SIGKILL, waits for its end and returns when it
// was killed.
func kill9(t *testing.T, u *unitProc) time.Time {
	t.Helper()
	killed := time.Now()
	if err := u.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-u.Done()
	return killed
}

// tlsTrunkPair is units a and b (started, a carrying nothing yet) whose
// outside leg is mutual TLS to a Kamailio trunk relaying to the pair's SRTP
// callee; the unit's client certificate is signed by the trunk's CA.
type tlsTrunkPair struct {
	p          *haPair
	dirA, dirB string
	a, b       *unitProc
	bLog       func() string
	outside    string // the outside address: floating, or (rehome) a's
	tlsPort    int    // the outside TLS listener's port
	kam        string // the trunk's TLS address
}

func newTLSTrunkPair(t *testing.T, mode string) *tlsTrunkPair {
	t.Helper()
	pkitest.SkipWithoutKamailio(t)
	tp := &tlsTrunkPair{p: newHAPair(t, mode)}
	p := tp.p
	cfg := p.config(t)
	tp.outside = cfg.Network.Interfaces[1].Address
	tp.tlsPort = testkit.FreePort(t, "tcp", tp.outside)
	cfg.SIP.Listeners[1] = config.Listener{Interface: "outside", Transport: "tls", Port: tp.tlsPort, Certificate: "default"}
	kTLS, kUDP := testkit.FreePort(t, "tcp", "127.0.0.4"), testkit.FreePort(t, "udp", "127.0.0.4")
	tp.kam = fmt.Sprintf("127.0.0.4:%d", kTLS)
	cfg.Peers = []config.Peer{{Name: "service", Kind: "itsp", Interface: "outside", Address: tp.kam, Transport: "tls"}}
	cfg.DialPlan.Rules[0].ForwardTo = []config.Forward{{Peer: "service"}}
	p.initial = writeInitial(t, cfg)

	tp.dirA, tp.dirB = filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	tp.a = p.start(t, tp.dirA, p.storeURL, "a")
	// The unit's client certificate for the trunk, signed by the trunk's
	// CA, and that CA in the store: the cluster's, so b has them too.
	ca := useServiceCA(t, tp.dirA, t.TempDir())
	startE2EKamailio(t, ca, kTLS, kUDP, int(p.callee.peer.Addr.Port()))
	tp.b = p.start(t, tp.dirB, p.storeURL, "b")
	tp.bLog = func() string { return testkit.LastLines(tp.b.log.String(), 60) }
	return tp
}

// config reads back the configuration the pair's units start with.
func (p *haPair) config(t *testing.T) *config.Config {
	t.Helper()
	raw, err := os.ReadFile(p.initial)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// tcpConns lists the established TCP connections of process pid (local
// and remote address) that match.
func tcpConns(t *testing.T, pid int, match func(local, remote string) bool) [][2]string {
	t.Helper()
	out, err := exec.Command("ss", "-tnpH", "state", "established").CombinedOutput()
	if err != nil {
		t.Fatalf("ss: %v %s", err, out)
	}
	var conns [][2]string
	own := fmt.Sprintf("pid=%d,", pid)
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) >= 5 && strings.Contains(l, own) && match(f[2], f[3]) {
			conns = append(conns, [2]string{f[2], f[3]})
		}
	}
	return conns
}

// checkOwnHeaders: the re-INVITE among msgs (what the callee got through
// Kamailio) carries b's Via over TLS and its Contact on the outside address
// and TLS port, and no Record-Route of the unit (a B2BUA records none). It
// returns the rport Kamailio wrote into b's Via.
func checkOwnHeaders(t *testing.T, msgs []string, outside string, port int) string {
	t.Helper()
	for _, m := range msgs {
		if !strings.HasPrefix(m, "INVITE ") {
			continue
		}
		t.Logf("re-INVITE of b at the callee:\n%s", headersOf(m))
		via := regexp.MustCompile(`(?im)^Via: SIP/2\.0/TLS ` + regexp.QuoteMeta(fmt.Sprintf("%s:%d", outside, port)) + `;`)
		contact := regexp.MustCompile(`(?im)^Contact: <?sip:` + regexp.QuoteMeta(fmt.Sprintf("%s:%d", outside, port)) + `;transport=tls>?`)
		switch {
		case !via.MatchString(m):
			t.Errorf("no Via of b over TLS on %s:%d", outside, port)
		case !contact.MatchString(m):
			t.Errorf("no Contact of b on %s:%d;transport=tls", outside, port)
		case regexp.MustCompile(`(?im)^Record-Route:.*` + regexp.QuoteMeta(outside)).MatchString(m):
			t.Errorf("a Record-Route of the unit")
		}
		if r := regexp.MustCompile(`(?im)^Via: SIP/2\.0/TLS .*;rport=(\d+)`).FindStringSubmatch(m); r != nil {
			return r[1]
		}
		return ""
	}
	t.Errorf("the callee got no re-INVITE: %d messages", len(msgs))
	return ""
}

// headersOf is the head of a SIP message.
func headersOf(m string) string {
	h, _, _ := strings.Cut(m, "\r\n\r\n")
	return h
}

// calleeReinvite sends a re-INVITE from the callee of call i (its SDP of
// the call as the offer) and wants a 200, then ACKs it.
func calleeReinvite(t *testing.T, ctx context.Context, p *haPair, i int, log func() string) {
	t.Helper()
	if err := p.callee.reinviteNow(ctx, i); err != nil {
		t.Fatalf("call %d: the callee's re-INVITE after the kill: %v\n%s", i, err, log())
	}
}
