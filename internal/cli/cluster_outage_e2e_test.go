package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/testkit"
	"github.com/palisade-sbc/palisade/internal/testkit/etcdtest"
)

// sippResult is one sipp UAC run: its cumulative counts of successful
// and failed calls (from the statistics it prints when it ends).
type sippResult struct {
	ok, failed int
	err        error
	out        []byte
}

var sippCount = regexp.MustCompile(`(?m)^\s*(Successful|Failed) call\s*\|\s*\d+\s*\|\s*(\d+)`)

func parseSipp(out []byte, err error) sippResult {
	r := sippResult{err: err, out: out, ok: -1, failed: -1}
	for _, m := range sippCount.FindAllSubmatch(out, -1) { // the last screen counts
		n, _ := strconv.Atoi(string(m[2]))
		if string(m[1]) == "Successful" {
			r.ok = n
		} else {
			r.failed = n
		}
	}
	return r
}

// startUAS runs sipp as the trunk on 127.0.0.3:port (at most 15 minutes,
// or until stopped; the test's cleanup stops it) and returns once it
// holds its port, so that no first call reaches the port before it
// listens.
func startUAS(t *testing.T, sipp string, port int) *testkit.Proc {
	t.Helper()
	uas := exec.Command(sipp, "-sn", "uas", "-i", "127.0.0.3", "-p", fmt.Sprint(port), "-timeout", "900s", "-nostdin")
	uas.Dir = t.TempDir()
	p := testkit.Start(t, uas, 0)
	p.WaitReady(t, "sipp uas", func() bool {
		c, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.3:%d", port))
		if err == nil {
			c.Close()
			return false
		}
		return true
	}, 50*time.Millisecond, 1200, func() string { return "" })
	return p
}

// goSipp places calls (rate a second, each holding holdMS) from sipp as
// the PBX through inside, in the background; the channel gets the result.
// Failed calls are written to sipp's error log, shown on failure.
func goSipp(t *testing.T, sipp string, calls, rate, holdMS, pbxPort int, inside string) <-chan sippResult {
	done := make(chan sippResult, 1)
	work := t.TempDir()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(60+2*calls/rate)*time.Second)
		defer cancel()
		uac := exec.CommandContext(ctx, sipp, "-sn", "uac", "-i", "127.0.0.1", "-p", fmt.Sprint(pbxPort), "-s", "4687",
			"-m", fmt.Sprint(calls), "-r", fmt.Sprint(rate), "-d", fmt.Sprint(holdMS), "-timeout", fmt.Sprintf("%ds", 40+2*calls/rate),
			"-trace_err", "-error_file", filepath.Join(work, "errors.log"), "-nostdin", inside)
		uac.Dir = work
		out, err := uac.CombinedOutput()
		if e, _ := os.ReadFile(filepath.Join(work, "errors.log")); len(e) > 0 {
			out = append(append(out, "\nsipp error log:\n"...), e...)
		}
		done <- parseSipp(out, err)
	}()
	return done
}

// checkSipp fails the test unless every one of the calls succeeded.
func checkSipp(t *testing.T, what string, r sippResult, calls int, unit *unitProc) {
	t.Helper()
	t.Logf("%s: sipp counted %d successful, %d failed calls", what, r.ok, r.failed)
	if r.err != nil || r.failed != 0 || r.ok != calls {
		t.Fatalf("%s: sipp: %v, %d successful, %d failed of %d\n%s\nunit log:\n%s", what, r.err, r.ok, r.failed, calls,
			testkit.LastLines(string(r.out), 80), testkit.LastLines(unit.log.String(), 40))
	}
}

// timedApply sets unit.name through dir, applies, and logs and returns
// how long `palisade config apply` took: it returns once every live unit
// runs the new configuration, so this is an upper bound of the time from
// the apply on one unit to running on all (issue: within 1 s; not
// asserted, the machine may be slow: only a generous bound fails).
func timedApply(t *testing.T, dir, name, what string) time.Duration {
	t.Helper()
	mustCLI(t, dir, "config", "set", "unit.name", strconv.Quote(name))
	start := time.Now()
	mustCLI(t, dir, "config", "apply", "--confirm-within", "5m")
	d := time.Since(start)
	t.Logf("apply through one unit → running on every unit (%s): %s", what, d.Round(time.Millisecond))
	if d > 60*time.Second {
		t.Fatalf("apply (%s) took %s", what, d)
	}
	return d
}

