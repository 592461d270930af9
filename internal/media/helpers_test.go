package media

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/media/sdp"
)

var lo = netip.MustParseAddr("127.0.0.1")

// freeRange finds n consecutive free UDP ports on 127.0.0.1 (n even, first even).
func freeRange(t testing.TB, n int) (int, int) {
	t.Helper()
	for base := 41000 + (time.Now().Nanosecond()/1000%400)*2*n%20000; base < 65000; base += 2 * n {
		ok := true
		var held []*net.UDPConn
		for p := base; p < base+n; p++ {
			c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p})
			if err != nil {
				ok = false
				break
			}
			held = append(held, c)
		}
		for _, c := range held {
			c.Close()
		}
		if ok {
			return base, base + n - 1
		}
	}
	t.Fatal("no free port range")
	return 0, 0
}

// testConfig is the default configuration with a port range of n ports.
func testConfig(t testing.TB, n int) *config.Config {
	cfg := config.Default()
	cfg.Media.PortMin, cfg.Media.PortMax = freeRange(t, n)
	cfg.Media.CryptoSuiteGroups = append(cfg.Media.CryptoSuiteGroups,
		config.CryptoSuiteGroup{Name: "GCM", Suites: []string{"AEAD_AES_128_GCM"}},
		config.CryptoSuiteGroup{Name: "ALL", Suites: []string{"cleartext", "AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32", "AEAD_AES_128_GCM"}})
	return cfg
}

func newTestRelay(t testing.TB, cfg *config.Config) *Relay {
	t.Helper()
	r, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func newTestCall(t testing.TB, r *Relay) *call {
	t.Helper()
	c, err := r.NewCall(t.Name(), Leg{Interface: "inside", Bind: lo}, Leg{Interface: "outside", Bind: lo})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.(*call)
}

// port is our RTP port on side s for the stream of m= line i (before the
// first offer: the ports taken at call setup).
func (c *call) port(i int, s Side) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i < len(c.streams) && c.streams[i] != nil {
		return c.streams[i].legs[s].port
	}
	if i == 0 && c.spare != nil {
		return c.spare.legs[s].port
	}
	return 0
}

// stream0 is side s of the call's first stream (m= line 0, or the ports
// taken at call setup).
func (c *call) stream0(s Side) *leg {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.streams) > 0 && c.streams[0] != nil {
		return c.streams[0].legs[s]
	}
	return c.spare.legs[s]
}

// endpoint is a test media peer: a PBX (plain RTP) or an outside UA with its
// own pion SRTP contexts.
type endpoint struct {
	t          testing.TB
	rtp, rtcp  *net.UDPConn
	tx, rx     *srtp.Context // nil for plain RTP
	txKey      sdp.Crypto
	seq        uint16
	ssrc       uint32
	mu         sync.Mutex
	remote     netip.AddrPort // where we send RTP (the relay's port from the SDP we got)
	remoteRTCP netip.AddrPort
	addr       netip.Addr
	mux        bool // RTCP on the RTP port
}

func newEndpoint(t testing.TB) *endpoint { return newEndpointAt(t, lo) }

func newEndpointAt(t testing.TB, addr netip.Addr) *endpoint {
	t.Helper()
	l := func() *net.UDPConn {
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, 0)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	return &endpoint{t: t, rtp: l(), rtcp: l(), ssrc: 0x1234abcd, addr: addr}
}

func (e *endpoint) port() int     { return e.rtp.LocalAddr().(*net.UDPAddr).Port }
func (e *endpoint) rtcpPort() int { return e.rtcp.LocalAddr().(*net.UDPAddr).Port }

// sdpBody builds an SDP for this endpoint with the given profile and crypto lines.
func (e *endpoint) sdpBody(proto string, extra ...string) []byte {
	var b strings.Builder
	c := sdp.ConnLine(e.addr)
	fmt.Fprintf(&b, "v=0\r\no=- 1 1 %s\r\ns=-\r\n%s\r\nt=0 0\r\n", c[2:], c)
	fmt.Fprintf(&b, "m=audio %d %s 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n", e.port(), proto)
	fmt.Fprintf(&b, "a=rtcp:%d\r\n", e.rtcpPort())
	for _, x := range extra {
		b.WriteString("a=" + x + "\r\n")
	}
	return []byte(b.String())
}

// key makes a crypto line for this endpoint and keeps it as its sending key.
func (e *endpoint) key(tag int, suite string) string {
	k, err := newCrypto(rand.Reader, tag, suite)
	if err != nil {
		e.t.Fatal(err)
	}
	e.txKey = k
	ctx, err := newContext(k)
	if err != nil {
		e.t.Fatal(err)
	}
	e.tx = ctx
	return "crypto:" + k.String()
}

// learn reads the relay's SDP: where to send, and (for SRTP) the relay's key
// with tag (0 = the only/first one).
func (e *endpoint) learn(body []byte, tag int) *sdp.Session { return e.learnLine(body, 0, tag) }

