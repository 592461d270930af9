//go:build linux

package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/testkit"
	"github.com/palisade-sbc/palisade/internal/testkit/etcdtest"
)

// The peers' addresses of the takeover tests: the PBX side (Go caller,
// sipp's caller) and the trunk side (SRTP callee, sipp's callee). On
// loopback by default; in the lab of TestCallsSurviveUnitLossNetns the
// peers namespace's.
var peerIn, peerOut = "127.0.0.1", "127.0.0.3"

// The lab's networks come from the documentation ranges (RFC 5737) and
// exist only inside its namespaces: inside 192.0.2.0/24, outside
// 198.51.100.0/24. Units a and b are .1 and .2 on both, the floating
// addresses .10, the peers .100, the etcd members 192.0.2.200.
const (
	labFloatingIn  = "192.0.2.10"
	labFloatingOut = "198.51.100.10"
	labEtcd        = "192.0.2.200"

	labEnv    = "PALISADE_NETNS_LAB" // the lab (JSON) of the child test
	labBinEnv = "PALISADE_NETNS_BIN" // the palisade binary the parent built
)

// netnsLab names the namespaces of the lab; set in the child from labEnv.
type netnsLab struct {
	Switch string            // the bridges inside and outside
	Units  map[string]string // unit → namespace
	Peers  string
	Etcd   string
}

var haLab *netnsLab

func init() {
	v := os.Getenv(labEnv)
	if v == "" {
		return
	}
	haLab = &netnsLab{}
	if err := json.Unmarshal([]byte(v), haLab); err != nil {
		panic(fmt.Sprintf("%s: %v", labEnv, err))
	}
	peerIn, peerOut = "192.0.2.100", "198.51.100.100"
	binPath = os.Getenv(labBinEnv)
}

// unitNetns is the namespace unit runs in ("" outside the lab).
func (l *netnsLab) unitNetns(unit string) string {
	if l == nil {
		return ""
	}
	return l.Units[unit]
}

// floating is the lab's setting of the takeover test: etcd in its own
// namespace, the floating addresses on the units' eth0 (inside) and eth1
// (outside) with the networks' prefix, configured by the units.
func (l *netnsLab) floating(t *testing.T, opts ...etcdtest.Option) haFloating {
	return haFloating{etcd: etcdtest.StartIn(t, 3, l.Etcd, labEtcd, opts...), inside: labFloatingIn, outside: labFloatingOut,
		pIn: 5060, pOut: 5060, portMin: 30000, floating: []config.Floating{
			{Interface: "inside", Link: "eth0", PrefixLength: 24}, {Interface: "outside", Link: "eth1", PrefixLength: 24}}}
}

