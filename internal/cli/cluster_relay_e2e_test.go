package cli

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/admin"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/observe"
	"github.com/palisade-sbc/palisade/internal/sip/digest"
	"github.com/palisade-sbc/palisade/internal/testkit"
	"github.com/palisade-sbc/palisade/internal/testkit/etcdtest"
	"github.com/palisade-sbc/palisade/internal/testkit/siptest"
)

// relayUnit is where one unit of relayConfig listens.
type relayUnit struct{ inside, outside netip.AddrPort }

// relayConfig is testConfigFile with the registrar on (alice and bob at
// example.com), calls from unknown sources accepted, and per unit an
// inside UDP+TCP port on 127.0.0.1 and an outside UDP port on 127.0.0.2.
func relayConfig(t *testing.T, names ...string) (*config.Config, map[string]relayUnit) {
	t.Helper()
	cfg := decodedTestConfig(t)
	cfg.Registrar = config.Registrar{Enabled: true, Domains: []string{"example.com"}, MinExpires: 10, MaxExpires: 3600,
		Users: []config.RegistrarUser{{Username: "alice", Password: "wonderland"}, {Username: "bob", Password: "builder"},
			{Username: "carol", Password: "sippsipp"}}}
	cfg.SIP.UnknownSource = "accept"
	cfg.Media.Policies = []config.MediaPolicy{} // the trunk speaks plain RTP
	cfg.Units = map[string]config.UnitSettings{}
	at := map[string]relayUnit{}
	for i, n := range names {
		in, out := testkit.FreeBoth(t, "127.0.0.1"), testkit.FreePort(t, "udp", "127.0.0.2")
		cfg.Units[n] = config.UnitSettings{Name: "edge-" + n, Listeners: []config.Listener{
			{Interface: "inside", Transport: "udp", Port: in}, {Interface: "inside", Transport: "tcp", Port: in},
			{Interface: "outside", Transport: "udp", Port: out}},
			MediaPortMin: cfg.Media.PortMin + 100*(i+1), MediaPortMax: cfg.Media.PortMin + 100*(i+1) + 99}
		at[n] = relayUnit{netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(in)),
			netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), uint16(out))}
	}
	return cfg, at
}

