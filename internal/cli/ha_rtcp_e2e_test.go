//go:build linux

package cli

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/srtp/v3"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/palisade-sbc/palisade/internal/media/sdp"
	"github.com/palisade-sbc/palisade/internal/testkit/siptest"
)

// rtcpEnd is the RTCP of a test user agent's media (an rtpEnd's rtcp): on
// a port of its own, announced with a=rtcp, it sends a sender report every
// `every` under the RTP's SSRC and records what arrives; with keys it is
// SRTCP, received with a replay window as a real peer would.
type rtcpEnd struct {
	udpLoop
	every time.Duration
	// remote, tx and rx are set before start; pion's contexts are not
	// safe for concurrent use, so these are the RTCP's own.
	remote  netip.AddrPort
	tx, rx  *srtp.Context
	recv    stream
	replays atomic.Int64 // of recv's failures, those refused as replays
	sent    atomic.Int64
}

var errNotSR = errors.New("not a sender report")

func newRTCPEnd(t *testing.T, ip string, every time.Duration) *rtcpEnd {
	e := &rtcpEnd{udpLoop: newUDPLoop(t, ip), every: every}
	t.Cleanup(e.stop)
	return e
}

func (e *rtcpEnd) port() int { return udpPort(e.conn) }

// start sends sender reports of ssrc, the RTP's, and receives.
func (e *rtcpEnd) start(ssrc uint32) {
	e.wg.Add(2)
	go func() {
		defer e.wg.Done()
		receive(e.conn, e.done, func(b []byte) {
			var err error
			if e.rx != nil {
				b, err = e.rx.DecryptRTCP(nil, b, nil)
				if err != nil && strings.Contains(err.Error(), "duplicated") {
					e.replays.Add(1)
				}
			}
			if err == nil {
				var pk []rtcp.Packet
				if pk, err = rtcp.Unmarshal(b); err == nil {
					if _, ok := pk[0].(*rtcp.SenderReport); !ok {
						err = errNotSR
					}
				}
			}
			e.recv.got(err == nil)
		})
	}()
	go func() { // at most 2 minutes
		defer e.wg.Done()
		tick := time.NewTicker(e.every)
		defer tick.Stop()
		start := time.Now()
		for i := uint32(1); time.Since(start) < 2*time.Minute; i++ {
			select {
			case <-e.done:
				return
			case <-tick.C:
			}
			sr := rtcp.SenderReport{SSRC: ssrc, NTPTime: uint64(time.Now().UnixNano()), RTPTime: i * 8000,
				PacketCount: i * 50, OctetCount: i * 8000}
			b, err := sr.Marshal()
			if err == nil && e.tx != nil {
				b, err = e.tx.EncryptRTCP(nil, b, nil)
			}
			if err == nil {
				if _, err := e.conn.WriteToUDPAddrPort(b, e.remote); err == nil {
					e.sent.Add(1)
				}
			}
		}
	}()
}

// udpLoop is a socket with the goroutines that serve it, for the RTP and
// RTCP ends of the HA tests.
type udpLoop struct {
	conn *net.UDPConn
	done chan struct{}
	wg   sync.WaitGroup
}

func newUDPLoop(t *testing.T, ip string) udpLoop {
	return udpLoop{conn: listenUDP(t, ip), done: make(chan struct{})}
}

// stop ends the goroutines and closes the socket; once.
func (l *udpLoop) stop() {
	select {
	case <-l.done:
		return
	default:
	}
	close(l.done)
	l.wg.Wait()
	l.conn.Close()
}

// srtcpContext is a context for one direction of SRTCP, with a replay
// window of 64 on what it decrypts (pion has none by default): an index
// sent again after a takeover is refused, as by a real peer.
func srtcpContext(t *testing.T, c sdp.Crypto) *srtp.Context {
	t.Helper()
	prof := srtp.ProtectionProfileAes128CmHmacSha1_80
	if c.Suite == sdp.SuiteAES32 {
		prof = srtp.ProtectionProfileAes128CmHmacSha1_32
	}
	ctx, err := srtp.CreateContext(c.Key[:16], c.Key[16:], prof, srtp.SRTCPReplayProtection(64))
	if err != nil {
		t.Fatal(err)
	}
	return ctx
}

// rtcpOf is where the unit's SDP says its RTCP is: a=rtcp, else the RTP
// port + 1.
func rtcpOf(t *testing.T, body []byte) netip.AddrPort {
	t.Helper()
	rtpAddr, _ := mediaOf(t, body)
	port := int(rtpAddr.Port()) + 1
	for _, l := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "a=rtcp:"); ok {
			if p, err := strconv.Atoi(strings.Fields(v)[0]); err == nil {
				port = p
			}
		}
	}
	return netip.AddrPortFrom(rtpAddr.Addr(), uint16(port))
}

// offerSDP is the caller's SDP for its end e, with e's RTCP port when it
// has one.
func offerSDP(e *rtpEnd) []byte {
	b := siptest.SDP(peerIn, e.port())
	if e.rtcp != nil {
		b = append(b, "a=rtcp:"+strconv.Itoa(e.rtcp.port())+"\r\n"...)
	}
	return b
}

