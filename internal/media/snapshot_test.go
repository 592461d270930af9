package media

import (
	"time"

	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/media/sdp"
)

// flow sends about n RTP packets each way in lockstep and checks every payload.
func flow(t *testing.T, pbx, ext *endpoint, label string, n int) {
	t.Helper()
	for i := 0; i < n; i += 3 {
		exchange(t, pbx, ext, fmt.Sprint(label, i))
	}
}

// firstRelay is a relay (closed by the test) with a call from a PBX on plain
// RTP to the outside on SRTP.
func firstRelay(t *testing.T) (*config.Config, *Relay, *call, *endpoint, *endpoint) {
	t.Helper()
	cfg := testConfig(t, 20)
	setOutside(cfg, "ALL", "srtp")
	r, c := relayWithCall(t, cfg)
	pbx, ext := pbxToOutside(t, c, sdp.SuiteAES80)
	return cfg, r, c, pbx, ext
}

// relayWithCall is a relay the test closes itself, with a call anchored on it.
func relayWithCall(t *testing.T, cfg *config.Config) (*Relay, *call) {
	t.Helper()
	r, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.NewCall(t.Name(), Leg{Interface: "inside", Bind: lo}, Leg{Interface: "outside", Bind: lo})
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	return r, c.(*call)
}

// moveCall closes the first relay (as a dead unit's would be gone) and
// restores the call from snap in a second relay on the same configuration.
func moveCall(t *testing.T, cfg *config.Config, r1 *Relay, c1 *call, snap *CallSnapshot) (*Relay, *call) {
	t.Helper()
	c1.Close()
	r1.Close()
	r2 := newTestRelay(t, cfg)
	c2, err := r2.Restore(snap)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c2.Close)
	return r2, c2.(*call)
}

// rtcpBothWays sends n RTCP packets each way, each endpoint with its RTP SSRC.
func rtcpBothWays(t *testing.T, pbx, ext *endpoint, n int) {
	t.Helper()
	for range n {
		pbx.sendRTCP(pbx.ssrc)
		if got := ext.recvRTCP(); got != pbx.ssrc {
			t.Fatalf("RTCP to the outside: ssrc %x", got)
		}
		ext.sendRTCP(ext.ssrc)
		if got := pbx.recvRTCP(); got != ext.ssrc {
			t.Fatalf("RTCP to the PBX: ssrc %x", got)
		}
	}
}

func authFails(c Call) uint64 {
	st := c.Stats()
	return st.Legs[0].AuthFailures + st.Legs[1].AuthFailures
}

func rocOf(vs []SSRCValue, ssrc uint32) (uint32, bool) {
	for _, v := range vs {
		if v.SSRC == ssrc {
			return v.Value, true
		}
	}
	return 0, false
}