// registerPhone registers ph's user with the unit at srv over transport,
// answering the digest challenge.
func registerPhone(t *testing.T, ph *siptest.Peer, srv netip.AddrPort, transport, pw string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	contact := fmt.Sprintf("<sip:%s@%s>", ph.Name, ph.Addr)
	if transport == "tcp" {
		contact = fmt.Sprintf("<sip:%s@%s;transport=tcp>", ph.Name, ph.Addr)
	}
	build := func(cseq int) *sip.Request {
		raw := fmt.Sprintf("REGISTER sip:example.com SIP/2.0\r\nFrom: <sip:%[1]s@example.com>;tag=r%[1]s\r\nTo: <sip:%[1]s@example.com>\r\n"+
			"Call-ID: reg-%[1]s-%[2]d\r\nCSeq: %[3]d REGISTER\r\nContact: %[4]s\r\nExpires: 300\r\nContent-Length: 0\r\n\r\n",
			ph.Name, os.Getpid(), cseq, contact)
		msg, err := sip.ParseMessage([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		req := msg.(*sip.Request)
		req.SetDestination(srv.String())
		req.SetTransport(strings.ToUpper(transport))
		return req
	}
	res, err := ph.Cli.Do(ctx, build(1))
	if err == nil && res.StatusCode == 401 {
		req := build(2)
		if err := digest.NewClient().Authorize(req, res, digest.Credentials{Username: ph.Name, Password: pw}); err != nil {
			t.Fatal(err)
		}
		res, err = ph.Cli.Do(ctx, req)
	}
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("REGISTER of %s over %s to %s: %v %v", ph.Name, transport, srv, res, err)
	}
}

// TestClusterCallReachesPhoneOfOtherUnit: two `palisade run` units on a
// real three-member etcd. alice registers over UDP and bob over TCP, both
// through unit a; the trunk calls each at unit b, b relays the call to a
// and a sends it to the phone (bob: over the connection he registered on,
// never opening one to him).
func TestClusterCallReachesPhoneOfOtherUnit(t *testing.T) {
	etcd := etcdtest.Start(t, 3)
	store := etcd.URL(fmt.Sprintf("relay-%d", os.Getpid()))
	cfg, at := relayConfig(t, "a", "b")
	initial := writeInitial(t, cfg)
	dirA := filepath.Join(t.TempDir(), "a")
	a := startUnit(t, dirA, initial, "--store", store, "--unit", "a")
	b := startUnit(t, filepath.Join(t.TempDir(), "b"), initial, "--store", store, "--unit", "b")

	alice := siptest.NewPeer(t, "alice", "127.0.0.1", "udp")
	bob := siptest.NewPeer(t, "bob", "127.0.0.1", "tcp")
	registerPhone(t, alice, at["a"].inside, "udp", "wonderland")
	registerPhone(t, bob, at["a"].inside, "tcp", "builder")

	trunk := siptest.NewPeer(t, "trunk", "127.0.0.3", "udp")
	for _, ph := range []*siptest.Peer{alice, bob} {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		sess := callAtB(ctx, t, trunk, at["b"].outside, ph.Name, a, b)
		inv := ph.Next(sip.INVITE)
		if src, _ := netip.ParseAddrPort(inv.Source()); src.Port() != at["a"].inside.Port() && ph == alice {
			t.Fatalf("INVITE at %s came from %s, want unit a's inside listener %s", ph.Name, inv.Source(), at["a"].inside)
		}
		if ph == bob && (inv.Transport() != "TCP" || bob.Accepts.Count() != 0) {
			t.Fatalf("INVITE at bob over %s after %d accepted connection(s): want over his own connection",
				inv.Transport(), bob.Accepts.Count())
		}
		if err := sess.Bye(ctx); err != nil {
			t.Fatal(err)
		}
		ph.Next(sip.BYE)
		cancel()
	}
	sippPhoneCalledAtB(t, at, trunk, a, b)

	// Each call left a record on both units (b: trunk → a, a: b → the
	// phone); listing on a shows both units' records with the unit.
	var cdrs []observe.CDR
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if err := json.Unmarshal([]byte(mustCLI(t, dirA, "cdr", "--json")), &cdrs); err != nil {
			t.Fatal(err)
		}
		n := map[string]int{}
		for _, c := range cdrs {
			n[c.Unit]++
		}
		if n["a"] == 3 && n["b"] == 3 && len(cdrs) == 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("call records listed on a: %d, by unit %v; want 3 of a and 3 of b", len(cdrs), n)
		}
	}
	if out := mustCLI(t, dirA, "calls", "--ended"); !strings.HasPrefix(out, "UNIT") || strings.Count(out, "\nb ") != 3 {
		t.Fatalf("palisade calls on a, want a UNIT column with b's three calls:\n%s", out)
	}
	if out := mustCLI(t, dirA, "cdr"); strings.Count(out, "\na ") != 3 {
		t.Fatalf("palisade cdr on a, want a's three records:\n%s", out)
	}
	// A request signed with another secret is refused, as is one a unit
	// may not make.
	addr, err := os.ReadFile(filepath.Join(dirA, admin.AddrFile))
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for path, want := range map[string]int{"/api/v1/cdr": 401, "/api/v1/config/running": 401} {
		req, _ := http.NewRequest("GET", "https://"+strings.TrimSpace(string(addr))+path, nil)
		req.Header.Set(admin.UnitHeader, fmt.Sprintf("b %d %064x", time.Now().Unix(), 7))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("GET %s with a forged unit signature: %d, want %d", path, resp.StatusCode, want)
		}
	}
}