// TestCallsSurviveUnitLossNetns is the takeover test in network
// namespaces (docs/ha.md, docs/test-lab.md): a bridge for the inside and
// one for the outside, units a and b, the peers and the etcd members each
// in a namespace, addresses of the documentation ranges only inside them.
// It runs TestCallsSurviveUnitLoss, every load and assertion of it, in a
// child of this test binary in the peers' namespace, the units each in
// its own (`ip netns exec`), adding and announcing the floating addresses
// on their links themselves. Here the test watches the peers' neighbour
// table: the entries of both floating addresses must go from a's MACs to
// b's after the kill (b's gratuitous ARP), and never back; and a's kernel
// must drop the addresses a left when their lifetime ends.
func TestCallsSurviveUnitLossNetns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the test makes network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs the ip command: install Debian package iproute2")
	}
	testkit.NeedBinary(t, "sipp", "sip-tester")
	testkit.NeedBinary(t, "etcd", "etcd-server")
	lab, macs := newNetnsLab(t)
	w := watchLab(t, lab)

	limit := 10 * time.Minute
	if d, ok := t.Deadline(); ok {
		limit = max(time.Until(d)-30*time.Second, time.Minute)
	}
	doc, err := json.Marshal(lab)
	if err != nil {
		t.Fatal(err)
	}
	out := &lineLog{t: t}
	cmd := exec.Command("ip", "netns", "exec", lab.Peers, os.Args[0], "-test.run=^TestCallsSurviveUnitLoss$",
		"-test.v", "-test.count=1", "-test.timeout="+limit.String())
	cmd.Env = append(os.Environ(), labEnv+"="+string(doc), labBinEnv+"="+binPath)
	cmd.Stdout, cmd.Stderr = out, out
	// The child, its units, sipp and etcd are one process group: a
	// failure here ends all of them.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	t.Cleanup(func() {
		if cmd.Process != nil {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	})
	child := testkit.Start(t, cmd, 10*time.Second)
	select {
	case <-child.Done():
	case <-time.After(limit + 10*time.Second):
		t.Fatal("the child test did not end")
	}
	w.stop()
	switch s := out.String(); {
	case strings.Contains(s, "--- SKIP: TestCallsSurviveUnitLoss"):
		t.Skip("the test in the namespaces skipped itself")
	case child.Cmd.ProcessState.ExitCode() != 0 || !strings.Contains(s, "--- PASS: TestCallsSurviveUnitLoss "):
		// What the peers' neighbour table saw is told all the same.
		t.Errorf("TestCallsSurviveUnitLoss failed in the namespaces (exit %d)", child.Cmd.ProcessState.ExitCode())
	}
	if w.died.IsZero() {
		t.Fatal("the test never saw unit a's process die")
	}
	for _, f := range []struct{ addr, link string }{{labFloatingIn, "eth0"}, {labFloatingOut, "eth1"}} {
		seen := w.neigh[f.addr]
		var macsSeen []string
		for _, s := range seen {
			macsSeen = append(macsSeen, s.mac)
		}
		if len(seen) != 2 || seen[0].mac != macs["a/"+f.link] || seen[1].mac != macs["b/"+f.link] {
			t.Errorf("the peers' neighbour entry for %s held %v; want a's %s, then b's %s", f.addr, macsSeen,
				macs["a/"+f.link], macs["b/"+f.link])
			continue
		}
		t.Logf("the peers' neighbour entry for %s pointed at b %v after a's death", f.addr,
			seen[1].at.Sub(w.died).Round(time.Millisecond))
	}
	addrs := ipOut(t, "-n", lab.Units["a"], "-o", "addr", "show")
	if strings.Contains(addrs, " "+labFloatingIn+"/") || strings.Contains(addrs, " "+labFloatingOut+"/") {
		t.Errorf("a's kernel kept the floating addresses after their lifetime:\n%s", addrs)
	}
}

// newNetnsLab makes the namespaces, bridges and links of the lab and
// returns it with the MACs of the units' links ("a/eth0"). Everything goes
// when the test ends: deleting a namespace deletes its links.
func newNetnsLab(t *testing.T) (*netnsLab, map[string]string) {
	pfx := fmt.Sprintf("netns%d-", os.Getpid())
	lab := &netnsLab{Switch: pfx + "sw", Units: map[string]string{"a": pfx + "a", "b": pfx + "b"}, Peers: pfx + "peers", Etcd: pfx + "etcd"}
	addNS := func(ns string) {
		t.Helper()
		if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
			t.Skipf("cannot make a network namespace (ip netns add: %v %s)", err, out)
		}
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		ipOut(t, "-n", ns, "link", "set", "lo", "up")
	}
	addNS(lab.Switch)
	for _, br := range []string{"brin", "brout"} {
		ipOut(t, "-n", lab.Switch, "link", "add", br, "type", "bridge")
		ipOut(t, "-n", lab.Switch, "link", "set", br, "up")
	}
	// plug gives ns a link to the inside (eth0) or outside (eth1) bridge
	// with address addr/24.
	plug := func(ns, tag, link, addr string) {
		t.Helper()
		br, port := "brin", "i-"+tag
		if link == "eth1" {
			br, port = "brout", "o-"+tag
		}
		ipOut(t, "-n", ns, "link", "add", link, "type", "veth", "peer", "name", port, "netns", lab.Switch)
		ipOut(t, "-n", lab.Switch, "link", "set", port, "master", br, "up")
		ipOut(t, "-n", ns, "addr", "add", addr+"/24", "dev", link)
		ipOut(t, "-n", ns, "link", "set", link, "up")
	}
	macs := map[string]string{}
	for i, u := range []string{"a", "b"} {
		ns := lab.Units[u]
		addNS(ns)
		plug(ns, u, "eth0", fmt.Sprintf("192.0.2.%d", i+1))
		plug(ns, u, "eth1", fmt.Sprintf("198.51.100.%d", i+1))
		for _, link := range []string{"eth0", "eth1"} {
			f := strings.Fields(ipOut(t, "-n", ns, "-o", "link", "show", link))
			for j, w := range f {
				if w == "link/ether" && j+1 < len(f) {
					macs[u+"/"+link] = f[j+1]
				}
			}
		}
	}
	addNS(lab.Peers)
	plug(lab.Peers, "p", "eth0", "192.0.2.100")
	plug(lab.Peers, "p", "eth1", "198.51.100.100")
	addNS(lab.Etcd)
	plug(lab.Etcd, "e", "eth0", labEtcd)
	return lab, macs
}

