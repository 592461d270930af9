package guard

import (
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
)

func testConfig(mut func(*config.Config)) *config.Config {
	c := config.Default()
	c.Peers = []config.Peer{
		{Name: "trunk", Kind: "itsp", Interface: "outside", Address: "192.0.2.10:5061", Transport: "tls"},
		{Name: "teams", Kind: "itsp", Interface: "outside", Domain: "sip.example.net", Transport: "tls"},
		{Name: "pbx", Kind: "pbx", Interface: "inside", Address: "10.0.0.10"},
	}
	if mut != nil {
		mut(c)
	}
	return c
}

// clock is a manual clock for the guard.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTestGuard(t *testing.T, cfg *config.Config) (*Guard, *clock) {
	t.Helper()
	g := New(cfg, nil)
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	g.now = c.now
	return g, c
}

func src(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestCheckAccess(t *testing.T) {
	drop := func(c *config.Config) { c.SIP.UnknownSource = "drop" }
	accept := func(c *config.Config) { c.SIP.UnknownSource = "accept" }
	limits := func(c *config.Config) { c.SIP.MaxCalls = 2 }
	tests := []struct {
		name   string
		mut    func(*config.Config)
		req    Request
		action Action
		code   int
		cause  string
	}{
		{"peer by literal address", nil, Request{Source: src("192.0.2.10:40000"), Interface: "outside", Method: "INVITE"}, Allow, 0, ""},
		{"peer named by routing", nil, Request{Source: src("198.51.100.7:5061"), Interface: "outside", Method: "INVITE", Peer: "teams"}, Allow, 0, ""},
		{"peer by verified TLS name", nil, Request{Source: src("198.51.100.8:5061"), Interface: "outside", Method: "INVITE", TLSNames: []string{"SIP.example.net"}}, Allow, 0, ""},
		{"unknown source rejected", nil, Request{Source: src("203.0.113.5:5060"), Interface: "outside", Method: "INVITE"}, Reject, 403, "unknown_source"},
		{"unknown source OPTIONS rejected too", nil, Request{Source: src("203.0.113.5:5060"), Interface: "outside", Method: "OPTIONS"}, Reject, 403, "unknown_source"},
		{"unknown source dropped", drop, Request{Source: src("203.0.113.5:5060"), Interface: "outside", Method: "INVITE"}, Drop, 0, "unknown_source"},
		{"unknown source accepted when configured", accept, Request{Source: src("203.0.113.5:5060"), Interface: "outside", Method: "INVITE"}, Allow, 0, ""},
		{"peer on another interface is no peer here", nil, Request{Source: src("10.0.0.10:5060"), Interface: "outside", Method: "INVITE"}, Reject, 403, "unknown_source"},
		{"unrestricted interface accepts anyone", nil, Request{Source: src("10.0.0.99:5060"), Interface: "inside", Method: "INVITE"}, Allow, 0, ""},
		{"in-dialog request from unknown source passes", nil, Request{Source: src("203.0.113.5:5060"), Interface: "outside", Method: "BYE", InDialog: true}, Allow, 0, ""},
		{"max calls reached", limits, Request{Source: src("192.0.2.10:40000"), Interface: "outside", Method: "INVITE", Calls: 2}, Reject, 503, "max_calls"},
		{"max calls never sheds in-dialog", limits, Request{Source: src("192.0.2.10:40000"), Interface: "outside", Method: "BYE", InDialog: true, Calls: 5}, Allow, 0, ""},
		{"max calls does not refuse OPTIONS", limits, Request{Source: src("192.0.2.10:40000"), Interface: "outside", Method: "OPTIONS", Calls: 5}, Allow, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, _ := newTestGuard(t, testConfig(tc.mut))
			v := g.Check(tc.req)
			if v.Action != tc.action || v.Code != tc.code || v.Cause != tc.cause {
				t.Fatalf("Check = %+v, want action %d code %d cause %q", v, tc.action, tc.code, tc.cause)
			}
			if v.Code == 503 && v.RetryAfter <= 0 {
				t.Errorf("503 without Retry-After: %+v", v)
			}
		})
	}
}

