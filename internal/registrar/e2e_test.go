package registrar

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/sip/b2bua"
	"github.com/palisade-sbc/palisade/internal/sip/digest"
	"github.com/palisade-sbc/palisade/internal/store"
	"github.com/palisade-sbc/palisade/internal/testkit/siptest"
)

// unitConfig is testConfig with an inside (127.0.0.1) and an outside
// (127.0.0.2) interface, each with a UDP listener on a free port.
func unitConfig() *config.Config {
	cfg := testConfig()
	cfg.Network.Interfaces = []config.Interface{{Name: "inside", Address: "127.0.0.1"}, {Name: "outside", Address: "127.0.0.2"}}
	cfg.SIP.Listeners = []config.Listener{{Interface: "inside", Transport: "udp"}, {Interface: "outside", Transport: "udp"}}
	cfg.Network.DNSServers = []string{"127.0.0.1:9"}
	return cfg
}

// startUnit runs a registrar and a B2BUA that uses it, on cfg.
func startUnit(t *testing.T, ctx context.Context, cfg *config.Config) (*Registrar, *b2bua.Service) {
	t.Helper()
	return startUnitOn(t, ctx, store.NewMemory(), "", cfg)
}

// startUnitOn is startUnit with the bindings in st, as unit of a cluster
// when unit is not "".
func startUnitOn(t *testing.T, ctx context.Context, st store.Store, name string, cfg *config.Config) (*Registrar, *b2bua.Service) {
	t.Helper()
	r := New(st, nil, nil)
	if name != "" {
		r.SetCluster(name)
	}
	t.Cleanup(func() { r.Close() })
	unit := b2bua.New(b2bua.Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registrar: r})
	t.Cleanup(func() { unit.Close() })
	if err := r.Apply(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if err := unit.Apply(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	return r, unit
}

// TestCallToRegisteredPhone: a phone registers through the unit, and a
// call from the trunk for its user reaches it through the B2BUA by the
// registrar routing step.
func TestCallToRegisteredPhone(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, unit := startUnit(t, ctx, unitConfig())

	ph := siptest.NewPeer(t, "alice", "127.0.0.1", "udp")
	p := &phone{t: t, cli: ph.Cli, srv: unit.ListenAddr("inside", "udp").String(), user: "alice", pw: "wonderland",
		domain: "example.com", port: int(ph.Addr.Port()), callID: "e2e-register-alice", cseq: 1, auth: digest.NewClient()}
	if res := p.register([]string{p.contact("")}, "60"); res.StatusCode != 200 {
		t.Fatalf("REGISTER: %d", res.StatusCode)
	}
	if regs := r.Registrations(); len(regs) != 1 || regs[0].Interface != "inside" || regs[0].Source != ph.Addr.String() ||
		regs[0].Transport != "udp" {
		t.Fatalf("binding made through the unit: %+v", regs)
	}

	// The trunk calls alice at the unit's outside address.
	tr := siptest.NewPeer(t, "trunk", "127.0.0.3", "udp")
	dc := sipgo.NewDialogClientCache(tr.Cli, sip.ContactHeader{Address: sip.Uri{Scheme: "sip", Host: "127.0.0.3", Port: int(tr.Addr.Port())}})
	out := unit.ListenAddr("outside", "udp")
	sess, err := dc.Invite(ctx, sip.Uri{Scheme: "sip", User: "alice", Host: out.Addr().String(), Port: int(out.Port())},
		siptest.SDP("127.0.0.3", 6000), sip.NewHeader("Content-Type", "application/sdp"))
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		t.Fatalf("call to the registered phone: %v", err)
	}
	if err := sess.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	if req := ph.Next(sip.INVITE); req.Recipient.User != "alice" || req.Recipient.Port != int(ph.Addr.Port()) ||
		req.Source() != unit.ListenAddr("inside", "udp").String() {
		t.Fatalf("INVITE at the phone: %s from %s", req.Recipient.String(), req.Source())
	}
	if err := sess.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	ph.Next(sip.BYE)
}