// TestRestoreAfterWrap: a call with SRTP on the outside whose streams start
// at sequence 65,000 and wrap; a snapshot after the wrap; more packets on
// the first relay (sent after the last snapshot, as in real life); the first
// relay closes, a second one restores the call on the same ports, and the
// same endpoints, which know nothing of it, keep talking both ways.
func TestRestoreAfterWrap(t *testing.T) {
	cfg, r1, c1, pbx, ext := firstRelay(t)
	pbx.ssrc, ext.ssrc = 0x11112222, 0x33334444
	pbx.seq, ext.seq = 64999, 64999 // the first packet is 65,000
	// Snapshots taken while packets flow (the race detector watches the
	// SRTP state the worker owns).
	done := make(chan struct{})
	snaps := make(chan int)
	go func() {
		n := 0
		defer func() { snaps <- n }()
		for {
			select {
			case <-done:
				return
			default:
			}
			if _, err := c1.Snapshot(); err != nil {
				t.Error(err)
				return
			}
			n++
		}
	}()
	flow(t, pbx, ext, "before", 700) // past 65,535: rollover counter 1
	close(done)
	if n := <-snaps; n == 0 {
		t.Fatal("no snapshot was taken while packets flowed")
	}
	rtcpBothWays(t, pbx, ext, 70)

	snap, err := c1.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	b := snap.Legs(t)
	if roc, ok := rocOf(b.In.ROC, ext.ssrc); !ok || roc != 1 {
		t.Fatalf("inbound ROC of the outside's SSRC: %d %v, want 1\n%+v", roc, ok, b.In)
	}
	if roc, ok := rocOf(b.Out.ROC, pbx.ssrc); !ok || roc != 1 {
		t.Fatalf("outbound ROC of the PBX's SSRC: %d %v, want 1\n%+v", roc, ok, b.Out)
	}
	if idx, ok := rocOf(b.Out.SRTCPIndex, pbx.ssrc); !ok || idx < 70 {
		t.Fatalf("outbound SRTCP index: %d %v\n%+v", idx, ok, b.Out)
	}
	rec, err := snap.Encode()
	if err != nil {
		t.Fatal(err)
	}
	// What the owner sends after its last write: the restored unit must not
	// reuse these SRTCP indexes.
	flow(t, pbx, ext, "after snapshot", 20)
	rtcpBothWays(t, pbx, ext, 10)
	if n := authFails(c1); n != 0 {
		t.Fatalf("%d SRTP authentication failures on the first relay", n)
	}
	ports := [2]int{c1.port(0, SideA), c1.port(0, SideB)}
	got, err := DecodeSnapshot(rec)
	if err != nil {
		t.Fatal(err)
	}
	moved := time.Now()
	r2, c2 := moveCall(t, cfg, r1, c1, got)
	if p := [2]int{c2.port(0, SideA), c2.port(0, SideB)}; p != ports {
		t.Fatalf("restored on ports %v, want %v", p, ports)
	}
	flow(t, pbx, ext, "restored", 300)
	// The restored relay measured the gap of both directions once: from
	// the restore to the first packet out.
	if g := r2.RestoreGaps(); g.Directions != 2 || g.Median <= 0 || g.Max > time.Since(moved) {
		t.Fatalf("gaps of the restored relay: %+v (restored %v ago)", g, time.Since(moved))
	}
	if g := r1.RestoreGaps(); g.Directions != 0 {
		t.Fatalf("the first relay restored nothing but reports gaps %+v", g)
	}
	rtcpBothWays(t, pbx, ext, 10)
	if n := authFails(c2); n != 0 {
		t.Fatalf("%d SRTP/SRTCP authentication failures after the restore", n)
	}
	st := c2.Stats()
	if st.Legs[SideA].PacketsIn < 300 || st.Legs[SideB].PacketsIn < 300 || !st.Legs[SideB].SRTP {
		t.Fatalf("restored call's counters: %+v", st)
	}
	if r2.ports.inUse() != 2 {
		t.Fatalf("%d port pairs in use on the second relay, want 2", r2.ports.inUse())
	}
	c2.Close()
	if r2.ports.inUse() != 0 {
		t.Fatal("the restored call's ports were not released")
	}
}

// TestRestoreWithoutROCFails shows what the counters are for: the same
// call restored with its rollover counters dropped fails authentication.
func TestRestoreWithoutROCFails(t *testing.T) {
	cfg, r1, c1, pbx, ext := firstRelay(t)
	ext.seq = 64999
	flow(t, pbx, ext, "before", 600)
	snap, err := c1.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	snap.Legs(t).In.ROC = nil
	_, c2 := moveCall(t, cfg, r1, c1, snap)
	for i := range 5 {
		ext.sendRTP([]byte(fmt.Sprint("lost ", i)))
	}
	waitFor(t, "authentication failures", func() bool { return authFails(c2) == 5 })
}

