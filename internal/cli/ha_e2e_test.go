//go:build linux

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/palisade-sbc/palisade/internal/media/sdp"
	"github.com/palisade-sbc/palisade/internal/observe"
	"github.com/palisade-sbc/palisade/internal/testkit"
	"github.com/palisade-sbc/palisade/internal/testkit/etcdtest"
	"github.com/palisade-sbc/palisade/internal/testkit/siptest"
)

// TestCallsSurviveUnitLoss is the fast variant of the takeover test
// (docs/ha.md): two `palisade run` units on a real three-member etcd share
// two floating addresses on lo (inside and outside); Go user agents place
// 20 calls through a with RTP inside and SRTP outside, one outside stream
// starting at sequence 65,000 so that it wraps before the kill, and sipp
// places 30 held calls alongside; a is killed with SIGKILL. The lease is
// 1 s, and etcd runs with timing that grants it (etcdtest.ShortLeases).
// The Go calls carry RTCP both ways too (SRTCP outside). b must take the
// addresses (refusing two bad records), the media must go on both ways
// with a gap of at most 2 s per direction (printed) and no SRTP
// authentication failure, the RTCP too with no SRTCP failure or replay at
// the callee, every re-INVITE and
// BYE after the kill must get 200 (sipp's included), 100 calls placed
// after the lease must all succeed, and no record is left in etcd at the
// end; etcd writes and bytes per call are printed.
func TestCallsSurviveUnitLoss(t *testing.T) {
	p := newHAPair(t, "", etcdtest.ShortLeases())
	ns, cli, callee, caller, dst := p.ns, p.cli, p.callee, p.caller, p.dst
	callee.rtcp = true
	writes := watchRecords(t, cli, ns, "other-version", "truncated")
	dirA, dirB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	a := p.start(t, dirA, p.storeURL, "a")
	b := p.start(t, dirB, p.storeURL, "b")
	bLog := func() string { return testkit.LastLines(b.log.String(), 60) }
	leaseIs(t, cli, p.space+"/ha/floating/units/b", 1)
	t.Cleanup(func() { electionLog(t, "a", a); electionLog(t, "b", b) })

	const calls, sippCalls, lateCalls = 20, 30, 100
	// The media runs both ways at 20 ms; the first outside stream starts
	// at sequence 65,000 and wraps about 10.7 s in.
	legs := p.placeCalls(t, calls, 65000)
	mediaStart := time.Now()
	// sipp's calls, 10 a second, are held for 20 s: they end on b.
	held := startSippUAC(t, "held", dst.String(), "2000", sippCalls, 10, 20*time.Second)
	for deadline := time.Now().Add(30 * time.Second); ; {
		n := answeredCalls(t, dirA)
		if n == calls+sippCalls {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a carries %d calls, want %d\n%s", n, calls+sippCalls, testkit.LastLines(a.log.String(), 40))
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The kill comes at a random moment after the wrap: 0-2 s after the
	// caller got 50 packets of the wrapped stream past it (a's record of
	// the new rollover counter is written by then). Not at a fixed time: on
	// a loaded machine the stream wrapped later, after the kill, and the
	// record of the wrap went untested.
	for deadline := mediaStart.Add(60 * time.Second); legs[0].in.count() < 65536-65000+50; {
		if time.Now().After(deadline) {
			t.Fatalf("the caller got %d packets of the stream that wraps, want %d", legs[0].in.count(), 65536-65000+50)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(rand.N(2000 * time.Millisecond))
	for i, l := range legs {
		if l.in.count() == 0 || l.out.count() == 0 {
			t.Fatalf("call %d: no media before the kill (inside got %d, outside got %d)\n%s", i, l.in.count(), l.out.count(),
				testkit.LastLines(a.log.String(), 40))
		}
	}
	rtcpFlows(t, legs, time.Time{}, func() string { return testkit.LastLines(a.log.String(), 40) })
	// Two records b cannot use: another version's and a truncated one.
	// Those calls are not adopted (and their records go); the others are.
	for k, v := range map[string]string{"other-version": `{"version":99,"call":{}}`, "truncated": `{"version":1,"call":{"id":"x`} {
		if _, err := cli.Put(context.Background(), ns+k, v); err != nil {
			t.Fatal(err)
		}
	}
	killed := time.Now()
	if err := a.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// A re-INVITE the caller sends at the moment of the kill (its UDP
	// transaction retransmits it) must be answered 200 within the lease
	// and 5 s; b relays it to the callee with the SDES key it sends with
	// already (restored), so the callee, which keeps its key, loses nothing.
	atKill := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		atKill <- reinviteNow(ctx, legs[1])
	}()
	<-a.Done()
	waitLog(t, b, "ha: floating addresses taken", 30*time.Second)
	t.Logf("b took the addresses %.1f s after the kill", time.Since(killed).Seconds())
	t.Log(takeoverLine(b))
	// Media must come back both ways on every call.
	mediaBack(t, legs, killed, bLog)
	rtcpFlows(t, legs, killed, bLog)
	select {
	case err := <-atKill:
		if err != nil {
			t.Fatalf("the re-INVITE sent at the kill: %v\n%s", err, bLog())
		}
		t.Logf("the re-INVITE sent at the kill was answered 200 %.1f s after it", time.Since(killed).Seconds())
	case <-time.After(time.Until(killed.Add(6 * time.Second))):
		t.Fatalf("the re-INVITE sent at the kill got no answer within the lease and 5 s\n%s", bLog())
	}
	// Calls placed more than the lease (1 s) and 1 s after the kill all
	// succeed.
	time.Sleep(time.Until(killed.Add(2100 * time.Millisecond)))
	late := startSippUAC(t, "after the kill", dst.String(), "2000", lateCalls, 10, time.Second)
	time.Sleep(2 * time.Second) // some media after the takeover
	var gapsIn, gapsOut []time.Duration
	for i, l := range legs {
		gapsIn, gapsOut = append(gapsIn, l.in.gap(killed)), append(gapsOut, l.out.gap(killed))
		if f := l.out.authFailures(); f != 0 {
			t.Errorf("call %d: %d SRTP packets failed authentication at the callee", i, f)
		}
	}
	gapSummary(t, "to the caller (RTP)", gapsIn)
	gapSummary(t, "to the callee (SRTP)", gapsOut)
	gapsWithin(t, "to the caller (RTP)", gapsIn, 2*time.Second)
	gapsWithin(t, "to the callee (SRTP)", gapsOut, 2*time.Second)
	rtcpFlows(t, legs, killed, bLog)
	rtcpSummary(t, legs, killed)
	// b refused nothing it relayed: no SRTP or SRTCP packet failed
	// authentication or came as a replay (the callees' SRTCP to b included).
	if n, r := metricSum(t, dirB, "palisade_media_srtp_auth_failures_total"),
		metricSum(t, dirB, `palisade_media_dropped_packets_total{reason="replay"}`); n != 0 || r != 0 {
		t.Errorf("b: %v SRTP/SRTCP authentication failures, %v replays", n, r)
	}
	// With a 1 s lease b renews often enough not to fence itself.
	if n := metricSum(t, dirB, "palisade_vip_fenced_total"); n != 0 {
		t.Errorf("b gave the addresses up %v times for a lease not renewed in time", n)
	}
	// b measured the gap of every adopted stream's direction itself.
	status := mustCLI(t, dirB, "status", "ha")
	t.Logf("status ha on b:\n%s", status)
	if n := metricSum(t, dirB, "palisade_media_restore_gap_seconds_count"); n != 2*calls ||
		!strings.Contains(status, fmt.Sprintf("media gap of adopted streams (restore to first packet, %d directions)", 2*calls)) {
		t.Errorf("b measured the gap of %v stream directions, want %d", n, 2*calls)
	}
	// b's status of calls shows the adopted calls with their media counters.
	var active []observe.CDR
	if err := json.Unmarshal([]byte(mustCLI(t, dirB, "status", "calls", "--json")), &active); err != nil {
		t.Fatal(err)
	}
	srtpCalls := 0
	for _, c := range active {
		if len(c.Media) < 2 || !c.Media[1].SRTP {
			continue // sipp's
		}
		srtpCalls++
		if c.Media[0].PacketsIn == 0 || c.Media[1].PacketsIn == 0 {
			t.Errorf("b's status of adopted call %s: media %+v", c.ID, c.Media)
		}
	}
	if srtpCalls != calls {
		t.Fatalf("b shows %d calls with SRTP, want %d", srtpCalls, calls)
	}
	if !strings.Contains(b.log.String(), fmt.Sprintf("calls_adopted=%d calls_refused=2", calls+sippCalls)) {
		t.Errorf("b did not adopt %d calls:\n%s", calls+sippCalls, bLog())
	}
	// In-dialog requests after the takeover: BYEs from both sides, and a
	// re-INVITE (answered by the callee with its SDP of the call) before
	// two of every three.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i, l := range legs {
		if i%3 != 0 {
			reinvite(t, ctx, l, bLog)
		}
		if i%3 == 1 {
			callee.bye(t, ctx, i)
		} else if err := l.sess.Bye(ctx); err != nil {
			t.Fatalf("call %d: the caller's BYE after the kill: %v\n%s", i, err, bLog())
		}
		l.stop()
	}
	// New calls go through b, media both ways.
	for i := range 2 {
		l := placeCall(t, caller, callee, dst, calls+i)
		l.start()
		l.out.start(1)
		for deadline := time.Now().Add(10 * time.Second); l.in.count() == 0 || l.out.count() == 0; {
			if time.Now().After(deadline) {
				t.Fatalf("new call %d through b: no media both ways", i)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := l.sess.Bye(ctx); err != nil {
			t.Fatalf("new call %d through b: BYE: %v", i, err)
		}
		l.stop()
		if f := l.out.authFailures(); f != 0 {
			t.Errorf("new call %d through b: %d SRTP authentication failures", i, f)
		}
	}
	held.wait(t, 60*time.Second, bLog)
	late.wait(t, 60*time.Second, bLog)
	// Every call ended: no record is left in etcd.
	for deadline := time.Now().Add(20 * time.Second); ; {
		resp, err := cli.Get(ctx, "", clientv3.WithPrefix(), clientv3.WithKeysOnly())
		left := []string{}
		if err == nil {
			for _, kv := range resp.Kvs {
				if strings.Contains(string(kv.Key), "/kv/ha/calls/") {
					left = append(left, string(kv.Key))
				}
			}
		}
		if err == nil && len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("call records left in etcd after every call ended: %v (%v)", left, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	writes.report(t, calls+sippCalls+lateCalls+2)
	if status := mustCLI(t, dirB, "status"); !strings.Contains(status, fmt.Sprintf("takeovers 1, calls adopted %d", calls+sippCalls)) {
		t.Errorf("status on b does not show the takeover:\n%s", status)
	}
}

// answeredCalls is how many answered calls the unit in dir carries.
func answeredCalls(t *testing.T, dir string) int {
	t.Helper()
	var active []observe.CDR
	if err := json.Unmarshal([]byte(mustCLI(t, dir, "status", "calls", "--json")), &active); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range active {
		if !c.Answer.IsZero() {
			n++
		}
	}
	return n
}

// reinvite sends a re-INVITE on the caller's leg of l and wants a 200.
func reinvite(t *testing.T, ctx context.Context, l *callerLeg, log func() string) {
	t.Helper()
	if err := reinviteNow(ctx, l); err != nil {
		t.Fatalf("re-INVITE after the kill: %v\n%s", err, log())
	}
}

// reinviteNow sends a re-INVITE with the call's offer on l and ACKs its
// 200; for a goroutine (no t).
func reinviteNow(ctx context.Context, l *callerLeg) error {
	req := sip.NewRequest(sip.INVITE, l.sess.InviteResponse.Contact().Address)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(offerSDP(l.in))
	res, err := l.sess.Do(ctx, req)
	if err != nil {
		return err
	}
	if res.StatusCode != 200 {
		return fmt.Errorf("answered %d %s", res.StatusCode, res.Reason)
	}
	return l.sess.WriteRequest(sip.NewRequest(sip.ACK, req.Recipient))
}

// waitLog waits until the unit's log has s.
func waitLog(t *testing.T, u *unitProc, s string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !strings.Contains(u.log.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the unit's log within %v:\n%s", s, limit, testkit.LastLines(u.log.String(), 60))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stream is one direction's receiver: the arrival times of its packets.
type stream struct {
	mu    sync.Mutex
	times []time.Time
	fails int
}

func (s *stream) got(ok bool) {
	s.mu.Lock()
	if ok {
		s.times = append(s.times, time.Now())
	} else {
		s.fails++
	}
	s.mu.Unlock()
}

func (s *stream) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.times)
}

func (s *stream) authFailures() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fails
}

func (s *stream) after(t0 time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.times) > 0 && s.times[len(s.times)-1].After(t0)
}

// gap is the longest silence between packets around t0.
func (s *stream) gap(t0 time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var g time.Duration
	for i := 1; i < len(s.times); i++ {
		if s.times[i].After(t0) && s.times[i].Sub(s.times[i-1]) > g {
			g = s.times[i].Sub(s.times[i-1])
		}
	}
	return g
}

// rtpEnd sends RTP every 20 ms to where the unit's SDP says and records
// what arrives; with keys it is SRTP.
type rtpEnd struct {
	udpLoop
	t *testing.T
	// remote, tx and rx are set before start, or later with retarget.
	mu     sync.Mutex
	remote netip.AddrPort
	tx, rx *srtp.Context
	recv   stream
	// rtcp, when set before start, sends and receives the end's RTCP
	// (ha_rtcp_e2e_test.go).
	rtcp *rtcpEnd
}

// retarget sends to remote from now on, with the contexts given (nil:
// unchanged), as an end does after a new offer/answer.
func (e *rtpEnd) retarget(remote netip.AddrPort, tx, rx *srtp.Context) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.remote = remote
	if tx != nil {
		e.tx = tx
	}
	if rx != nil {
		e.rx = rx
	}
}

func (e *rtpEnd) state() (netip.AddrPort, *srtp.Context, *srtp.Context) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.remote, e.tx, e.rx
}

// listenUDP is a socket on a free port of ip.
func listenUDP(t *testing.T, ip string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(ip+":0")))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// udpPort is c's local port.
func udpPort(c *net.UDPConn) int { return c.LocalAddr().(*net.UDPAddr).Port }

func newRTPEnd(t *testing.T, ip string) *rtpEnd {
	e := &rtpEnd{udpLoop: newUDPLoop(t, ip), t: t}
	t.Cleanup(e.stop)
	return e
}

func (e *rtpEnd) port() int { return udpPort(e.conn) }

func (e *rtpEnd) count() int                     { return e.recv.count() }
func (e *rtpEnd) after(t0 time.Time) bool        { return e.recv.after(t0) }
func (e *rtpEnd) gap(t0 time.Time) time.Duration { return e.recv.gap(t0) }
func (e *rtpEnd) authFailures() int              { return e.recv.authFailures() }

// receive hands each datagram conn reads to got until done is closed.
func receive(conn *net.UDPConn, done <-chan struct{}, got func([]byte)) {
	buf := make([]byte, 2048)
	for {
		conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := conn.Read(buf)
		select {
		case <-done:
			return
		default:
		}
		if err == nil {
			got(buf[:n])
		}
	}
}

func (e *rtpEnd) start(seq uint16) {
	ssrc := rand.Uint32()
	if e.rtcp != nil {
		e.rtcp.start(ssrc)
	}
	e.wg.Add(2)
	go func() { // receive
		defer e.wg.Done()
		receive(e.conn, e.done, func(b []byte) {
			var err error
			if _, _, rx := e.state(); rx != nil {
				_, err = rx.DecryptRTP(nil, b, nil)
			}
			e.recv.got(err == nil)
		})
	}()
	go func() { // send, at most 2 minutes
		defer e.wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < 6000; i++ {
			select {
			case <-e.done:
				return
			case <-tick.C:
			}
			p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: seq, Timestamp: uint32(i) * 160, SSRC: ssrc},
				Payload: bytes.Repeat([]byte{0xff}, 160)}
			seq++
			remote, tx, _ := e.state()
			b, err := p.Marshal()
			if err == nil && tx != nil {
				b, err = tx.EncryptRTP(nil, b, nil)
			}
			if err == nil {
				e.conn.WriteToUDPAddrPort(b, remote)
			}
		}
	}()
}

