//go:build linux

package cli

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/testkit"
	"github.com/palisade-sbc/palisade/internal/testkit/etcdtest"
	"github.com/palisade-sbc/palisade/internal/testkit/siptest"
)

// sippRun is a sipp UAC placing a bounded number of calls through a unit.
type sippRun struct {
	name string
	proc *testkit.Proc
	out  *testkit.SyncBuffer
}

// startSippUAC places calls calls at rate per second to dst, each held for
// hold before its BYE, from 127.0.0.1 (dialling service).
func startSippUAC(t *testing.T, name, dst, service string, calls, rate int, hold time.Duration) *sippRun {
	t.Helper()
	sipp := testkit.NeedBinary(t, "sipp", "sip-tester")
	r := &sippRun{name: name, out: &testkit.SyncBuffer{}}
	cmd := exec.Command(sipp, "-sn", "uac", "-i", peerIn, "-p", fmt.Sprint(testkit.FreePort(t, "udp", peerIn)),
		"-s", service, "-m", fmt.Sprint(calls), "-r", fmt.Sprint(rate), "-d", fmt.Sprint(hold.Milliseconds()),
		"-timeout", "120s", "-timeout_error", "-nostdin", "-trace_err", dst)
	cmd.Dir, cmd.Stdout, cmd.Stderr = t.TempDir(), r.out, r.out
	r.proc = testkit.Start(t, cmd, 0)
	return r
}

// startSippUAS answers every call on ip:port until the test ends.
func startSippUAS(t *testing.T, ip string, port int) {
	t.Helper()
	sipp := testkit.NeedBinary(t, "sipp", "sip-tester")
	cmd := exec.Command(sipp, "-sn", "uas", "-i", ip, "-p", fmt.Sprint(port), "-nostdin")
	cmd.Dir = t.TempDir()
	testkit.Start(t, cmd, 0)
}

// wait waits for the UAC to end and fails the test unless every call
// succeeded (sipp exits 0 only then: every INVITE and BYE answered 200).
func (r *sippRun) wait(t *testing.T, limit time.Duration, unitLog func() string) {
	t.Helper()
	select {
	case <-r.proc.Done():
	case <-time.After(limit):
		t.Fatalf("sipp %s still running after %v:\n%s", r.name, limit, testkit.LastLines(r.out.String(), 40))
	}
	if code := r.proc.Cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("sipp %s: exit %d (some calls failed):\n%s\nerrors:\n%s\nunit log:\n%s", r.name, code,
			testkit.LastLines(r.out.String(), 40), sippErrors(r.proc.Cmd.Dir), unitLog())
	}
	t.Logf("sipp %s: every call succeeded", r.name)
}

// sippErrors is the tail of sipp's error trace in dir.
func sippErrors(dir string) string {
	out, _ := exec.Command("sh", "-c", "tail -n 40 "+dir+"/*_errors.log").CombinedOutput()
	return string(out)
}

// recordWrites counts what the units write to etcd under the call
// records' prefix, by watching it: puts, deletes and bytes (keys and
// values), leaving out the keys the test itself puts.
type recordWrites struct {
	mu                  sync.Mutex
	puts, deletes, size int
}

