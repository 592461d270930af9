package keepalive

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/routing"
)

func TestMovesOn(t *testing.T) {
	for status, want := range map[int]bool{
		0: true, 408: true, 500: true, 503: true, 504: true, 580: true,
		400: false, 403: false, 404: false, 480: false, 486: false, 487: false, 488: false,
		600: false, 603: false, 604: false, 606: false, 200: false, 302: false,
	} {
		if got := MovesOn(status); got != want {
			t.Errorf("MovesOn(%d) = %v, want %v", status, got, want)
		}
	}
}

func TestIsUp(t *testing.T) {
	for _, tc := range []struct {
		rule   string
		status int
		want   bool
	}{
		{Up2xx, 200, true}, {Up2xx, 202, true}, {Up2xx, 403, false}, {Up2xx, 404, false}, {Up2xx, 0, false}, {Up2xx, 100, false},
		{UpAny, 200, true}, {UpAny, 403, true}, {UpAny, 404, true}, {UpAny, 408, false}, {UpAny, 503, false}, {UpAny, 500, false},
		{"", 403, true}, {"", 0, false}, {UpAny, 603, true},
	} {
		if got := IsUp(tc.rule, tc.status); got != tc.want {
			t.Errorf("IsUp(%q, %d) = %v, want %v", tc.rule, tc.status, got, tc.want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"120": 2 * time.Minute, "30 (maintenance)": 30 * time.Second, "5;duration=60": 5 * time.Second,
		"": 0, "soon": 0, "99999999999": time.Hour, "7200": time.Hour,
	} {
		if got := ParseRetryAfter(in); got != want {
			t.Errorf("ParseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
	res := sip.NewResponse(503, "Service Unavailable")
	res.AppendHeader(sip.NewHeader("Retry-After", "60"))
	if RetryAfter(res) != time.Minute {
		t.Error("503 Retry-After 60 not read")
	}
	res = sip.NewResponse(486, "Busy Here")
	res.AppendHeader(sip.NewHeader("Retry-After", "60"))
	if RetryAfter(res) != 0 {
		t.Error("Retry-After of a 486 must not keep a target out")
	}
}

// TestBuild checks the OPTIONS bytes: what Microsoft's "Direct Routing -
// SIP protocol" page shows in its OPTIONS example (no user in the URIs,
// Contact with the SBC's FQDN and transport=tls), plus X-MS-SBC, Allow and
// User-Agent.
func TestBuild(t *testing.T) {
	tg := routing.Target{Addr: netip.MustParseAddrPort("52.114.1.1:5061"), Transport: "tls", ServerName: "sip.pstnhub.microsoft.com"}
	req := Build(Probe{LocalHost: "sbc1.example.com", LocalPort: 5061, UserAgent: "Palisade/1.0",
		Headers: MergeHeaders(map[string]string{"X-MS-SBC": "Palisade/SBC/1.0", "X-Other": "a"}, map[string]string{"x-other": "b"})},
		tg, "sip.pstnhub.microsoft.com")
	wire := req.String()
	for _, want := range []string{
		"OPTIONS sip:sip.pstnhub.microsoft.com:5061;transport=tls SIP/2.0\r\n",
		"\r\nFrom: <sip:sbc1.example.com:5061>;tag=",
		"\r\nTo: <sip:sip.pstnhub.microsoft.com:5061>\r\n",
		"\r\nContact: <sip:sbc1.example.com:5061;transport=tls>\r\n",
		"\r\nCSeq: 1 OPTIONS\r\n",
		"\r\nMax-Forwards: 70\r\n",
		"\r\nAllow: INVITE, ACK, CANCEL, BYE, OPTIONS, PRACK, UPDATE, INFO, NOTIFY, REFER\r\n",
		"\r\nUser-Agent: Palisade/1.0\r\n",
		"\r\nX-MS-SBC: Palisade/SBC/1.0\r\n",
		"\r\nx-other: b\r\n",
		"\r\nContent-Length: 0\r\n",
	} {
		if !strings.Contains(wire, want) {
			t.Errorf("OPTIONS lacks %q:\n%s", want, wire)
		}
	}
	if strings.Contains(wire, "X-Other: a") {
		t.Errorf("keepalive header did not replace the peer's:\n%s", wire)
	}
}

// fakes

type fakeResolver map[string][]routing.Target

func (f fakeResolver) Resolve(_ context.Context, h routing.Hop) ([]routing.Target, error) {
	if ts, ok := f[h.Host]; ok {
		return ts, nil
	}
	return nil, errors.New("NXDOMAIN")
}

// fakeSender answers per target address: a status (0 = no answer), with a
// Retry-After when set; it records the requests.
type fakeSender struct {
	mu      sync.Mutex
	answers map[netip.AddrPort]int
	retry   map[netip.AddrPort]string
	sent    []*sip.Request
}

func (f *fakeSender) set(a string, status int) {
	f.mu.Lock()
	f.answers[netip.MustParseAddrPort(a)] = status
	f.mu.Unlock()
}

func (f *fakeSender) Options(_ context.Context, req *sip.Request, t Target) (*sip.Response, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, req)
	st := f.answers[t.Addr]
	if st == 0 {
		return nil, errors.New("transaction timed out")
	}
	res := sip.NewResponseFromRequest(req, st, "x", nil)
	if ra := f.retry[t.Addr]; ra != "" {
		res.AppendHeader(sip.NewHeader("Retry-After", ra))
	}
	return res, nil
}

func tgt(a string) routing.Target {
	return routing.Target{Addr: netip.MustParseAddrPort(a), Transport: "tls"}
}

func teamsMonitor(t *testing.T, interval time.Duration) (*Monitor, *fakeSender, *time.Time) {
	return teamsMonitorLog(t, interval, nil)
}

func teamsMonitorLog(t *testing.T, interval time.Duration, log *slog.Logger) (*Monitor, *fakeSender, *time.Time) {
	res := fakeResolver{
		"sip.pstnhub.microsoft.com":  {tgt("127.0.0.1:5061"), tgt("127.0.0.2:5061")},
		"sip2.pstnhub.microsoft.com": {tgt("127.0.0.3:5061")},
		"sip3.pstnhub.microsoft.com": {tgt("127.0.0.4:5061")},
	}
	snd := &fakeSender{answers: map[netip.AddrPort]int{}, retry: map[netip.AddrPort]string{}}
	m := New(res, snd, log)
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	m.now = func() time.Time { return now }
	var hops []routing.Hop
	for _, h := range []string{"sip.pstnhub.microsoft.com", "sip2.pstnhub.microsoft.com", "sip3.pstnhub.microsoft.com", "nxdomain.invalid"} {
		hops = append(hops, routing.Hop{Peer: "teams", Host: h, Port: 5061, Transport: "tls", Headers: map[string]string{"X-MS-SBC": "P/1"}})
	}
	m.Apply([]Peer{{Name: "teams", Hops: hops, Interval: interval, Up: Up2xx, DownAfter: 1,
		Probe: Probe{LocalHost: "sbc.example.com", LocalPort: 5061}}})
	t.Cleanup(m.Close)
	return m, snd, &now
}

// waitChecked waits until n targets have had a keepalive answer or timeout.
func waitChecked(t *testing.T, m *Monitor, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c := 0
		for _, s := range m.States() {
			if s.Checked {
				c++
			}
		}
		if c >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d targets checked", c, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func addrs(ts []Target) string {
	var s []string
	for _, t := range ts {
		s = append(s, t.Addr.String())
	}
	return strings.Join(s, " ")
}

func TestMonitorTargets(t *testing.T) {
	// An interval far longer than the test: rounds run by CheckNow only.
	m, snd, now := teamsMonitor(t, time.Hour)
	ctx := context.Background()
	waitChecked(t, m, 4) // the first round runs at Apply; nothing answers yet
	for _, a := range []string{"127.0.0.1:5061", "127.0.0.2:5061", "127.0.0.3:5061", "127.0.0.4:5061"} {
		snd.set(a, 200)
	}
	if err := m.CheckNow(ctx, "teams"); err != nil {
		t.Fatal(err)
	}
	ts, err := m.NextTargets(ctx, "teams")
	if err != nil || addrs(ts) != "127.0.0.1:5061 127.0.0.2:5061 127.0.0.3:5061 127.0.0.4:5061" {
		t.Fatalf("all up: %s, %v", addrs(ts), err)
	}
	if ts[2].Hop.Host != "sip2.pstnhub.microsoft.com" || ts[0].Hop.Headers["X-MS-SBC"] != "P/1" {
		t.Fatalf("target hop: %+v", ts[2].Hop)
	}
	// Each target got its own OPTIONS, with the peer's X-MS-SBC.
	snd.mu.Lock()
	to := map[string]bool{}
	for _, r := range snd.sent {
		if h := r.GetHeader("X-MS-SBC"); h == nil || h.Value() != "P/1" {
			t.Errorf("OPTIONS without the peer's X-MS-SBC:\n%s", r)
		}
		to[r.Recipient.Host] = true
	}
	snd.mu.Unlock()
	if len(to) != 3 {
		t.Fatalf("OPTIONS went to %v, want the three names", to)
	}

	// The first datacenter answers 403 (Teams: Contact not the SBC's FQDN)
	// and 503 Retry-After 120; under the 2xx rule both are down.
	snd.set("127.0.0.1:5061", 403)
	snd.set("127.0.0.2:5061", 503)
	snd.mu.Lock()
	snd.retry[netip.MustParseAddrPort("127.0.0.2:5061")] = "120"
	snd.mu.Unlock()
	m.CheckNow(ctx, "teams")
	if ts, _ = m.NextTargets(ctx, "teams"); addrs(ts) != "127.0.0.3:5061 127.0.0.4:5061" {
		t.Fatalf("first datacenter down: %s", addrs(ts))
	}
	// 127.0.0.2 recovers at once, but its Retry-After still holds.
	snd.set("127.0.0.2:5061", 200)
	m.CheckNow(ctx, "teams")
	if ts, _ = m.NextTargets(ctx, "teams"); addrs(ts) != "127.0.0.3:5061 127.0.0.4:5061" {
		t.Fatalf("Retry-After not kept: %s", addrs(ts))
	}
	*now = now.Add(121 * time.Second)
	if ts, _ = m.NextTargets(ctx, "teams"); addrs(ts) != "127.0.0.2:5061 127.0.0.3:5061 127.0.0.4:5061" {
		t.Fatalf("after Retry-After: %s", addrs(ts))
	}
	var st403 TargetState
	for _, s := range m.States() {
		if s.Address == "127.0.0.1:5061" {
			st403 = s
		}
	}
	if st403.Up || st403.LastStatus != 403 || !st403.Checked || st403.Host != "sip.pstnhub.microsoft.com" {
		t.Fatalf("state of the 403 target: %+v", st403)
	}

	// A call finds sip2 dead (no answer): out until a keepalive succeeds.
	m.Report(ts[1], 0, 0)
	if ts, _ = m.NextTargets(ctx, "teams"); addrs(ts) != "127.0.0.2:5061 127.0.0.4:5061" {
		t.Fatalf("after a dead call: %s", addrs(ts))
	}
	m.CheckNow(ctx, "teams")
	if ts, _ = m.NextTargets(ctx, "teams"); addrs(ts) != "127.0.0.2:5061 127.0.0.3:5061 127.0.0.4:5061" {
		t.Fatalf("after keepalive success: %s", addrs(ts))
	}
	// A call's 503 Retry-After keeps its target out too; a 486 changes nothing.
	m.Report(ts[0], 503, 30*time.Second)
	m.Report(ts[1], 486, 0)
	if ts, _ = m.NextTargets(ctx, "teams"); addrs(ts) != "127.0.0.3:5061 127.0.0.4:5061" {
		t.Fatalf("after a call's 503: %s", addrs(ts))
	}

	// Everything down: ErrAllDown at once, and the peer is down for routing.
	for _, a := range []string{"127.0.0.1:5061", "127.0.0.2:5061", "127.0.0.3:5061", "127.0.0.4:5061"} {
		snd.set(a, 0)
	}
	m.CheckNow(ctx, "teams")
	if _, err := m.NextTargets(ctx, "teams"); !errors.Is(err, ErrAllDown) {
		t.Fatalf("all down: %v", err)
	}
	if m.PeerUp("teams") {
		t.Fatal("PeerUp with every target down")
	}
	if _, err := m.NextTargets(ctx, "nobody"); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("unknown peer: %v", err)
	}
}

// Every call in flight to a target that went away reports it; the target
// going down is logged once, not once per call (thousands of lines a
// second at 1,500 calls/s when a trunk's connection dropped).
func TestMonitorLogsTargetDownOnce(t *testing.T) {
	var out syncBuf
	m, snd, _ := teamsMonitorLog(t, time.Hour, slog.New(slog.NewTextHandler(&out, nil)))
	m.recheck = 0        // no probe in between brings a target back (TestMonitorRechecksTargetACallFoundDead)
	waitChecked(t, m, 4) // the loop's first round (nobody answers); the next is in an hour
	for _, a := range []string{"127.0.0.1:5061", "127.0.0.2:5061", "127.0.0.3:5061", "127.0.0.4:5061"} {
		snd.set(a, 200)
	}
	m.CheckNow(context.Background(), "teams") // all up
	ts, err := m.NextTargets(context.Background(), "teams")
	if err != nil || len(ts) < 2 {
		t.Fatalf("targets: %s %v", addrs(ts), err)
	}
	for range 100 {
		m.Report(ts[0], 0, 0)
	}
	m.Report(ts[1], 408, 0)
	m.Report(ts[1], 408, 0)
	if n := strings.Count(out.String(), "marked down after a call got no answer"); n != 2 {
		t.Fatalf("%d lines say a target was marked down, want 2 (one per target):\n%s", n, out.String())
	}
}

// A target a call found dead is probed again soon, not at the next
// interval: when it answers, calls use it again. Under overload the unit's
// own calls go unanswered while the peer is fine; with one target that
// meant 503 for every call until the next keepalive (bench/sip run 9).
func TestMonitorRechecksTargetACallFoundDead(t *testing.T) {
	m, snd, _ := teamsMonitorLog(t, time.Hour, nil)
	m.recheck = 10 * time.Millisecond
	waitChecked(t, m, 4) // the loop's first round; the next is in an hour
	for _, a := range []string{"127.0.0.1:5061", "127.0.0.2:5061", "127.0.0.3:5061", "127.0.0.4:5061"} {
		snd.set(a, 200)
	}
	m.CheckNow(context.Background(), "teams")
	ts, err := m.NextTargets(context.Background(), "teams")
	if err != nil || len(ts) != 4 {
		t.Fatalf("targets: %s %v", addrs(ts), err)
	}
	for _, tg := range ts {
		m.Report(tg, 0, 0)
	}
	// Down at once; the probe that follows finds them answering (a
	// generous bound: the recheck is due 10 ms after the report).
	deadline := time.Now().Add(30 * time.Second)
	for !m.PeerUp("teams") {
		if time.Now().After(deadline) {
			t.Fatal("the targets stayed down after answering a recheck")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if ts2, err := m.NextTargets(context.Background(), "teams"); err != nil || len(ts2) == 0 {
		t.Fatalf("after the recheck: %s %v", addrs(ts2), err)
	}

	// Again, and still dead when probed: a second recheck round runs, and
	// the target stays down.
	snd.set("127.0.0.1:5061", 0)
	sent := func() int { snd.mu.Lock(); defer snd.mu.Unlock(); return len(snd.sent) }
	n0 := sent()
	for _, tg := range ts {
		if tg.Addr.String() == "127.0.0.1:5061" {
			m.Report(tg, 0, 0)
		}
	}
	for sent() < n0+4 {
		if time.Now().After(deadline) {
			t.Fatalf("no recheck round after the second report (%d probes sent since)", sent()-n0)
		}
		time.Sleep(5 * time.Millisecond)
	}
	m.CheckNow(context.Background(), "teams") // the round's answers are in
	for _, st := range m.States() {
		if st.Address == "127.0.0.1:5061" && st.Up {
			t.Fatalf("a target that does not answer is up: %+v", st)
		}
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestMonitorWithoutKeepalive(t *testing.T) {
	m, snd, now := teamsMonitor(t, 0)
	ctx := context.Background()
	ts, err := m.NextTargets(ctx, "teams")
	if err != nil || len(ts) != 4 {
		t.Fatalf("resolved on demand: %s %v", addrs(ts), err)
	}
	all := addrs(ts)
	m.Report(ts[0], 408, 0)
	if got := addrs(mustTargets(t, m)); got != "127.0.0.2:5061 127.0.0.3:5061 127.0.0.4:5061 127.0.0.1:5061" {
		t.Fatalf("held after a dead call: %s, want it last", got)
	}
	for _, st := range m.States() {
		held := st.Target == ts[0].Key()
		if got := st.Status().HeldUntil; held != got.After(*now) {
			t.Fatalf("status of %s: held until %v (held: %v)", st.Target, got, held)
		}
	}
	// every target dead: still tried per call (nothing would bring them
	// back sooner), never refused, and the peer stays up for routing
	for _, tg := range ts {
		m.Report(tg, 0, 0)
	}
	if got := addrs(mustTargets(t, m)); got != all || !m.PeerUp("teams") {
		t.Fatalf("every target held: %s (up %v), want all in order", got, m.PeerUp("teams"))
	}
	m.Report(ts[1], 200, 0) // it answered a call: first again
	if got := addrs(mustTargets(t, m)); got != "127.0.0.2:5061 127.0.0.1:5061 127.0.0.3:5061 127.0.0.4:5061" {
		t.Fatalf("after an answer: %s", got)
	}
	*now = now.Add(holdDown + time.Second)
	if got := addrs(mustTargets(t, m)); got != all {
		t.Fatalf("after the hold: %s", got)
	}
	// a 503's Retry-After does keep a target out
	for _, tg := range ts {
		m.Report(tg, 503, time.Minute)
	}
	if _, err := m.NextTargets(ctx, "teams"); !errors.Is(err, ErrAllDown) {
		t.Fatalf("every target out by Retry-After: %v", err)
	}
	snd.mu.Lock()
	defer snd.mu.Unlock()
	if len(snd.sent) != 0 {
		t.Fatal("OPTIONS sent without keepalive")
	}
}

// TestMonitorLoop: with an interval, the monitor probes by itself.
func TestMonitorLoop(t *testing.T) {
	m, snd, _ := teamsMonitor(t, 20*time.Millisecond)
	snd.set("127.0.0.3:5061", 200)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ts, err := m.NextTargets(context.Background(), "teams")
		if err == nil && addrs(ts) == "127.0.0.3:5061" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("keepalive never took the silent targets out: %s %v", addrs(ts), err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	m.Apply(nil)
	if _, err := m.NextTargets(context.Background(), "teams"); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("removed peer: %v", err)
	}
}

// FuzzRetryAfter: any Retry-After from outside gives 0 to an hour.
func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"120", "30 (x)", "5;duration=60", "", "99999999999", "-1", "1e9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if d := ParseRetryAfter(v); d < 0 || d > time.Hour {
			t.Fatalf("ParseRetryAfter(%q) = %v", v, d)
		}
	})
}

func mustTargets(t *testing.T, m *Monitor) []Target {
	t.Helper()
	ts, err := m.NextTargets(context.Background(), "teams")
	if err != nil {
		t.Fatal(err)
	}
	return ts
}