func (e *rtpEnd) stop() {
	e.udpLoop.stop()
	if e.rtcp != nil {
		e.rtcp.stop()
	}
}

// mediaOf reads the connection address, port and first a=crypto of sdp.
func mediaOf(t *testing.T, body []byte) (netip.AddrPort, *sdp.Crypto) {
	t.Helper()
	var ip string
	var port int
	var c *sdp.Crypto
	for _, l := range strings.Split(string(body), "\n") {
		l = strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "c=IN IP4 "):
			ip = strings.TrimPrefix(l, "c=IN IP4 ")
		case strings.HasPrefix(l, "m=audio "):
			port, _ = strconv.Atoi(strings.Fields(l)[1])
		case strings.HasPrefix(l, "a=crypto:") && c == nil:
			k, err := sdp.ParseCrypto(strings.TrimPrefix(l, "a=crypto:"))
			if err != nil {
				t.Fatalf("a=crypto of the unit: %v", err)
			}
			c = &k
		}
	}
	ap, err := netip.ParseAddrPort(net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("no media address in:\n%s", body)
	}
	return ap, c
}

func srtpContext(t *testing.T, c sdp.Crypto) *srtp.Context {
	t.Helper()
	prof := srtp.ProtectionProfileAes128CmHmacSha1_80
	if c.Suite == sdp.SuiteAES32 {
		prof = srtp.ProtectionProfileAes128CmHmacSha1_32
	}
	ctx, err := srtp.CreateContext(c.Key[:16], c.Key[16:], prof)
	if err != nil {
		t.Fatal(err)
	}
	return ctx
}