// TestClusterCallsThroughEtcdMemberLoss: two `palisade run` units on a
// real three-member etcd; sipp places calls through unit a (PBX → a →
// trunk) while etcd members are killed. With one member down no call
// fails and apply + confirm through the CLI work; with two down the calls
// in progress go on, new calls succeed, and configuration changes are
// refused naming etcd; once a member is back, changes work again.
func TestClusterCallsThroughEtcdMemberLoss(t *testing.T) {
	sipp := testkit.NeedBinary(t, "sipp", "sip-tester")
	etcd := etcdtest.Start(t, 3)
	pbxPort, trunkPort := testkit.FreePort(t, "udp", "127.0.0.1"), testkit.FreePort(t, "udp", "127.0.0.3")
	cfg := sippConfig(t, pbxPort, trunkPort)
	// a runs the shared listeners (sipp's PBX calls its inside one); b has
	// its own ports and media range.
	var lsB []config.Listener
	for _, l := range cfg.SIP.Listeners {
		l.Port = freeListenerPort(t, l)
		lsB = append(lsB, l)
	}
	// room for 30 calls in progress (four ports each) and those released
	base := 20000 + testkit.FreePort(t, "udp", "127.0.0.1")%20000&^1
	cfg.Media.PortMin, cfg.Media.PortMax = base, base+599
	cfg.Units = map[string]config.UnitSettings{
		"a": {Name: "edge-a"},
		"b": {Name: "edge-b", Listeners: lsB, MediaPortMin: base + 600, MediaPortMax: base + 799},
	}
	initial := writeInitial(t, cfg)
	store := etcd.URL(fmt.Sprintf("outage-%d", os.Getpid()))
	dirA, dirB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	a := startUnit(t, dirA, initial, "--store", store, "--unit", "a")
	startUnit(t, dirB, initial, "--store", store, "--unit", "b")
	inside := fmt.Sprintf("127.0.0.1:%d", cfg.SIP.Listeners[0].Port)
	startUAS(t, sipp, trunkPort)
	waitUnits(t, dirA, 2)

	// Everything up: the time from an apply through a to b running it.
	timedApply(t, dirA, "v1", "three etcd members")
	if got := unitName(t, mustCLI(t, dirB, "config", "show", "--running")); got != "v1" {
		t.Fatalf("b runs %q once the apply through a returned", got)
	}
	mustCLI(t, dirB, "config", "confirm")

	// One member down while calls run: none fails; apply and confirm work.
	const calls1 = 60 // 10/s, 3 s each
	run1 := goSipp(t, sipp, calls1, 10, 3000, pbxPort, inside)
	waitAnswered(t, dirA, 5)
	etcd.KillMember(2)
	timedApply(t, dirA, "v2", "one etcd member down")
	if out := mustCLI(t, dirB, "config", "confirm"); !strings.Contains(out, "version") {
		t.Fatalf("confirm through b with one etcd member down: %q", out)
	}
	if got := unitName(t, mustCLI(t, dirA, "config", "show", "--saved")); got != "v2" {
		t.Fatalf("saved after confirm with one member down: %q", got)
	}
	checkSipp(t, "one etcd member down", <-run1, calls1, a)

	// Two down (no quorum) with calls in progress: they go on, changes are
	// refused naming etcd, and new calls placed meanwhile succeed.
	const calls2, calls3 = 40, 20
	run2 := goSipp(t, sipp, calls2, 10, 3000, pbxPort, inside)
	waitAnswered(t, dirA, 5)
	etcd.KillMember(1)
	r := palisade(t, dirA, "config", "set", "unit.name", `"during-outage"`)
	if r.code == 0 || !strings.Contains(r.stderr, "etcd") {
		t.Fatalf("config set without an etcd quorum: exit %d, %q; want a refusal naming etcd", r.code, r.stderr)
	}
	t.Logf("config set without an etcd quorum: %s", strings.TrimSpace(r.stderr))
	if r := palisade(t, dirB, "config", "apply"); r.code == 0 || !strings.Contains(r.stderr, "etcd") {
		t.Fatalf("config apply through b without an etcd quorum: exit %d, %q", r.code, r.stderr)
	}
	checkSipp(t, "two etcd members down, a run spanning the loss", <-run2, calls2, a)
	checkSipp(t, "two etcd members down, a run placed during the outage", <-goSipp(t, sipp, calls3, 10, 1000, pbxPort, inside), calls3, a)

	// A member back: changes work again (once etcd has a leader and the
	// units their sessions: retried within a generous bound).
	etcd.StartMember(1)
	etcd.WaitHealthy(1)
	waitUnits(t, dirA, 2)
	if got := unitName(t, mustCLI(t, dirB, "config", "show", "--running")); got != "v2" {
		t.Fatalf("b runs %q after the outage, want v2", got)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		r := palisade(t, dirA, "config", "set", "unit.name", `"v3"`)
		if r.code == 0 {
			if r = palisade(t, dirA, "config", "apply", "--confirm-within", "5m"); r.code == 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("configuration changes after a member returned: exit %d %s\n%s", r.code, r.stderr, testkit.LastLines(a.log.String(), 40))
		}
		time.Sleep(time.Second)
	}
	mustCLI(t, dirB, "config", "confirm")
	if got := unitName(t, mustCLI(t, dirB, "config", "show", "--running")); got != "v3" {
		t.Fatalf("b runs %q after the apply once etcd was back", got)
	}
}

// waitAnswered waits until at least n calls through the unit on dir are
// answered and in progress.
func waitAnswered(t *testing.T, dir string, n int) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		var rows []struct {
			State  string    `json:"state"`
			Answer time.Time `json:"answer"`
		}
		answered := 0
		if json.Unmarshal([]byte(mustCLI(t, dir, "calls", "--active", "--json")), &rows) == nil {
			for _, r := range rows {
				if r.State == "active" && !r.Answer.IsZero() {
					answered++
				}
			}
		}
		if answered >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: fewer than %d answered calls in progress within 90 s", dir, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitUnits waits until the cluster status on dir lists n healthy units.
func waitUnits(t *testing.T, dir string, n int) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		out := palisade(t, dir, "cluster", "status", "--json")
		var st struct {
			Units []struct {
				Healthy bool `json:"healthy"`
			} `json:"units"`
		}
		healthy := 0
		if out.code == 0 && json.Unmarshal([]byte(out.stdout), &st) == nil {
			for _, u := range st.Units {
				if u.Healthy {
					healthy++
				}
			}
		}
		if healthy == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster status on %s does not list %d healthy units within 90 s: %s %s", dir, n, out.stdout, out.stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
