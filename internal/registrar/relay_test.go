package registrar

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/routing"
	"github.com/palisade-sbc/palisade/internal/sip/b2bua"
	"github.com/palisade-sbc/palisade/internal/sip/digest"
	"github.com/palisade-sbc/palisade/internal/store"
	"github.com/palisade-sbc/palisade/internal/testkit"
	"github.com/palisade-sbc/palisade/internal/testkit/etcdtest"
	"github.com/palisade-sbc/palisade/internal/testkit/siptest"
)

// clusterUnitConfig is unitConfig with a units section: each unit of
// names gets inside UDP and TCP listeners on one free port of 127.0.0.1
// and an outside UDP listener on 127.0.0.2.
func clusterUnitConfig(t *testing.T, names ...string) *config.Config {
	cfg := unitConfig()
	cfg.Units = map[string]config.UnitSettings{}
	for _, n := range names {
		in := testkit.FreeBoth(t, "127.0.0.1")
		cfg.Units[n] = config.UnitSettings{Name: "edge-" + n, Listeners: []config.Listener{
			{Interface: "inside", Transport: "udp", Port: in}, {Interface: "inside", Transport: "tcp", Port: in},
			{Interface: "outside", Transport: "udp", Port: testkit.FreePort(t, "udp", "127.0.0.2")}}}
	}
	return cfg
}

// startClusterUnit runs unit name's registrar (on its own etcd client) and
// a B2BUA using it, on cfg as that unit runs it.
func startClusterUnit(t *testing.T, c *etcdtest.Cluster, ns, name string, cfg *config.Config) (*Registrar, *b2bua.Service) {
	t.Helper()
	ctx := context.Background()
	et, err := store.OpenEtcd(ctx, store.EtcdOptions{Endpoints: c.Endpoints(), Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { et.Close() })
	ucfg, err := cfg.ForUnit(name)
	if err != nil {
		t.Fatal(err)
	}
	return startUnitOn(t, ctx, et, name, ucfg)
}

// TestClusterCallThroughFlowUnit: a phone registers over TCP through unit
// a; a call from the trunk arrives at unit b, which relays it to a, and a
// sends it over the phone's own connection (the phone never accepts a
// connection). A forged flow token gets 403 from a; a token for a binding
// a does not hold gets 480.
func TestClusterCallThroughFlowUnit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	c := etcdtest.Start(t, 3)
	ns := fmt.Sprintf("relay-%d/", os.Getpid())
	cfg := clusterUnitConfig(t, "a", "b")
	ra, unitA := startClusterUnit(t, c, ns, "a", cfg)
	rb, unitB := startClusterUnit(t, c, ns, "b", cfg)

	ph := siptest.NewPeer(t, "alice", "127.0.0.1", "tcp")
	p := &phone{t: t, cli: ph.Cli, srv: unitA.ListenAddr("inside", "tcp").String(), user: "alice", pw: "wonderland",
		domain: "example.com", port: int(ph.Addr.Port()), callID: "relay-register-alice", cseq: 1,
		auth: digest.NewClient(), transport: "tcp"}
	if res := p.register([]string{fmt.Sprintf("<sip:alice@127.0.0.1:%d;transport=tcp>", ph.Addr.Port())}, "60"); res.StatusCode != 200 {
		t.Fatalf("REGISTER over TCP through a: %d %s", res.StatusCode, res.Reason)
	}
	if regs := ra.Registrations(); len(regs) != 1 || regs[0].Transport != "tcp" {
		t.Fatalf("binding at a: %+v", regs)
	}
	var hops []routing.Hop
	for deadline := time.Now().Add(60 * time.Second); len(hops) == 0; time.Sleep(20 * time.Millisecond) {
		if hops = rb.Lookup("alice", "example.com"); len(hops) == 0 && time.Now().After(deadline) {
			t.Fatal("b does not see alice's binding within 60 s")
		}
	}
	relayA := unitA.ListenAddr("inside", "tcp")
	if h := hops[0]; h.Host != relayA.Addr().String() || h.Port != int(relayA.Port()) || h.Transport != "tcp" ||
		h.Headers[routing.FlowHeader] == "" {
		t.Fatalf("b's hop for alice: %+v, want a's inside TCP listener %s with a flow token", h, relayA)
	}

	tr := siptest.NewPeer(t, "trunk", "127.0.0.3", "udp")
	dc := sipgo.NewDialogClientCache(tr.Cli, sip.ContactHeader{Address: sip.Uri{Scheme: "sip", Host: "127.0.0.3", Port: int(tr.Addr.Port())}})
	out := unitB.ListenAddr("outside", "udp")
	sess, err := dc.Invite(ctx, sip.Uri{Scheme: "sip", User: "alice", Host: out.Addr().String(), Port: int(out.Port())},
		siptest.SDP("127.0.0.3", 6000), sip.NewHeader("Content-Type", "application/sdp"))
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		t.Fatalf("call through b to the phone registered through a: %v", err)
	}
	if err := sess.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	inv := ph.Next(sip.INVITE)
	if inv.Transport() != "TCP" || ph.Accepts.Count() != 0 {
		t.Fatalf("INVITE at the phone over %s, %d connection(s) accepted: want over its own TCP connection", inv.Transport(), ph.Accepts.Count())
	}
	if inv.GetHeader(routing.FlowHeader) != nil {
		t.Fatalf("the flow token left the cluster:\n%s", inv)
	}
	if err := sess.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	ph.Next(sip.BYE)

	// Tokens: one signed with another secret, and a real one for a
	// contact a does not hold.
	if _, err := ra.FlowHops(flowToken(make([]byte, 32), "alice@example.com", "sip:x")); err != ErrBadFlowToken {
		t.Fatalf("forged token: %v", err)
	}
	if _, err := ra.FlowHops(flowToken(*ra.flowKey.Load(), "alice@example.com", "sip:alice@192.0.2.1")); err == nil {
		t.Fatal("token for a binding a does not hold was accepted")
	}
	forged := sip.NewHeader(routing.FlowHeader, flowToken(make([]byte, 32), "alice@example.com", "sip:x"))
	inA := unitA.ListenAddr("inside", "udp")
	sess, err = dc.Invite(ctx, sip.Uri{Scheme: "sip", User: "alice", Host: inA.Addr().String(), Port: int(inA.Port())},
		siptest.SDP("127.0.0.3", 6002), sip.NewHeader("Content-Type", "application/sdp"), forged)
	if err != nil {
		t.Fatal(err)
	}
	var de *sipgo.ErrDialogResponse
	if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{}); !errors.As(err, &de) || de.Res.StatusCode != 403 {
		t.Fatalf("INVITE with a forged flow token at a: %v, want 403", err)
	}
}

// TestFlowTokenBadInput: damaged tokens are refused, never accepted or
// crashing.
func TestFlowTokenBadInput(t *testing.T) {
	key := make([]byte, 32)
	good := flowToken(key, "alice@example.com", "sip:alice@127.0.0.1:5070")
	if aor, c, ok := parseFlowToken(key, good); !ok || aor != "alice@example.com" || c != "sip:alice@127.0.0.1:5070" {
		t.Fatalf("good token: %q %q %v", aor, c, ok)
	}
	for _, tok := range []string{"", ".", "..", "...", "a.b.c", good + ".x", good[:len(good)-2],
		strings.Replace(good, ".", "", 1), "!!.!!.!!", strings.Repeat("A", 5000) + "." + good} {
		if _, _, ok := parseFlowToken(key, tok); ok {
			t.Errorf("token %q accepted", tok)
		}
	}
}