func ipOut(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// labWatch follows, every 10 ms, the peers' neighbour entries of the
// floating addresses (each MAC they held, from when) and unit a's process
// (when it died).
type labWatch struct {
	neigh map[string][]neighSeen // floating address → MACs in turn
	died  time.Time
	done  chan struct{}
	wg    sync.WaitGroup
}

type neighSeen struct {
	mac string
	at  time.Time
}

func watchLab(t *testing.T, lab *netnsLab) *labWatch {
	nh, err := netns.GetFromName(lab.Peers)
	if err != nil {
		t.Fatal(err)
	}
	defer nh.Close()
	h, err := netlink.NewHandleAt(nh)
	if err != nil {
		t.Fatal(err)
	}
	var aNS syscall.Stat_t
	if err := syscall.Stat("/run/netns/"+lab.Units["a"], &aNS); err != nil {
		t.Fatal(err)
	}
	w := &labWatch{neigh: map[string][]neighSeen{}, done: make(chan struct{})}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer h.Close()
		pid := 0
		for i := 0; ; i++ {
			select {
			case <-w.done:
				return
			case <-time.After(10 * time.Millisecond):
			}
			now := time.Now()
			neighs, _ := h.NeighList(0, netlink.FAMILY_V4)
			for _, n := range neighs {
				ip, mac := n.IP.String(), n.HardwareAddr.String()
				if (ip != labFloatingIn && ip != labFloatingOut) || len(n.HardwareAddr) != 6 {
					continue
				}
				if s := w.neigh[ip]; len(s) == 0 || s[len(s)-1].mac != mac {
					w.neigh[ip] = append(s, neighSeen{mac, now})
				}
			}
			switch {
			case pid == 0 && i%10 == 0:
				pid = processIn(aNS.Ino)
			case pid != 0 && w.died.IsZero() && !inNetns(pid, aNS.Ino):
				w.died = now
			}
		}
	}()
	t.Cleanup(w.stop)
	return w
}

// stop ends the watch; its results may be read after it.
func (w *labWatch) stop() {
	select {
	case <-w.done:
	default:
		close(w.done)
	}
	w.wg.Wait()
}

// processIn is a process in the network namespace of inode ino, 0 when
// there is none.
func processIn(ino uint64) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err == nil && inNetns(pid, ino) {
			return pid
		}
	}
	return 0
}

// inNetns reports whether process pid lives in the namespace of inode ino
// (a process that has died, zombie or gone, lives in none).
func inNetns(pid int, ino uint64) bool {
	l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
	return err == nil && l == fmt.Sprintf("net:[%d]", ino)
}

// lineLog passes the child test's output to the test log line by line and
// keeps it.
type lineLog struct {
	t    *testing.T
	mu   sync.Mutex
	part []byte
	all  strings.Builder
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all.Write(p)
	l.part = append(l.part, p...)
	for {
		i := strings.IndexByte(string(l.part), '\n')
		if i < 0 {
			break
		}
		l.t.Log("child: " + string(l.part[:i]))
		l.part = l.part[i+1:]
	}
	return len(p), nil
}

func (l *lineLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all.String()
}