// learnLine is learn for the stream of m= line i.
func (e *endpoint) learnLine(body []byte, i, tag int) *sdp.Session {
	e.t.Helper()
	s, err := sdp.Parse(body)
	if err != nil {
		e.t.Fatalf("relay sent SDP that does not parse: %v\n%s", err, body)
	}
	if len(s.Media) <= i || s.Media[i].Port == 0 {
		e.t.Fatalf("relay's SDP has no stream on m= line %d:\n%s", i, body)
	}
	m := s.Media[i]
	addr, _ := s.MediaConn(m)
	e.remote = netip.AddrPortFrom(addr, uint16(m.Port))
	e.remoteRTCP = netip.AddrPortFrom(addr, uint16(m.Port+1))
	if r, ok := m.RTCPAttr(); ok {
		e.remoteRTCP = netip.AddrPortFrom(addr, uint16(r.Port))
	}
	e.rx = nil
	for _, v := range m.Attrs("crypto") {
		k, err := sdp.ParseCrypto(v)
		if err != nil {
			e.t.Fatalf("relay sent a bad a=crypto %q: %v", v, err)
		}
		if tag == 0 || k.Tag == tag {
			if e.rx, err = newContext(k); err != nil {
				e.t.Fatal(err)
			}
			break
		}
	}
	return s
}

func (e *endpoint) sendRTP(payload []byte) {
	e.t.Helper()
	e.seq++
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 8, SequenceNumber: e.seq, Timestamp: uint32(e.seq) * 160, SSRC: e.ssrc}, Payload: payload}
	b, err := p.Marshal()
	if err != nil {
		e.t.Fatal(err)
	}
	if e.tx != nil {
		if b, err = e.tx.EncryptRTP(nil, b, nil); err != nil {
			e.t.Fatal(err)
		}
	}
	if _, err := e.rtp.WriteToUDPAddrPort(b, e.remote); err != nil {
		e.t.Fatal(err)
	}
}

// recvRTP waits (bounded) for the next RTP packet and returns its payload.
func (e *endpoint) recvRTP() []byte {
	e.t.Helper()
	buf := make([]byte, 2048)
	e.rtp.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := e.rtp.ReadFromUDPAddrPort(buf)
	if err != nil {
		e.t.Fatalf("no RTP arrived: %v", err)
	}
	b := buf[:n]
	if e.rx != nil {
		if b, err = e.rx.DecryptRTP(nil, b, nil); err != nil {
			e.t.Fatalf("relay's SRTP does not decrypt with the key it gave us: %v", err)
		}
	}
	var p rtp.Packet
	if err := p.Unmarshal(b); err != nil {
		e.t.Fatal(err)
	}
	return p.Payload
}

func (e *endpoint) sendRTCP(ssrc uint32) {
	e.t.Helper()
	b, err := (&rtcp.ReceiverReport{SSRC: ssrc}).Marshal()
	if err != nil {
		e.t.Fatal(err)
	}
	if e.tx != nil {
		if b, err = e.tx.EncryptRTCP(nil, b, nil); err != nil {
			e.t.Fatal(err)
		}
	}
	sock, to := e.rtcp, e.remoteRTCP
	if e.mux {
		sock, to = e.rtp, e.remote
	}
	if _, err := sock.WriteToUDPAddrPort(b, to); err != nil {
		e.t.Fatal(err)
	}
}

func (e *endpoint) recvRTCP() uint32 {
	e.t.Helper()
	buf := make([]byte, 2048)
	sock := e.rtcp
	if e.mux {
		sock = e.rtp
	}
	sock.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := sock.ReadFromUDPAddrPort(buf)
	if err != nil {
		e.t.Fatalf("no RTCP arrived: %v", err)
	}
	b := buf[:n]
	if e.rx != nil {
		if b, err = e.rx.DecryptRTCP(nil, b, nil); err != nil {
			e.t.Fatalf("relay's SRTCP does not decrypt: %v", err)
		}
	}
	pk, err := rtcp.Unmarshal(b)
	if err != nil || len(pk) == 0 {
		e.t.Fatalf("bad RTCP: %v", err)
	}
	return pk[0].(*rtcp.ReceiverReport).SSRC
}

// exchange checks that payloads pass both ways and arrive intact.
func exchange(t *testing.T, a, b *endpoint, label string) {
	t.Helper()
	for i := range 3 {
		want := []byte(fmt.Sprintf("%s a->b %d", label, i))
		a.sendRTP(want)
		if got := b.recvRTP(); !bytes.Equal(got, want) {
			t.Fatalf("a->b payload %q, want %q", got, want)
		}
		want = []byte(fmt.Sprintf("%s b->a %d", label, i))
		b.sendRTP(want)
		if got := a.recvRTP(); !bytes.Equal(got, want) {
			t.Fatalf("b->a payload %q, want %q", got, want)
		}
	}
}

// waitFor polls cond (bounded); used only to wait for counters to move.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 500 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("gave up waiting for %s", what)
}