func TestSourceRateLimitBlocksAndExpires(t *testing.T) {
	g, clk := newTestGuard(t, testConfig(func(c *config.Config) {
		c.SIP.SourceRateLimit = 10 // 20 per 2 s window
		c.SIP.SourceBlockTime = config.Duration(30 * time.Second)
	}))
	flood := Request{Source: src("10.0.0.66:5060"), Interface: "inside", Method: "OPTIONS"}
	for i := range 20 {
		if v := g.Check(flood); v.Action != Allow {
			t.Fatalf("request %d refused below the limit: %+v", i, v)
		}
	}
	if v := g.Check(flood); v.Action != Drop || v.Cause != "rate" {
		t.Fatalf("request over the limit: %+v, want drop/rate", v)
	}
	// Blocked: even in-dialog requests of that source are ignored.
	if v := g.Check(Request{Source: src("10.0.0.66:5070"), Interface: "inside", Method: "BYE", InDialog: true}); v.Action != Drop || v.Cause != "blocked" {
		t.Fatalf("blocked source in-dialog: %+v", v)
	}
	// Other sources and peers are not affected; peers are never counted.
	if v := g.Check(Request{Source: src("10.0.0.67:5060"), Interface: "inside", Method: "INVITE"}); v.Action != Allow {
		t.Fatalf("other source: %+v", v)
	}
	peer := Request{Source: src("10.0.0.10:5060"), Interface: "inside", Method: "OPTIONS"}
	for range 100 {
		if v := g.Check(peer); v.Action != Allow {
			t.Fatalf("peer refused: %+v", v)
		}
	}
	if !g.Blocked(flood.Source.Addr()) {
		t.Fatal("Blocked reports false")
	}
	clk.t = clk.t.Add(31 * time.Second)
	if v := g.Check(flood); v.Action != Allow {
		t.Fatalf("after the block time: %+v", v)
	}
}

func TestWindowResetsBelowLimit(t *testing.T) {
	g, clk := newTestGuard(t, testConfig(func(c *config.Config) { c.SIP.SourceRateLimit = 5 }))
	r := Request{Source: src("10.0.0.70:5060"), Interface: "inside", Method: "OPTIONS"}
	// 10 per window, spread over many windows: never blocked.
	for i := range 100 {
		if i%10 == 0 {
			clk.t = clk.t.Add(rateWindow)
		}
		if v := g.Check(r); v.Action != Allow {
			t.Fatalf("request %d: %+v", i, v)
		}
	}
}

func TestCredentialGuessingBlocks(t *testing.T) {
	g, _ := newTestGuard(t, testConfig(nil))
	r := Request{Source: src("10.0.0.80:5060"), Interface: "inside", Method: "REGISTER", HasCredentials: true}
	for i := range authAttempts {
		if v := g.Check(r); v.Action != Allow {
			t.Fatalf("attempt %d refused: %+v", i, v)
		}
	}
	if v := g.Check(r); v.Action != Drop || v.Cause != "auth" {
		t.Fatalf("attempt over the limit: %+v", v)
	}
}

func TestAuthFailedBlocks(t *testing.T) {
	g, _ := newTestGuard(t, testConfig(nil))
	a := netip.MustParseAddr("10.0.0.81")
	for range authFailures - 1 {
		g.AuthFailed(a)
	}
	if g.Blocked(a) {
		t.Fatal("blocked before the limit")
	}
	g.AuthFailed(a)
	if !g.Blocked(a) {
		t.Fatal("not blocked after repeated failures")
	}
	if v := g.Check(Request{Source: netip.AddrPortFrom(a, 5060), Interface: "inside", Method: "INVITE"}); v.Action != Drop {
		t.Fatalf("blocked source's INVITE: %+v", v)
	}
}

func TestCallRateAndCPU(t *testing.T) {
	g, clk := newTestGuard(t, testConfig(func(c *config.Config) { c.SIP.MaxCallRate = 3 }))
	inv := Request{Source: src("10.0.0.10:5060"), Interface: "inside", Method: "INVITE"}
	for i := range 3 {
		if v := g.Check(inv); v.Action != Allow {
			t.Fatalf("call %d: %+v", i, v)
		}
	}
	if v := g.Check(inv); v.Code != 503 || v.Cause != "call_rate" {
		t.Fatalf("4th call in a second: %+v", v)
	}
	clk.t = clk.t.Add(time.Second)
	if v := g.Check(inv); v.Action != Allow {
		t.Fatalf("next second: %+v", v)
	}
	// CPU: two high samples switch shedding on, in-dialog still passes.
	for _, s := range []float64{0.95, 0.97} {
		g.cpu.decide(s)
	}
	if v := g.Check(Request{Source: src("10.0.0.10:5060"), Interface: "inside", Method: "INVITE"}); v.Code != 503 || v.Cause != "cpu" {
		t.Fatalf("INVITE under CPU overload: %+v", v)
	}
	if v := g.Check(Request{Source: src("10.0.0.10:5060"), Interface: "inside", Method: "BYE", InDialog: true}); v.Action != Allow {
		t.Fatalf("BYE under CPU overload: %+v", v)
	}
	g.cpu.decide(0.5)
	if g.Overloaded() {
		t.Fatal("still overloaded after a low sample")
	}
}