// TestRestoreWrapInGap: the snapshot is older than the wrap of the
// outside's stream (it wrapped in the gap of a takeover, while nobody
// relayed it): the restored relay finds the rollover counter one higher
// on the first packet, and the call goes on with no authentication
// failure (it failed on every packet of that stream before). A packet
// that fails with both counters leaves the stream unconfirmed.
func TestRestoreWrapInGap(t *testing.T) {
	cfg, r1, c1, pbx, ext := firstRelay(t)
	ext.ssrc, ext.seq = 0x33334444, 65399
	flow(t, pbx, ext, "before", 60)
	snap, err := c1.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if roc, ok := rocOf(snap.Legs(t).In.ROC, ext.ssrc); !ok || roc != 0 {
		t.Fatalf("inbound ROC of the outside's SSRC: %d %v, want 0", roc, ok)
	}
	ports := [2]int{c1.port(0, SideA), c1.port(0, SideB)}
	c1.Close()
	r1.Close()
	for i := range 200 { // the gap: past 65,535, to nobody
		ext.sendRTP([]byte(fmt.Sprint("lost ", i)))
	}
	r2 := newTestRelay(t, cfg)
	c, err := r2.Restore(snap)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	c2 := c.(*call)
	if p := [2]int{c2.port(0, SideA), c2.port(0, SideB)}; p != ports {
		t.Fatalf("restored on ports %v, want %v", p, ports)
	}
	// A forged packet first: it fails with either counter and changes nothing.
	real := ext.tx
	ext.tx, _ = newContext(sdp.Crypto{Tag: 1, Suite: sdp.SuiteAES80, Key: bytes.Repeat([]byte{7}, 30)})
	ext.sendRTP([]byte("forged"))
	ext.tx, ext.seq = real, ext.seq-1
	waitFor(t, "the forged packet's failure", func() bool { return authFails(c2) == 1 })
	flow(t, pbx, ext, "restored", 300)
	if n := authFails(c2); n != 1 {
		t.Fatalf("%d SRTP authentication failures after the restore, want 1 (the forged packet)", n)
	}
	snap2, err := c2.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if roc, ok := rocOf(snap2.Legs(t).In.ROC, ext.ssrc); !ok || roc != 1 {
		t.Fatalf("inbound ROC after the restore: %d %v, want 1", roc, ok)
	}
}

// Legs is the outside leg of the first stream.
func (s *CallSnapshot) Legs(t *testing.T) *LegSnapshot {
	t.Helper()
	if len(s.Streams) == 0 || s.Streams[0] == nil {
		t.Fatalf("snapshot has no first stream: %+v", s)
	}
	return &s.Streams[0].Legs[SideB]
}

func TestRestorePortTaken(t *testing.T) {
	cfg := testConfig(t, 20)
	setOutside(cfg, "ALL", "srtp")
	r := newTestRelay(t, cfg)
	c := newTestCall(t, r)
	pbxToOutside(t, c, sdp.SuiteAES80)
	snap, err := c.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	snap.ID = "copy"
	if _, err := r.Restore(snap); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("restore onto ports in use: %v", err)
	}
	if r.ports.inUse() != 2 || r.ActiveCalls() != 1 {
		t.Fatalf("a failed restore left %d pairs, %d calls", r.ports.inUse(), r.ActiveCalls())
	}
}

func TestDecodeSnapshotRefuses(t *testing.T) {
	good := goldenRecord(t)
	if _, err := DecodeSnapshot(good); err != nil {
		t.Fatalf("the v1 record: %v", err)
	}
	for _, tc := range []struct{ name, from, to, want string }{
		{"other version", `"version":1`, `"version":2`, "written as version 2, this build reads version 1"},
		{"no version", `"version":1,`, ``, "no version"},
		{"unknown field", `"version":1`, `"version":1,"extra":true`, "unknown field"},
		{"short key", `"key":"`, `"key":"AAAA`, "key of"},
		{"odd port", `"port":`, `"port":1`, "not an even RTP port"},
		{"suite", `"suite":"AES_CM_128_HMAC_SHA1_80"`, `"suite":"NULL"`, "not supported"},
		{"SRTCP index at the end", `"value":2}`, `"value":2147483600}`, "end of the key's life"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := strings.Replace(string(good), tc.from, tc.to, 1)
			if b == string(good) && tc.from != tc.to {
				t.Fatalf("%q not in the record", tc.from)
			}
			_, err := DecodeSnapshot([]byte(b))
			if !errors.Is(err, ErrBadSnapshot) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an ErrBadSnapshot saying %q", err, tc.want)
			}
		})
	}
	if _, err := DecodeSnapshot(append(bytes.TrimSpace(good), "{}"...)); !errors.Is(err, ErrBadSnapshot) || !strings.Contains(err.Error(), "after the record") {
		t.Fatalf("record followed by more: %v", err)
	}
	for n := 1; n < len(good); n += 7 {
		if _, err := DecodeSnapshot(good[:n]); !errors.Is(err, ErrBadSnapshot) {
			t.Fatalf("record truncated to %d bytes: %v", n, err)
		}
	}
}

