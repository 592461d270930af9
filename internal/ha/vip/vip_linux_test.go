package vip

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/palisade-sbc/palisade/internal/testkit"
	"github.com/palisade-sbc/palisade/internal/testkit/etcdtest"
)

// The units of the test run as children (this test binary again), so that
// one can be killed with SIGKILL like a real unit. A child lives in the
// root namespace (where etcd listens on loopback) and configures the
// address in its unit's namespace through rtnetlink.
func TestMain(m *testing.M) {
	if os.Getenv("PALISADE_VIP_CHILD") != "" {
		os.Exit(runChild())
	}
	os.Exit(m.Run())
}

const (
	vipAddr = "192.0.2.10" // TEST-NET-1, only inside the test's namespaces
	ttl     = 2 * time.Second
	echo    = 7007
)

func runChild() int {
	env := os.Getenv
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	nl, err := NewNetlink(env("VIP_NS"))
	if err != nil {
		log.Error("netlink", "err", err)
		return 2
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{env("VIP_ETCD")}, DialTimeout: 2 * time.Second})
	if err != nil {
		log.Error("etcd", "err", err)
		return 2
	}
	o, err := New(Config{Client: cli, Prefix: "/test/vip", Unit: env("VIP_UNIT"), Preference: []string{"a", "b"},
		TTL: ttl, Address: Address{Prefix: netip.MustParsePrefix(vipAddr + "/24"), Link: "eth0"},
		Net: nl, Busy: fileBusy(env("VIP_BUSY")), Log: log})
	if err != nil {
		log.Error("config", "err", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := o.Run(ctx); err != nil {
		log.Error("run", "err", err)
		return 1
	}
	return 0
}

// fileBusy is busy while its file exists.
type fileBusy string

func (f fileBusy) Busy() bool {
	_, err := os.Stat(string(f))
	return f != "" && err == nil
}

// lab is the test's network: a bridge in its own namespace, units a and b
// and a peer p each in a namespace with eth0 on the bridge.
type lab struct {
	t    *testing.T
	name map[string]string // unit → namespace
	mac  map[string]string
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func newLab(t *testing.T) *lab {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the test makes network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs the ip command: install Debian package iproute2")
	}
	pfx := fmt.Sprintf("pvip%d", os.Getpid()%100000)
	l := &lab{t: t, name: map[string]string{}, mac: map[string]string{}}
	sw := pfx + "sw"
	run(t, "netns", "add", sw)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", sw).Run() })
	run(t, "-n", sw, "link", "add", "br0", "type", "bridge")
	run(t, "-n", sw, "link", "set", "br0", "up")
	for i, u := range []string{"a", "b", "p"} {
		ns := pfx + u
		l.name[u] = ns
		run(t, "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		run(t, "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "port"+u, "netns", sw)
		run(t, "-n", sw, "link", "set", "port"+u, "master", "br0", "up")
		host := []string{"1", "2", "100"}[i]
		run(t, "-n", ns, "addr", "add", "192.0.2."+host+"/24", "dev", "eth0")
		run(t, "-n", ns, "link", "set", "eth0", "up")
		run(t, "-n", ns, "link", "set", "lo", "up")
		f := strings.Fields(run(t, "-n", ns, "-o", "link", "show", "eth0"))
		for j, w := range f {
			if w == "link/ether" {
				l.mac[u] = f[j+1]
			}
		}
	}
	return l
}

// has reports whether unit u's namespace carries the floating address.
func (l *lab) has(u string) bool {
	out, err := exec.Command("ip", "-n", l.name[u], "-o", "addr", "show", "dev", "eth0").CombinedOutput()
	return err == nil && strings.Contains(string(out), " "+vipAddr+"/")
}

// inNS runs fn on a thread switched into namespace ns (sockets fn opens stay there).
func (l *lab) inNS(u string, fn func()) {
	l.t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		l.t.Fatal(err)
	}
	defer orig.Close()
	h, err := netns.GetFromName(l.name[u])
	if err != nil {
		l.t.Fatal(err)
	}
	defer h.Close()
	if err := netns.Set(h); err != nil {
		l.t.Fatal(err)
	}
	fn()
	if err := netns.Set(orig); err != nil {
		runtime.LockOSThread() // leave the thread to die with the goroutine
		l.t.Fatal(err)
	}
}

// echoServer answers every UDP datagram to port echo in u's namespace with u's name.
func (l *lab) echoServer(u string) {
	var c net.PacketConn
	var err error
	l.inNS(u, func() { c, err = net.ListenPacket("udp4", fmt.Sprintf("0.0.0.0:%d", echo)) })
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 100)
		for {
			_, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			c.WriteTo([]byte(u), from)
		}
	}()
}

// ask sends a datagram from the peer to the floating address and returns
// the name of the unit that answered ("" when none did within a second).
func (l *lab) ask(c net.PacketConn) string {
	to := &net.UDPAddr{IP: net.ParseIP(vipAddr), Port: echo}
	buf := make([]byte, 100)
	c.WriteTo([]byte("who"), to)
	c.SetReadDeadline(time.Now().Add(time.Second))
	n, _, err := c.ReadFrom(buf)
	if err != nil {
		return ""
	}
	return string(buf[:n])
}

// peerNeigh is the MAC address the peer's neighbour table has for the address.
func (l *lab) peerNeigh() string {
	out, _ := exec.Command("ip", "-n", l.name["p"], "neigh", "show", vipAddr).CombinedOutput()
	f := strings.Fields(string(out))
	for i, w := range f {
		if w == "lladdr" && i+1 < len(f) {
			return f[i+1]
		}
	}
	return ""
}