// rtcpEvery is how often the RTCP of the caller of call i goes: every
// 100 ms on odd calls, so that the unit's SRTCP index towards the callee
// passes 64 (a record write) and nears 128 at the kill, 250 ms on the
// others, which stay below 64 (no index in the record).
func rtcpEvery(i int) time.Duration {
	if i%2 == 1 {
		return 100 * time.Millisecond
	}
	return 250 * time.Millisecond
}

// rtcpFlows checks the RTCP of every call both ways: none refused (SRTCP
// authentication and replay at the callee, parsing at the caller), and,
// when t0 is set, some arriving after it. It waits up to 20 s for that.
func rtcpFlows(t *testing.T, legs []*callerLeg, t0 time.Time, log func() string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for i, l := range legs {
		in, out := l.in.rtcp, l.out.rtcp
		for in.recv.count() == 0 || out.recv.count() == 0 || !t0.IsZero() && (!in.recv.after(t0) || !out.recv.after(t0)) {
			if time.Now().After(deadline) {
				t.Fatalf("call %d: RTCP did not arrive both ways (after %v): to the caller %d, to the callee %d\n%s",
					i, t0.Format(time.TimeOnly), in.recv.count(), out.recv.count(), log())
			}
			time.Sleep(50 * time.Millisecond)
		}
		if f, r := out.recv.authFailures(), out.replays.Load(); f != 0 {
			t.Errorf("call %d: %d SRTCP packets refused at the callee (%d of them as replays)", i, f, r)
		}
		if f := in.recv.authFailures(); f != 0 {
			t.Errorf("call %d: %d RTCP packets to the caller were not sender reports", i, f)
		}
	}
}

// rtcpSummary prints how much RTCP went each way and the longest RTCP
// silence around t0 per direction.
func rtcpSummary(t *testing.T, legs []*callerLeg, t0 time.Time) {
	t.Helper()
	var sent, toCaller, toCallee int64
	var gapIn, gapOut []time.Duration
	for _, l := range legs {
		sent += l.in.rtcp.sent.Load() + l.out.rtcp.sent.Load()
		toCaller += int64(l.in.rtcp.recv.count())
		toCallee += int64(l.out.rtcp.recv.count())
		gapIn, gapOut = append(gapIn, l.in.rtcp.recv.gap(t0)), append(gapOut, l.out.rtcp.recv.gap(t0))
	}
	t.Logf("RTCP: %d sender reports sent, %d arrived at the callers (RTCP), %d at the callees (SRTCP)", sent, toCaller, toCallee)
	gapSummary(t, "of RTCP to the caller", gapIn)
	gapSummary(t, "of SRTCP to the callee", gapOut)
}

// gapsWithin fails the test for a media gap over limit (the bound
// with a 1 s lease).
func gapsWithin(t *testing.T, direction string, gaps []time.Duration, limit time.Duration) {
	t.Helper()
	for i, g := range gaps {
		if g > limit {
			t.Errorf("call %d: media gap %s of %v, more than %v", i, direction, g.Round(time.Millisecond), limit)
		}
	}
}

// leaseIs checks that key is on a lease granted for ttl seconds: etcd did
// not raise the configured lease to its minimum.
func leaseIs(t *testing.T, cli *clientv3.Client, key string, ttl int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var resp *clientv3.GetResponse
	var err error
	for { // the unit puts the key once its election has begun
		resp, err = cli.Get(ctx, key)
		if err == nil && len(resp.Kvs) == 1 && resp.Kvs[0].Lease != 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("%s: %v %v", key, resp, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	l, err := cli.TimeToLive(ctx, clientv3.LeaseID(resp.Kvs[0].Lease))
	if err != nil {
		t.Fatal(err)
	}
	if l.GrantedTTL != ttl {
		t.Fatalf("the election's lease was granted for %d s, want %d s", l.GrantedTTL, ttl)
	}
	t.Logf("the election's lease is granted for %d s", l.GrantedTTL)
}

// electionLog prints the election's and the takeover's lines of unit u's
// log when the test failed.
func electionLog(t *testing.T, name string, u *unitProc) {
	if !t.Failed() {
		return
	}
	var lines []string
	for _, l := range strings.Split(u.log.String(), "\n") {
		if strings.Contains(l, "vip:") || strings.Contains(l, `msg="ha:`) && !strings.Contains(l, "carried on") {
			lines = append(lines, l)
		}
	}
	t.Logf("%s's election and takeover:\n%s", name, strings.Join(lines, "\n"))
}

// takeoverLine is what b's log says of the takeover (when, how long the
// adoption took), and when its election began to campaign.
func takeoverLine(u *unitProc) string {
	var out []string
	for _, l := range strings.Split(u.log.String(), "\n") {
		if strings.Contains(l, "floating addresses taken") || strings.Contains(l, "vip: address taken") {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return strings.Join(out, "\n")
}