// goldenRecord is testdata/snapshot/v1.json, a record a call made, compacted.
func goldenRecord(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/snapshot/v1.json")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func FuzzDecodeSnapshot(f *testing.F) {
	good := goldenRecord(f)
	f.Add(good)
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{"version":2,"id":"x"}`))
	f.Add(good[:len(good)/2])
	f.Add(bytes.Replace(good, []byte(`"tag":1,`), []byte(`"tag":1,"mki":"","params":[],`), 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeSnapshot(b)
		if err != nil {
			if !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("error not wrapping ErrBadSnapshot: %v", err)
			}
			return
		}
		// What is accepted encodes and decodes to the same record.
		again, err := s.Encode()
		if err != nil {
			t.Fatalf("accepted record does not encode: %v", err)
		}
		s2, err := DecodeSnapshot(again)
		if err != nil {
			t.Fatalf("re-encoded record refused: %v\n%s", err, again)
		}
		again2, err := s2.Encode()
		if err != nil || !bytes.Equal(again, again2) {
			t.Fatalf("record changed on a round trip (%v):\n%s\n%s", err, again, again2)
		}
	})
}

// TestRestoreMuxKeepsLatch: a call with rtcp-mux on both legs is restored;
// RTCP keeps going over the RTP ports, the restored sockets are connected
// to the latched peers at once, and a stranger's packets are not relayed.
func TestRestoreMuxKeepsLatch(t *testing.T) {
	cfg := testConfig(t, 20)
	r1, c1 := relayWithCall(t, cfg)
	pbx, ext := newEndpoint(t), newEndpoint(t)
	pbx.mux, ext.mux = true, true
	out, err := c1.Offer(SideA, pbx.sdpBody("RTP/AVP", "rtcp-mux"))
	if err != nil {
		t.Fatal(err)
	}
	ext.learn(out, 1)
	ans, err := c1.Answer(SideB, ext.sdpBody("RTP/SAVP", "rtcp-mux", ext.key(1, sdp.SuiteAES80)))
	if err != nil {
		t.Fatal(err)
	}
	pbx.learn(ans, 0)
	pbx.ssrc, ext.ssrc = 0x5555, 0x6666
	exchange(t, pbx, ext, "first")
	rtcpBothWays(t, pbx, ext, 3)
	// Through the interface the SIP layer will use.
	snap, err := Call(c1).(Snapshotter).Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if l := snap.Streams[0].Legs[SideA]; !l.Mux || l.LatchRTP.Port() != uint16(pbx.port()) {
		t.Fatalf("inside leg recorded as %+v", l)
	}
	_, cl := moveCall(t, cfg, r1, c1, snap)
	checkPeer(t, cl.stream0(SideA).rtp, netip.AddrPortFrom(lo, uint16(pbx.port())))
	checkPeer(t, cl.stream0(SideB).rtp, netip.AddrPortFrom(lo, uint16(ext.port())))
	intruder := newEndpoint(t)
	intruder.remote = pbx.remote
	intruder.sendRTP([]byte("injected"))
	exchange(t, pbx, ext, "restored")
	rtcpBothWays(t, pbx, ext, 3)
	if n := authFails(cl); n != 0 {
		t.Fatalf("%d authentication failures after the restore", n)
	}
}

// TestCounterHook: the relay tells when a call's snapshot is due again: on
// each RTP sequence wrap (either direction) and when an outbound SRTCP
// index reaches a multiple of 64.
func TestCounterHook(t *testing.T) {
	cfg := testConfig(t, 20)
	setOutside(cfg, "ALL", "srtp")
	var mu sync.Mutex
	told := 0
	r, err := New(cfg, nil, WithCounterHook(func(id string) {
		if id == t.Name() {
			mu.Lock()
			told++
			mu.Unlock()
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	mc, err := r.NewCall(t.Name(), Leg{Interface: "inside", Bind: lo}, Leg{Interface: "outside", Bind: lo})
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	pbx, ext := pbxToOutside(t, mc.(*call), sdp.SuiteAES80)
	count := func() int { mu.Lock(); defer mu.Unlock(); return told }
	pbx.seq, ext.seq = 65530, 100
	flow(t, pbx, ext, "wrap", 12) // pbx's stream wraps once, ext's does not
	if n := count(); n != 1 {
		t.Fatalf("told %d times after one wrap", n)
	}
	// SRTCP to the outside (pion numbers from 1): index 64 is due.
	for range 65 {
		pbx.sendRTCP(pbx.ssrc)
		ext.recvRTCP()
	}
	if n := count(); n != 2 {
		t.Fatalf("told %d times after 65 SRTCP packets (want the wrap and index 64)", n)
	}
}

// TestRestoreSRTCPBeforeIndexWrite: the record was written before the
// outbound SRTCP index reached 64 (the owner writes it at every 64th
// packet), so it holds no index; the first relay then sent 40 SRTCP
// packets. The restored relay must not number its SRTCP from 1 again (the
// outside peer, whose replay window saw 1-40, would drop them): it goes on
// from 64. A snapshot right after the restore, before any packet, keeps
// the record's counters (a second takeover needs them).
func TestRestoreSRTCPBeforeIndexWrite(t *testing.T) {
	cfg, r1, c1, pbx, ext := firstRelay(t)
	pbx.ssrc, ext.ssrc = 0x77778888, 0x9999aaaa
	pbx.seq = 65300
	flow(t, pbx, ext, "before", 300) // the PBX's stream wraps: ROC 1
	snap, err := c1.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if b := snap.Legs(t); len(b.Out.SRTCPIndex) != 0 {
		t.Fatalf("SRTCP index recorded before any RTCP: %+v", b.Out.SRTCPIndex)
	}
	rtcpBothWays(t, pbx, ext, 40)
	_, c2 := moveCall(t, cfg, r1, c1, snap)
	again, err := c2.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	b := again.Legs(t)
	if roc, ok := rocOf(b.Out.ROC, pbx.ssrc); !ok || roc != 1 {
		t.Fatalf("snapshot right after the restore: outbound ROC %d %v, want 1\n%+v", roc, ok, b.Out)
	}
	if idx, ok := rocOf(b.Out.SRTCPIndex, pbx.ssrc); !ok || idx != srtcpIndexJump {
		t.Fatalf("snapshot right after the restore: SRTCP index %d %v, want %d", idx, ok, srtcpIndexJump)
	}
	// recvRTCP fails the test on a packet the outside's context refuses.
	rtcpBothWays(t, pbx, ext, 10)
	flow(t, pbx, ext, "restored", 30)
	if n := authFails(c2); n != 0 {
		t.Fatalf("%d SRTP/SRTCP authentication failures after the restore", n)
	}
	// An SSRC the record does not know starts at the floor too.
	pbx.sendRTCP(0x0bad0bad)
	if got := ext.recvRTCP(); got != 0x0bad0bad {
		t.Fatalf("RTCP of a new SSRC: %x", got)
	}
	rc := c2.streams[0].state.Load().legs[SideB].out.rtcp
	rc.mu.Lock()
	idx, _ := rc.ctx.Index(0x0bad0bad)
	rc.mu.Unlock()
	if idx != srtcpIndexJump+1 {
		t.Fatalf("SRTCP index of a new SSRC after the restore: %d, want %d", idx, srtcpIndexJump+1)
	}
}