func TestFDShedding(t *testing.T) {
	g, _ := newTestGuard(t, testConfig(nil))
	inv := Request{Source: src("10.0.0.10:5060"), Interface: "inside", Method: "INVITE"}
	for _, tc := range []struct {
		share float64
		want  bool
	}{{0.5, false}, {0.85, true}, {0.75, true}, {0.6, false}} {
		g.cpu.decideFDs(tc.share)
		v := g.Check(inv)
		if got := v.Cause == "fds"; got != tc.want {
			t.Fatalf("fd share %v: %+v, shedding want %v", tc.share, v, tc.want)
		}
		if bye := g.Check(Request{Source: inv.Source, Interface: "inside", Method: "BYE", InDialog: true}); bye.Action != Allow {
			t.Fatalf("BYE shed at fd share %v", tc.share)
		}
	}
	// The real sampler reads this process's descriptors.
	for range fdCheckEvery {
		g.cpu.sampleFDs()
	}
	if g.cpu.fdsHigh.Load() {
		t.Fatal("the test process is over 80% of its descriptors?")
	}
}

func TestCPUHysteresis(t *testing.T) {
	tests := []struct {
		samples []float64
		want    bool
	}{
		{[]float64{0.95}, false},                 // one spike is not overload
		{[]float64{0.95, 0.5, 0.95}, false},      // not in a row
		{[]float64{0.95, 0.92}, true},            // two in a row
		{[]float64{0.95, 0.92, 0.8}, true},       // between low and high: stays
		{[]float64{0.95, 0.92, 0.8, 0.7}, false}, // below low: off
	}
	for _, tc := range tests {
		var c cpuMonitor
		for _, s := range tc.samples {
			c.decide(s)
		}
		if got := c.overloaded.Load(); got != tc.want {
			t.Errorf("%v: overloaded %v, want %v", tc.samples, got, tc.want)
		}
	}
}

func TestParseStatTicks(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
	}{
		{"1234 (palisade) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 12 0", 300},
		{"1234 (a b) c)) R 1 1 1 0 -1 0 0 0 0 0 7 8 0 0", 15},
		{"garbage", 0},
		{"1 (x) S 1 2", 0},
	}
	for _, tc := range tests {
		if got := parseStatTicks([]byte(tc.in)); got != tc.want {
			t.Errorf("parseStatTicks(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
	// A fresh test process may not have used one clock tick yet: burn some
	// CPU (bounded) until the kernel accounts it.
	x := uint64(1)
	for i := 0; i < 2000 && procTicks() == 0; i++ {
		for j := range 1_000_000 {
			x = x*6364136223846793005 + uint64(j)
		}
	}
	if procTicks() == 0 {
		t.Errorf("procTicks read nothing from /proc/self/stat (%d)", x)
	}
}

func TestSourceTableBounded(t *testing.T) {
	g, _ := newTestGuard(t, testConfig(nil))
	// Far more distinct sources than the table holds: memory stays bounded.
	for i := range 64*maxPerShard + 5000 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		g.Check(Request{Source: netip.AddrPortFrom(a, 5060), Interface: "inside", Method: "OPTIONS"})
	}
	n := 0
	for i := range g.sources.shards {
		n += len(g.sources.shards[i].m)
	}
	if n > 64*maxPerShard {
		t.Fatalf("%d sources tracked, bound is %d", n, 64*maxPerShard)
	}
}

func TestApplyKeepsBlocks(t *testing.T) {
	g, _ := newTestGuard(t, testConfig(func(c *config.Config) { c.SIP.SourceRateLimit = 1 }))
	r := Request{Source: src("10.0.0.90:5060"), Interface: "inside", Method: "OPTIONS"}
	for range 3 {
		g.Check(r)
	}
	if !g.Blocked(r.Source.Addr()) {
		t.Fatal("not blocked")
	}
	if err := g.Apply(t.Context(), testConfig(nil)); err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if !g.Blocked(r.Source.Addr()) {
		t.Fatal("apply forgot the block")
	}
}

func TestApplyAfterCloseRestartsSampler(t *testing.T) {
	g, _ := newTestGuard(t, testConfig(nil))
	for range 2 {
		if err := g.Apply(t.Context(), testConfig(nil)); err != nil {
			t.Fatal(err)
		}
		g.mu.Lock()
		running := g.stop != nil
		g.mu.Unlock()
		if !running {
			t.Fatal("no sampler after Apply")
		}
		g.Close()
		g.Close() // twice is fine
	}
}

// countFDs must agree with the directory listing it replaced, and follow
// descriptors opened after it.
func TestCountFDs(t *testing.T) {
	var c cpuMonitor
	before, err := c.countFDs()
	if err != nil {
		t.Fatal(err)
	}
	var files []*os.File
	for range 50 {
		f, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	after, err := c.countFDs()
	if err != nil {
		t.Fatal(err)
	}
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	// ReadDir's own descriptor is in its listing; countFDs leaves its own out.
	if after != len(es)-1 || after-before != 50 {
		t.Fatalf("countFDs: %d before, %d after 50 opens; /proc/self/fd lists %d (with ReadDir's own)", before, after, len(es))
	}
}
