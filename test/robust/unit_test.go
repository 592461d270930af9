// Package robust_test runs black-box robustness and security tests against
// the built palisade binary: torture messages, floods, scanners, slowloris
// and testssl. Every unit runs on loopback addresses 127.0.0.81-89 and free
// ports so that other units on the machine are not disturbed.
package robust_test

import (
	"cmp"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/testkit"
)

// Loopback addresses of the test topology.
const (
	insideIP   = "127.0.0.81" // the unit's inside interface
	outsideIP  = "127.0.0.82" // the unit's outside interface
	pbxIP      = "127.0.0.83" // the PBX peer (calling UA)
	trunkIP    = "127.0.0.84" // the ITSP peer (answering UA)
	tortureIP  = "127.0.0.85" // sender of torture messages
	floodIP    = "127.0.0.86" // flooder
	scannerIP  = "127.0.0.87" // sipvicious
	slowlorisI = "127.0.0.88" // slow clients
)

// binPath is the palisade binary under test: built once by TestMain, or
// ROBUST_BIN (e.g. built from a clean export of a commit).
var binPath = os.Getenv("ROBUST_BIN")

func TestMain(m *testing.M) { testkit.MainWithPalisade(m, &binPath) }

// unit is one running `palisade run`.
type unit struct {
	cmd       *exec.Cmd
	log       *testkit.SyncBuffer
	done      chan struct{}
	dir       string
	cfg       *config.Config
	insideUDP string // host:port
	insideTCP string
	outside   string // UDP
	outTLS    string
	admin     string // HTTPS host:port
	pbx       string // the PBX peer's address (host:port) the UAC binds
	trunk     string // the trunk peer's address the UAS binds
}

func freePort(t *testing.T, network, ip string) int { return testkit.FreePort(t, network, ip) }

// startUnit runs a unit: inside UDP+TCP, outside UDP+TLS, a PBX peer inside
// and a trunk peer outside; mut may change the configuration first.
func startUnit(t *testing.T, mut func(*config.Config)) *unit {
	t.Helper()
	return startUnitWrapped(t, mut)
}

// startUnitWrapped is startUnit with the binary started through a wrapper
// command (e.g. prlimit).
func startUnitWrapped(t *testing.T, mut func(*config.Config), wrapper ...string) *unit {
	t.Helper()
	in := testkit.FreeBoth(t, insideIP)
	u := &unit{log: &testkit.SyncBuffer{}, done: make(chan struct{}), dir: t.TempDir()}
	cfg := config.Default()
	cfg.Network.Interfaces = []config.Interface{{Name: "inside", Address: insideIP}, {Name: "outside", Address: outsideIP}}
	cfg.Network.DNSServers = []string{"127.0.0.1:9"} // nothing answers: names fail fast
	cfg.SIP.Listeners = []config.Listener{
		{Interface: "inside", Transport: "udp", Port: in},
		{Interface: "inside", Transport: "tcp", Port: in},
		{Interface: "outside", Transport: "udp", Port: freePort(t, "udp", outsideIP)},
		{Interface: "outside", Transport: "tls", Port: freePort(t, "tcp", outsideIP), Certificate: "default"},
	}
	u.pbx = fmt.Sprintf("%s:%d", pbxIP, freePort(t, "udp", pbxIP))
	u.trunk = fmt.Sprintf("%s:%d", trunkIP, freePort(t, "udp", trunkIP))
	cfg.Peers = []config.Peer{
		{Name: "pbx", Kind: "pbx", Interface: "inside", Address: u.pbx, Transport: "udp"},
		{Name: "itsp", Kind: "itsp", Interface: "outside", Address: u.trunk, Transport: "udp"},
	}
	cfg.Media.PortMin = (42000 + freePort(t, "udp", insideIP)%10000) &^ 1
	cfg.Media.PortMax = cfg.Media.PortMin + 199
	// Plain RTP on both sides and no inactivity timer: the test UAs send
	// no media; the robustness tests are about signalling.
	cfg.Media.Policies = []config.MediaPolicy{}
	cfg.Media.DefaultPolicy.RTPProfile = "avp"
	cfg.Media.InactivityTimeout = 0
	if mut != nil {
		mut(cfg)
	}
	u.cfg = cfg
	u.insideUDP = net.JoinHostPort(insideIP, strconv.Itoa(cfg.SIP.Listeners[0].Port))
	u.insideTCP = net.JoinHostPort(insideIP, strconv.Itoa(cfg.SIP.Listeners[1].Port))
	u.outside = net.JoinHostPort(outsideIP, strconv.Itoa(cfg.SIP.Listeners[2].Port))
	u.outTLS = net.JoinHostPort(outsideIP, strconv.Itoa(cfg.SIP.Listeners[3].Port))
	b, err := config.Encode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	initial := filepath.Join(t.TempDir(), "initial.json")
	if err := os.WriteFile(initial, b, 0o600); err != nil {
		t.Fatal(err)
	}
	args := append(wrapper, binPath, "run", "--data", u.dir, "--admin-listen", insideIP+":0",
		"--initial-config", initial, "--drain-timeout", "2s", "--log-level", cmp.Or(os.Getenv("ROBUST_LOG_LEVEL"), "info"))
	u.cmd = exec.Command(args[0], args[1:]...)
	u.cmd.Stderr = u.log
	u.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := u.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { u.cmd.Wait(); close(u.done) }()
	t.Cleanup(func() {
		u.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-u.done:
		case <-time.After(10 * time.Second):
			u.cmd.Process.Kill()
			<-u.done
		}
		if t.Failed() {
			t.Logf("unit log (tail):\n%s", tail(u.log.String(), 40))
		}
	})
	// Ready when the admin listener wrote its address and SIP answers.
	for i := 0; ; i++ {
		if a, err := os.ReadFile(filepath.Join(u.dir, "admin.addr")); err == nil && len(a) > 0 {
			u.admin = strings.TrimSpace(string(a))
			if u.optionsOK(t, "udp", u.insideUDP) {
				break
			}
		}
		select {
		case <-u.done:
			t.Fatalf("palisade run exited early:\n%s", u.log)
		case <-time.After(100 * time.Millisecond):
		}
		if i > 600 {
			t.Fatalf("unit not ready after 60 s:\n%s", tail(u.log.String(), 40))
		}
	}
	return u
}

// alive reports whether the unit process is still running.
func (u *unit) alive() bool {
	select {
	case <-u.done:
		return false
	default:
		return true
	}
}

// rssKiB is the unit's resident memory.
func (u *unit) rssKiB(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", u.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

// openFDs is the number of file descriptors the unit holds.
func (u *unit) openFDs(t *testing.T) int {
	t.Helper()
	es, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", u.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

func tail(s string, n int) string { return testkit.LastLines(strings.TrimRight(s, "\n"), n) }