// srtpCallee answers every call with SRTP and keeps its sessions.
type srtpCallee struct {
	peer *siptest.Peer
	mu   sync.Mutex
	ends []*rtpEnd
	sess []*sipgo.DialogServerSession
	// answers holds the SDP of each call by Call-ID: a re-INVITE gets it again.
	answers map[string][]byte
	byCall  map[string]*rtpEnd
	next    chan *rtpEnd
	// rtcp: the calls' ends on both sides send and receive RTCP (set
	// before the first call).
	rtcp bool
}

// answerSDP is the callee's SDP for its end e with its key own.
func answerSDP(e *rtpEnd, own sdp.Crypto) []byte {
	b := []byte("v=0\r\no=- 1 1 IN IP4 " + peerOut + "\r\ns=-\r\nc=IN IP4 " + peerOut + "\r\nt=0 0\r\nm=audio " + strconv.Itoa(e.port()) +
		" RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\na=crypto:" + own.String() + "\r\n")
	if e.rtcp != nil {
		b = append(b, "a=rtcp:"+strconv.Itoa(e.rtcp.port())+"\r\n"...)
	}
	return b
}

// reinvited answers a re-INVITE: the SDP of the call, or, when the offer
// moved the media elsewhere (a call rehomed to another unit), a new
// answer with a new key, the end sending there with it. c.mu is held.
func (c *srtpCallee) reinvited(t *testing.T, req *sip.Request) []byte {
	id := req.CallID().Value()
	e := c.byCall[id]
	if e == nil || len(req.Body()) == 0 {
		return c.answers[id]
	}
	remote, k := mediaOf(t, req.Body())
	if cur, _, _ := e.state(); k == nil || remote == cur {
		return c.answers[id]
	}
	own := sdp.Crypto{Tag: k.Tag, Suite: k.Suite, Key: bytes.Repeat([]byte{byte(len(c.answers) + 100)}, 30)}
	e.retarget(remote, srtpContext(t, own), srtpContext(t, *k))
	c.answers[id] = answerSDP(e, own)
	return c.answers[id]
}

