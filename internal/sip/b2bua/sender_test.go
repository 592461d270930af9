package b2bua

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/sip/accounts"
)

var _ accounts.Sender = (*Service)(nil)

// trunkRegistrar challenges a REGISTER without Authorization (SHA-256) and
// accepts the others; every REGISTER goes to regs.
func trunkRegistrar(regs chan<- *sip.Request) func(req *sip.Request, tx sip.ServerTransaction) {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		select {
		case regs <- req:
		default:
		}
		if req.GetHeader("Authorization") == nil {
			res := sip.NewResponseFromRequest(req, 401, "Unauthorized", nil)
			res.AppendHeader(sip.NewHeader("WWW-Authenticate", `Digest realm="trunk.example", nonce="reg-n0nce", algorithm=SHA-256, qop="auth"`))
			_ = tx.Respond(res)
			return
		}
		res := sip.NewResponseFromRequest(req, 200, "OK", nil)
		res.AppendHeader(req.Contact())
		res.AppendHeader(sip.NewHeader("Expires", "300"))
		_ = tx.Respond(res)
	}
}

// TestTrunkRegistrationThroughService runs the registration client on the
// real SIP service: the trunk challenges the REGISTER and gets it again,
// authorized, from the unit's outside interface.
func TestTrunkRegistrationThroughService(t *testing.T) {
	pbx := newPeerUA(t, "pbx", "127.0.0.1", "udp")
	regs := make(chan *sip.Request, 10)
	itsp := newPeerUAWith(t, "trunk", "127.0.0.3", "udp", func(p *peerUA) { p.Srv.OnRegister(trunkRegistrar(regs)) })
	u := newTestUnit(t, pbx, itsp, func(c *config.Config) {
		withTrunkAuth(c)
		for i := range c.Peers {
			if c.Peers[i].Name == "itsp" {
				c.Peers[i].Auth.Register = true
			}
		}
	})
	acc := accounts.New(u.Service, testLogger())
	if err := acc.Apply(context.Background(), u.cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { acc.Close() })

	next := func() *sip.Request {
		select {
		case r := <-regs:
			return r
		case <-time.After(10 * time.Second):
			t.Fatal("no REGISTER reached the trunk")
			return nil
		}
	}
	first, second := next(), next()
	if first.GetHeader("Authorization") != nil {
		t.Fatal("first REGISTER already authorized")
	}
	authz := second.GetHeader("Authorization")
	if authz == nil {
		t.Fatal("second REGISTER without Authorization")
	}
	p := verifyDigest(t, "SHA-256", "REGISTER", "s3cret", authz.Value())
	if p["username"] != "palisade" || p["realm"] != "trunk.example" {
		t.Fatalf("credentials %v", p)
	}
	out := u.outside()
	if src := second.Source(); !strings.HasPrefix(src, out.Addr().String()+":") {
		t.Fatalf("REGISTER came from %s, want the outside interface %s", src, out)
	}
	ct := second.Contact()
	if ct == nil || ct.Address.Host != out.Addr().String() || ct.Address.Port != int(out.Port()) || ct.Address.User != "palisade" {
		t.Fatalf("Contact %v, want palisade@%s", ct, out)
	}
	if v := second.Via(); v == nil || v.Host != out.Addr().String() {
		t.Fatalf("Via %v", v)
	}
}