// until polls cond every 20 ms for at most bound (a bound only a failure reaches).
func until(t *testing.T, what string, bound time.Duration, cond func() bool) time.Time {
	t.Helper()
	end := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("gave up after %v waiting for %s", bound, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Now()
}

func (l *lab) unit(t *testing.T, u, etcd, busy string) *testkit.Proc {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PALISADE_VIP_CHILD=1", "VIP_NS="+l.name[u], "VIP_UNIT="+u,
		"VIP_ETCD="+etcd, "VIP_BUSY="+busy)
	logf, err := os.Create(fmt.Sprintf("%s/unit-%s-%d.log", t.TempDir(), u, time.Now().UnixNano()))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	t.Cleanup(func() {
		if t.Failed() || testing.Verbose() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("unit %s log:\n%s", u, testkit.LastLines(string(b), 40))
		}
	})
	return testkit.Start(t, cmd, 5*time.Second)
}

// TestFloatingAddress: unit a (preferred) owns the address; killed with
// SIGKILL, b owns it within the lease + 1 s and the peer reaches b; a back
// while b's address carries calls does not take it; once b is idle, a
// does; a cut off from etcd drops the address within its lease, before b
// takes it.
func TestFloatingAddress(t *testing.T) {
	l := newLab(t)
	ec := etcdtest.Start(t, 1)
	etcd := ec.Endpoints()[0]
	l.echoServer("a")
	l.echoServer("b")
	var peer net.PacketConn
	var err error
	l.inNS("p", func() { peer, err = net.ListenPacket("udp4", "0.0.0.0:0") })
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	busy := t.TempDir() + "/busy"

	pa := etcdtest.NewProxy(t, etcd)
	a := l.unit(t, "a", pa.Addr, "")
	until(t, "a to own the address", 30*time.Second, func() bool { return l.has("a") })
	b := l.unit(t, "b", etcd, busy)
	_ = b
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{etcd}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	until(t, "b to join", 30*time.Second, func() bool {
		r, err := cli.Get(context.Background(), "/test/vip/units/b")
		return err == nil && len(r.Kvs) == 1
	})
	if got := l.ask(peer); got != "a" {
		t.Fatalf("the peer reached %q, want a", got)
	}
	if l.has("b") {
		t.Fatal("b carries the address while a owns it")
	}

	// SIGKILL: a does nothing more; its lease runs out in etcd, and the
	// kernel drops its address when the lifetime a gave it ends.
	a.Stop(0)
	killed := time.Now()
	took := until(t, "b to own the address", 30*time.Second, func() bool { return l.has("b") })
	t.Logf("b owns the address %v after a was killed (lease %v)", took.Sub(killed).Round(10*time.Millisecond), ttl)
	if took.Sub(killed) > ttl+time.Second {
		t.Errorf("takeover took %v, more than the lease + 1 s", took.Sub(killed))
	}
	until(t, "the peer's neighbour entry to point at b (gratuitous ARP)", 10*time.Second,
		func() bool { return l.peerNeigh() == l.mac["b"] })
	if got := l.ask(peer); got != "b" {
		t.Fatalf("after the takeover the peer reached %q, want b", got)
	}
	until(t, "the killed unit's address to expire in its kernel", 10*time.Second, func() bool { return !l.has("a") })

	// a returns while b is busy: no fail-back.
	if err := os.WriteFile(busy, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	pa2 := etcdtest.NewProxy(t, etcd)
	l.unit(t, "a", pa2.Addr, "")
	until(t, "a to rejoin", 30*time.Second, func() bool {
		r, err := cli.Get(context.Background(), "/test/vip/units/a")
		return err == nil && len(r.Kvs) == 1
	})
	for range 3 * int(ttl/(100*time.Millisecond)) {
		if l.has("a") || !l.has("b") {
			t.Fatal("the address moved back to a while b was busy")
		}
		time.Sleep(100 * time.Millisecond)
	}
	os.Remove(busy)
	until(t, "a to own the address once b is idle", 30*time.Second, func() bool { return l.has("a") && !l.has("b") })
	until(t, "the peer to reach a", 10*time.Second, func() bool { return l.ask(peer) == "a" })

	// Partition a from etcd: it must drop the address within its lease,
	// before b can have it.
	var aGone, bHas time.Time
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		end := time.Now().Add(30 * time.Second)
		for time.Now().Before(end) && (aGone.IsZero() || bHas.IsZero()) {
			now := time.Now()
			if aGone.IsZero() && !l.has("a") {
				aGone = now
			}
			if bHas.IsZero() && l.has("b") {
				bHas = now
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	cut := time.Now()
	pa2.Cut()
	wg.Wait()
	if aGone.IsZero() || bHas.IsZero() {
		t.Fatalf("after the partition: a dropped the address: %v, b took it: %v", !aGone.IsZero(), !bHas.IsZero())
	}
	t.Logf("partitioned a dropped the address %v after the cut; b took it %v after the cut",
		aGone.Sub(cut).Round(10*time.Millisecond), bHas.Sub(cut).Round(10*time.Millisecond))
	if aGone.Sub(cut) > ttl {
		t.Errorf("a kept the address %v after the cut, longer than its lease", aGone.Sub(cut))
	}
	if bHas.Before(aGone) {
		t.Errorf("b took the address %v before a dropped it", aGone.Sub(bHas))
	}
	until(t, "the peer to reach b", 10*time.Second, func() bool { return l.ask(peer) == "b" })
}