// callAtB calls user from the trunk at unit b's outside listener and
// returns the answered, acknowledged session. b learns the bindings
// through etcd's watch: a 404 before that is retried.
func callAtB(ctx context.Context, t *testing.T, trunk *siptest.Peer, b netip.AddrPort, user string, ua, ub *unitProc) *sipgo.DialogClientSession {
	t.Helper()
	for {
		s, err := trunk.Call(ctx, b, user, siptest.SDP("127.0.0.3", 6000))
		if err != nil {
			t.Fatal(err)
		}
		err = s.WaitAnswer(ctx, sipgo.AnswerOptions{})
		if err == nil {
			if err := s.Ack(ctx); err != nil {
				t.Fatal(err)
			}
			return s
		}
		if ctx.Err() != nil || !strings.Contains(err.Error(), "404") {
			t.Fatalf("call from the trunk through b to %s: %v\na:\n%s\nb:\n%s", user, err,
				testkit.LastLines(ua.log.String(), 30), testkit.LastLines(ub.log.String(), 30))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// sippPhoneCalledAtB: carol is sipp, a phone nobody here wrote. She
// registers over UDP through unit a (answering the digest challenge), then
// a second sipp on her port answers the call the trunk places at unit b,
// and ends when the trunk hangs up.
func sippPhoneCalledAtB(t *testing.T, at map[string]relayUnit, trunk *siptest.Peer, a, b *unitProc) {
	t.Helper()
	sipp := testkit.NeedBinary(t, "sipp", "sip-tester")
	scen, err := filepath.Abs(filepath.Join("testdata", "sipp_register.xml"))
	if err != nil {
		t.Fatal(err)
	}
	port := fmt.Sprint(testkit.FreePort(t, "udp", "127.0.0.1"))
	// sipp answers MD5 only and gives up on the registrar's first 401,
	// which offers SHA-256 before MD5 (RFC 8760): the registrar sees the
	// same phone ask again without an answer and offers it MD5 only
	// (internal/registrar/algorithms.go), as it does for old phones.
	for try := 1; ; try++ {
		reg := exec.Command(sipp, "-sf", scen, "-i", "127.0.0.1", "-p", port, "-s", "carol", "-au", "carol", "-ap", "sippsipp",
			"-m", "1", "-timeout", "60s", "-nostdin", at["a"].inside.String())
		reg.Dir = t.TempDir()
		out, err := reg.CombinedOutput()
		if err == nil {
			break
		}
		if try == 2 || !strings.Contains(string(out), "must use MD5") {
			t.Fatalf("sipp REGISTER of carol through a (try %d): %v\n%s\na:\n%s", try, err,
				testkit.LastLines(string(out), 40), testkit.LastLines(a.log.String(), 30))
		}
	}
	uas := exec.Command(sipp, "-sn", "uas", "-i", "127.0.0.1", "-p", port, "-m", "1", "-timeout", "120s", "-nostdin")
	uas.Dir = t.TempDir()
	var out testkit.SyncBuffer
	uas.Stdout, uas.Stderr = &out, &out
	phone := testkit.Start(t, uas, 0)
	phone.WaitReady(t, "sipp phone", func() bool {
		c, err := net.ListenPacket("udp", "127.0.0.1:"+port)
		if err == nil {
			c.Close()
		}
		return err != nil
	}, 50*time.Millisecond, 1200, out.String)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sess := callAtB(ctx, t, trunk, at["b"].outside, "carol", a, b)
	if err := sess.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-phone.Done():
		if code := phone.Cmd.ProcessState.ExitCode(); code != 0 {
			t.Fatalf("sipp phone carol exited %d (0: its one call went through)\n%s", code, testkit.LastLines(out.String(), 20))
		}
	case <-ctx.Done():
		t.Fatalf("sipp phone carol did not finish its call\n%s", testkit.LastLines(out.String(), 20))
	}
}
