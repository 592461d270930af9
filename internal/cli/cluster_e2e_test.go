package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/cluster"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/testkit"
	"github.com/palisade-sbc/palisade/internal/testkit/etcdtest"
)

// clusterConfigFile is testConfigFile with a units section: every unit of
// names gets SIP listeners and a media range of its own, so that several
// units run side by side on loopback.
func clusterConfigFile(t *testing.T, names ...string) string {
	t.Helper()
	cfg := decodedTestConfig(t)
	cfg.Units = map[string]config.UnitSettings{}
	for i, n := range names {
		var ls []config.Listener
		both := testkit.FreeBoth(t, "127.0.0.1")
		for _, l := range cfg.SIP.Listeners {
			switch {
			case l.Interface == "outside":
				l.Port = testkit.FreePort(t, "tcp", "127.0.0.2")
			default:
				l.Port = both
			}
			ls = append(ls, l)
		}
		cfg.Units[n] = config.UnitSettings{Name: "edge-" + n, Listeners: ls,
			MediaPortMin: cfg.Media.PortMin + 100*(i+1), MediaPortMax: cfg.Media.PortMin + 100*(i+1) + 99}
	}
	out, err := config.Encode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "cluster.json")
	if err := os.WriteFile(p, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// decodedTestConfig is testConfigFile's configuration.
func decodedTestConfig(t *testing.T) *config.Config {
	t.Helper()
	b, err := os.ReadFile(testConfigFile(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// waitRunning polls `config show --running` on dir until unit.name is want.
func waitRunning(t *testing.T, dir, want string, logs ...*unitProc) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		r := palisade(t, dir, "config", "show", "--running")
		if r.code == 0 && unitName(t, r.stdout) == want {
			return
		}
		if time.Now().After(deadline) {
			var l strings.Builder
			for _, u := range logs {
				l.WriteString(testkit.LastLines(u.log.String(), 40) + "\n---\n")
			}
			t.Fatalf("%s does not run %q within 90 s (%s)\n%s", dir, want, r.stdout+r.stderr, l.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestClusterApplyAcrossUnits: two `palisade run` units on a real
// three-member etcd: apply through a runs on b when it returns, confirm
// through b saves it for both; an apply left unconfirmed reverts on b
// after a, which held the confirmation timer, was killed with SIGKILL
// inside the window.
func TestClusterApplyAcrossUnits(t *testing.T) {
	etcd := etcdtest.Start(t, 3)
	store := etcd.URL(fmt.Sprintf("e2e-%d", os.Getpid()))
	initial := clusterConfigFile(t, "a", "b")
	dirA := filepath.Join(t.TempDir(), "a")
	dirB := filepath.Join(t.TempDir(), "b")
	a := startUnit(t, dirA, initial, "--store", store, "--unit", "a")
	b := startUnit(t, dirB, initial, "--store", store, "--unit", "b")
	if !strings.Contains(a.log.String(), "elected") {
		// a started first; give the election its moment before relying on it.
		deadline := time.Now().Add(60 * time.Second)
		for !strings.Contains(a.log.String(), "elected") && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if _, err := os.Stat(filepath.Join(dirB, PasswordFile)); err == nil {
		t.Fatal("b wrote an admin password of its own: it should have joined a's configuration")
	}

	// Both units, the elected one and the etcd members show in the status.
	var st cluster.Status
	for deadline := time.Now().Add(60 * time.Second); ; {
		if err := json.Unmarshal([]byte(mustCLI(t, dirB, "cluster", "status", "--json")), &st); err != nil {
			t.Fatal(err)
		}
		if len(st.Units) == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !st.Clustered || st.Unit != "b" || len(st.Units) != 2 || st.Units[0].Unit != "a" || !st.Units[0].Healthy ||
		st.Leader != "a" || len(st.Etcd) != 3 || st.Error != "" {
		t.Fatalf("cluster status on b: %+v", st)
	}
	for _, m := range st.Etcd {
		if !m.Healthy {
			t.Fatalf("etcd member %s not healthy: %+v", m.Name, m)
		}
	}
	if out := mustCLI(t, dirB, "status"); !strings.Contains(out, "confirmation timer: a") || !strings.Contains(out, "ETCD MEMBER") {
		t.Fatalf("palisade status on b lacks the cluster:\n%s", out)
	}

	timedApply(t, dirA, "v2", "two units")
	// The apply returned: every unit reported, so b runs it now.
	if got := unitName(t, mustCLI(t, dirB, "config", "show", "--running")); got != "v2" {
		t.Fatalf("b runs %q right after the apply through a returned", got)
	}
	if out := mustCLI(t, dirB, "config", "confirm"); !strings.Contains(out, "version 2") {
		t.Fatalf("confirm through b: %q", out)
	}
	if got := unitName(t, mustCLI(t, dirA, "config", "show", "--saved")); got != "v2" {
		t.Fatalf("a's saved configuration after b confirmed: %q", got)
	}

	mustCLI(t, dirA, "config", "set", "unit.name", `"v3"`)
	mustCLI(t, dirA, "config", "apply", "--confirm-within", "4s")
	if got := unitName(t, mustCLI(t, dirB, "config", "show", "--running")); got != "v3" {
		t.Fatalf("b runs %q after the second apply", got)
	}
	if err := a.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-a.Done()
	waitRunning(t, dirB, "v2", b)
	waitNotPending(t, dirB)
	if !strings.Contains(b.log.String(), "confirmation window ran out") {
		t.Fatalf("b's log does not say it reverted the unconfirmed apply:\n%s", testkit.LastLines(b.log.String(), 40))
	}
}

// TestClusterInitJoinLeave: a standalone unit becomes the first unit of a
// cluster with its configuration, a fresh unit joins it, and the first
// leaves again keeping the cluster's configuration.
func TestClusterInitJoinLeave(t *testing.T) {
	etcd := etcdtest.Start(t, 3)
	url := etcd.URL(fmt.Sprintf("initjoin-%d", os.Getpid()))
	initial := clusterConfigFile(t, "c", "d")
	dirC := filepath.Join(t.TempDir(), "c")
	c := startUnit(t, dirC, initial)
	mustCLI(t, dirC, "config", "set", "unit.name", `"standalone-c"`)
	mustCLI(t, dirC, "config", "apply")
	mustCLI(t, dirC, "config", "confirm")
	if r := palisade(t, dirC, "cluster", "init", "--store", url, "--unit", "c"); r.code == 0 ||
		!strings.Contains(r.stderr, "stop it first") {
		t.Fatalf("cluster init on a running unit: exit %d %s", r.code, r.stderr)
	}
	c.stop(t)
	mustCLI(t, dirC, "cluster", "init", "--store", url, "--unit", "c")
	if r := palisade(t, dirC, "cluster", "init", "--store", url, "--unit", "c"); r.code == 0 ||
		!strings.Contains(r.stderr, "already has a configuration") {
		t.Fatalf("second cluster init: exit %d %s", r.code, r.stderr)
	}
	c = startUnit(t, dirC, initial) // no --store: DATA/cluster.json
	dirD := filepath.Join(t.TempDir(), "d")
	os.MkdirAll(dirD, 0o700)
	mustCLI(t, dirD, "cluster", "join", "--store", url, "--unit", "d")
	startUnit(t, dirD, initial)
	if got := unitName(t, mustCLI(t, dirD, "config", "show", "--running")); got != "standalone-c" {
		t.Fatalf("the joined unit runs %q, want the first unit's configuration", got)
	}
	mustCLI(t, dirD, "config", "set", "unit.name", `"cluster-v2"`)
	mustCLI(t, dirD, "config", "apply")
	mustCLI(t, dirD, "config", "confirm")
	c.stop(t)
	// A stopped cluster unit's data directory edits the cluster's
	// configuration, not its old local copy.
	if got := unitName(t, mustCLI(t, dirC, "config", "show", "--preliminary")); got != "cluster-v2" {
		t.Fatalf("stopped cluster unit c shows preliminary %q, want the cluster's cluster-v2", got)
	}
	mustCLI(t, dirC, "cluster", "leave")
	if _, err := os.Stat(filepath.Join(dirC, ClusterFile)); err == nil {
		t.Fatal("cluster.json still there after leave")
	}
	startUnit(t, dirC, initial)
	if got := unitName(t, mustCLI(t, dirC, "config", "show", "--running")); got != "cluster-v2" {
		t.Fatalf("after leaving, c runs %q, want the cluster's cluster-v2", got)
	}
	if out := mustCLI(t, dirC, "cluster", "status"); !strings.Contains(out, "single unit") {
		t.Fatalf("cluster status after leave: %s", out)
	}
}