func watchRecords(t *testing.T, cli *clientv3.Client, prefix string, skip ...string) *recordWrites {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	w := &recordWrites{}
	ch := cli.Watch(ctx, prefix, clientv3.WithPrefix())
	go func() {
		for resp := range ch {
			w.mu.Lock()
			for _, ev := range resp.Events {
				if slices.Contains(skip, strings.TrimPrefix(string(ev.Kv.Key), prefix)) {
					continue
				}
				w.size += len(ev.Kv.Key)
				if ev.Type == clientv3.EventTypePut {
					w.puts++
					w.size += len(ev.Kv.Value)
				} else {
					w.deletes++
				}
			}
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *recordWrites) report(t *testing.T, calls int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t.Logf("etcd writes of call records: %d puts, %d deletes, %d bytes for %d calls: %.1f writes and %.0f bytes per call",
		w.puts, w.deletes, w.size, calls, float64(w.puts+w.deletes)/float64(calls), float64(w.size)/float64(calls))
}

// gapSummary prints the median and the largest of the media gaps of one
// direction and fails the test for a gap that means a dropped call
// (media stopped for more than 5 s: the definition).
func gapSummary(t *testing.T, direction string, gaps []time.Duration) {
	t.Helper()
	s := slices.Clone(gaps)
	slices.Sort(s)
	t.Logf("media gap %s over %d calls: median %v, max %v", direction, len(s),
		s[len(s)/2].Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond))
	for i, g := range gaps {
		if g > 5*time.Second {
			t.Errorf("call %d: media %s stopped for %v: the call is dropped", i, direction, g.Round(time.Millisecond))
		}
	}
}

// haPair is the setting of the takeover tests: a real three-member etcd,
// two floating addresses on lo (inside, outside), an SRTP callee and a
// sipp callee on 127.0.0.3, the configuration of units a and b, a Go
// caller and an etcd client.
type haPair struct {
	etcd     *etcdtest.Cluster
	mode     string // ha.mode
	space    string // the namespace in etcd
	storeURL string
	ns       string // the prefix of the call records
	initial  string
	callee   *srtpCallee
	caller   *siptest.Peer
	track    *callerTrack   // the caller's calls, for re-INVITEs towards it
	dst      netip.AddrPort // the inside listener
	cli      *clientv3.Client
}

// newHAPair sets the takeover tests up; with mode "rehome" the units
// have addresses of their own (b's from the same range) and nothing floats.
// opts are those of the etcd cluster.
func newHAPair(t *testing.T, mode string, opts ...etcdtest.Option) *haPair {
	rehome := mode == config.HAModeRehome
	if !rehome && os.Geteuid() != 0 {
		t.Skip("adding the floating addresses to lo needs root")
	}
	if _, err := exec.LookPath("ip"); err != nil && !rehome {
		t.Skip("no ip command:", err)
	}
	testkit.NeedBinary(t, "sipp", "sip-tester")
	var fl haFloating
	if haLab != nil {
		fl = haLab.floating(t, opts...)
	} else {
		fl = loopbackFloating(t, opts...)
	}
	p := &haPair{etcd: fl.etcd, mode: mode}
	p.space = fmt.Sprintf("ha-%d", os.Getpid())
	p.storeURL, p.ns = p.etcd.URL(p.space), p.space+"/kv/ha/calls/"
	inside, outside, pIn := fl.inside, fl.outside, fl.pIn
	p.callee = newSRTPCallee(t)
	sippUAS := testkit.FreePort(t, "udp", peerOut)
	startSippUAS(t, peerOut, sippUAS)
	cfg := config.Default()
	cfg.Network.Interfaces = []config.Interface{{Name: "inside", Address: inside}, {Name: "outside", Address: outside}}
	cfg.SIP.Listeners = []config.Listener{{Interface: "inside", Transport: "udp", Port: pIn},
		{Interface: "outside", Transport: "udp", Port: fl.pOut}}
	cfg.SIP.RestrictedInterfaces = []string{}
	cfg.Media.PortMin = fl.portMin
	cfg.Media.PortMax = cfg.Media.PortMin + 999
	// sipp's callee speaks plain RTP: SRTP where the peer does it outside.
	cfg.Media.Policies = []config.MediaPolicy{{Interface: "outside", Group: "SRTP", Requirement: "either"}}
	cfg.DialPlan.Rules = []config.DialRule{{Name: "callee", Head: "1", Tail: "0-9",
		ForwardTo: []config.Forward{{URI: "sip:1000@" + p.callee.peer.Addr.String()}}},
		{Name: "sipp", Head: "2", Tail: "0-9", ForwardTo: []config.Forward{{URI: fmt.Sprintf("sip:2000@%s:%d", peerOut, sippUAS)}}}}
	cfg.HA = config.HA{Floating: fl.floating, Lease: config.Duration(time.Second), Preference: []string{"a", "b"}}
	cfg.Units = map[string]config.UnitSettings{"a": {Name: "edge-a"}, "b": {Name: "edge-b"}}
	if rehome {
		other := 100 + ((os.Getpid()+30)%60)*2
		cfg.HA.Mode, cfg.HA.Floating = config.HAModeRehome, nil
		cfg.Units["b"] = config.UnitSettings{Name: "edge-b", Interfaces: []config.Interface{
			{Name: "inside", Address: fmt.Sprintf("127.0.0.%d", other)}, {Name: "outside", Address: fmt.Sprintf("127.0.0.%d", other+1)}}}
	}
	p.initial = writeInitial(t, cfg)
	cli, err := clientv3.New(clientv3.Config{Endpoints: p.etcd.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	p.cli = cli
	p.track = &callerTrack{ends: map[string]*rtpEnd{}, contacts: map[string]sip.Uri{}}
	p.caller = siptest.NewPeerWith(t, "caller", peerIn, "udp", p.track.setup(t))
	p.dst = netip.MustParseAddrPort(net.JoinHostPort(inside, strconv.Itoa(pIn)))
	return p
}

// haFloating is where the takeover tests' units serve: the etcd cluster,
// the floating addresses with their SIP ports and the first media port.
type haFloating struct {
	etcd            *etcdtest.Cluster
	inside, outside string
	pIn, pOut       int
	portMin         int
	floating        []config.Floating
}

// loopbackFloating is the fast variant's: two addresses on lo of our own
// (127.0.0.71-72 and .81-88 belong to other tests), from the process id
// so that two runs do not meet.
func loopbackFloating(t *testing.T, opts ...etcdtest.Option) haFloating {
	base := 100 + (os.Getpid()%60)*2
	f := haFloating{etcd: etcdtest.Start(t, 3, opts...), inside: fmt.Sprintf("127.0.0.%d", base), outside: fmt.Sprintf("127.0.0.%d", base+1),
		floating: []config.Floating{{Interface: "inside", Link: "lo"}, {Interface: "outside", Link: "lo"}}}
	t.Cleanup(func() {
		for _, a := range []string{f.inside, f.outside} {
			exec.Command("ip", "addr", "del", a+"/32", "dev", "lo").Run()
		}
	})
	f.pIn, f.pOut = testkit.FreePort(t, "udp", f.inside), testkit.FreePort(t, "udp", f.outside)
	f.portMin = (30000 + testkit.FreePort(t, "udp", f.inside)%20000) &^ 1
	return f
}

// start runs unit name on store; a is started first and waited for until
// it owns the addresses, b until it is in the election (rehome: each until
// it watches the others).
func (p *haPair) start(t *testing.T, dir, store, name string) *unitProc {
	t.Helper()
	u := startUnitIn(t, haLab.unitNetns(name), dir, p.initial, "--store", store, "--unit", name)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("unit %s's log:\n%s", name, testkit.LastLines(u.log.String(), 80))
		}
	})
	want := "ha: floating addresses"
	switch {
	case p.mode == config.HAModeRehome:
		want = "ha: rehome: watching the other units"
	case name == "a":
		want += " taken"
	}
	waitLog(t, u, want, 60*time.Second)
	return u
}