func newSRTPCallee(t *testing.T) *srtpCallee {
	c := &srtpCallee{next: make(chan *rtpEnd, 10), answers: map[string][]byte{}, byCall: map[string]*rtpEnd{}}
	c.peer = siptest.NewPeerWith(t, "callee", peerOut, "udp", func(p *siptest.Peer) {
		p.Respond = func(req *sip.Request) (int, []byte) {
			if req.Method != sip.INVITE {
				return 200, nil
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			return 200, c.reinvited(t, req)
		}
		p.OnInvite = func(s *sipgo.DialogServerSession, req *sip.Request) {
			e := newRTPEnd(t, peerOut)
			remote, k := mediaOf(t, req.Body())
			if k == nil {
				s.Respond(488, "SRTP expected", nil)
				return
			}
			e.remote, e.rx = remote, srtpContext(t, *k)
			own := sdp.Crypto{Tag: k.Tag, Suite: k.Suite, Key: bytes.Repeat([]byte{byte(len(c.ends) + 1)}, 30)}
			e.tx = srtpContext(t, own)
			if c.rtcp {
				e.rtcp = newRTCPEnd(t, peerOut, 250*time.Millisecond)
				e.rtcp.remote, e.rtcp.rx, e.rtcp.tx = rtcpOf(t, req.Body()), srtcpContext(t, *k), srtcpContext(t, own)
			}
			body := answerSDP(e, own)
			c.mu.Lock()
			c.ends = append(c.ends, e)
			c.sess = append(c.sess, s)
			c.answers[req.CallID().Value()] = body
			c.byCall[req.CallID().Value()] = e
			c.mu.Unlock()
			s.Respond(180, "Ringing", nil)
			s.RespondSDP(body)
			c.next <- e
		}
	})
	return c
}

// bye ends call i from the callee's side and checks the 200.
func (c *srtpCallee) bye(t *testing.T, ctx context.Context, i int) {
	t.Helper()
	c.mu.Lock()
	s := c.sess[i]
	c.mu.Unlock()
	if err := s.Bye(ctx); err != nil {
		t.Fatalf("the callee's BYE after the kill: %v", err)
	}
}

// reinviteNow sends a re-INVITE with the callee's SDP of the call on call
// i and ACKs its 200; for a goroutine (no t).
func (c *srtpCallee) reinviteNow(ctx context.Context, i int) error {
	c.mu.Lock()
	s := c.sess[i]
	body := c.answers[s.InviteRequest.CallID().Value()]
	c.mu.Unlock()
	req := sip.NewRequest(sip.INVITE, s.InviteRequest.Contact().Address)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(body)
	res, err := s.Do(ctx, req)
	if err != nil {
		return err
	}
	if res.StatusCode != 200 {
		return fmt.Errorf("answered %d %s", res.StatusCode, res.Reason)
	}
	return s.WriteRequest(sip.NewRequest(sip.ACK, req.Recipient))
}

// callerLeg is a call as the caller sees it, with both media ends.
type callerLeg struct {
	sess *sipgo.DialogClientSession
	in   *rtpEnd // the caller's RTP (inside)
	out  *rtpEnd // the callee's SRTP (outside)
}

func (l *callerLeg) start() { l.in.start(1000) }
func (l *callerLeg) stop()  { l.in.stop(); l.out.stop() }

func placeCall(t *testing.T, caller *siptest.Peer, callee *srtpCallee, dst netip.AddrPort, i int) *callerLeg {
	t.Helper()
	in := newRTPEnd(t, peerIn)
	if callee.rtcp {
		in.rtcp = newRTCPEnd(t, peerIn, rtcpEvery(i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	sess, err := caller.Call(ctx, dst, "1000", offerSDP(in))
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		t.Fatalf("call %d: %v", i, err)
	}
	if err := sess.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	in.remote, _ = mediaOf(t, sess.InviteResponse.Body())
	if in.rtcp != nil {
		in.rtcp.remote = rtcpOf(t, sess.InviteResponse.Body())
	}
	var out *rtpEnd
	select {
	case out = <-callee.next:
	case <-ctx.Done():
		t.Fatalf("call %d never reached the callee", i)
	}
	if in.remote.Port() == 0 || out.remote.Port() == 0 {
		t.Fatalf("call %d: no media ports", i)
	}
	return &callerLeg{sess: sess, in: in, out: out}
}