// placeCalls places n Go UA calls and starts their media both ways; the
// first outside stream starts at sequence seq0.
func (p *haPair) placeCalls(t *testing.T, n int, seq0 uint16) []*callerLeg {
	var legs []*callerLeg
	for i := range n {
		l := placeCall(t, p.caller, p.callee, p.dst, i)
		p.track.add(l)
		legs = append(legs, l)
	}
	for i, l := range legs {
		l.start()
		seq := uint16(1000 * i)
		if i == 0 {
			seq = seq0
		}
		l.out.start(seq)
	}
	return legs
}

// mediaBack waits until every call has media both ways after t0.
func mediaBack(t *testing.T, legs []*callerLeg, t0 time.Time, log func() string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for _, l := range legs {
		for !l.in.after(t0) || !l.out.after(t0) {
			if time.Now().After(deadline) {
				t.Fatalf("media did not come back\n%s", log())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// byeAll ends the calls with a BYE from the caller, answered 200: to the
// Contact of the last re-INVITE towards the caller when there was one (a
// rehomed call), else to the dialog's target.
func (p *haPair) byeAll(t *testing.T, legs []*callerLeg, log func() string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i, l := range legs {
		var err error
		if target, ok := p.track.contact(l); ok {
			var res *sip.Response
			if res, err = l.sess.Do(ctx, sip.NewRequest(sip.BYE, target)); err == nil && res.StatusCode != 200 {
				err = fmt.Errorf("answered %d", res.StatusCode)
			}
		} else {
			err = l.sess.Bye(ctx)
		}
		if err != nil {
			t.Fatalf("call %d: BYE: %v\n%s", i, err, log())
		}
		l.stop()
	}
}
