package b2bua

import (
	"context"
	"net/netip"
	"testing"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/palisade-sbc/palisade/internal/config"
)

// TestAdoptedTCPLegReconnects: the trunk leg of a call is on TCP. The unit
// that adopts the call opens one connection to the trunk (Reconnect) from
// its outside address; the caller's BYE reaches the trunk over it (no
// other connection), and the trunk's own BYE of a second call, over a new
// connection the trunk opens to the unit's listener, is matched to that
// call by its dialog and answered 200.
func TestAdoptedTCPLegReconnects(t *testing.T) {
	pbx := newPeerUA(t, "pbx", "127.0.0.1", "udp")
	itsp := newPeerUA(t, "trunk", "127.0.0.3", "tcp")
	tcpTrunk := func(c *config.Config) {
		c.SIP.Listeners = append(c.SIP.Listeners, config.Listener{Interface: "outside", Transport: "tcp"})
		c.Peers[1].Transport = "tcp"
	}
	ka := newFakeKeeper()
	a := newTestUnitWith(t, pbx, itsp, Deps{Keeper: ka, Unit: "a"}, tcpTrunk)
	ctx := ctxT(t)
	var ids []string
	var sessions []*sipgo.DialogClientSession
	var trunkSide []*sipgo.DialogServerSession
	for range 2 {
		sess := ackedCall(t, ctx, pbx, a.inside())
		itsp.Next(sip.ACK)
		sessions = append(sessions, sess)
		trunkSide = append(trunkSide, recv(t, itsp.Sessions, "the trunk's session"))
		ids = append(ids, recv(t, ka.changed, "the confirmed call's record"))
	}
	recs := [][]byte{ka.record(t, ids[0]), ka.record(t, ids[1])}
	in, out, outTCP := a.inside(), a.outside(), a.ListenAddr("outside", "tcp")
	a.Abandon([]string{"inside", "outside"})
	a.Close() // its connection to the trunk goes with it
	accepted := itsp.Accepts.Count()

	b := newTestUnitWith(t, pbx, itsp, Deps{Keeper: newFakeKeeper(), Unit: "b"}, func(c *config.Config) {
		tcpTrunk(c)
		c.SIP.Listeners[0].Port, c.SIP.Listeners[1].Port, c.SIP.Listeners[2].Port = int(in.Port()), int(out.Port()), int(outTCP.Port())
	})
	for _, rec := range recs {
		if _, err := b.Adopt(rec); err != nil {
			t.Fatal(err)
		}
	}
	rs := b.Reconnect(ctx, ids)
	if len(rs) != 1 || rs[0].Err != "" || rs[0].Legs != 2 || rs[0].Transport != "tcp" || rs[0].Target != itsp.Addr.String() || rs[0].Peer != "itsp" {
		t.Fatalf("Reconnect = %+v, want one connection to the trunk for both legs", rs)
	}
	if n := itsp.Accepts.Count(); n != accepted+1 {
		t.Fatalf("the trunk accepted %d connections after the adoption, want 1", n-accepted)
	}
	if err := sessions[0].Bye(ctx); err != nil {
		t.Fatalf("the caller's BYE after the adoption: %v", err)
	}
	if bye := itsp.Next(sip.BYE); bye.Source() == "" || bye.CallID() == nil {
		t.Fatal("no BYE at the trunk")
	}
	if n := itsp.Accepts.Count(); n != accepted+1 {
		t.Fatalf("the BYE came over another connection (%d accepted)", n-accepted)
	}
	if err := trunkSide[1].Bye(ctx); err != nil {
		t.Fatalf("the trunk's BYE after the adoption: %v", err)
	}
	pbx.Next(sip.BYE)
	waitNoCalls(t, b.Service)
}

// ackedCall places a call from pbx to dst, waits for the answer and
// ACKs it.
func ackedCall(t *testing.T, ctx context.Context, pbx *peerUA, dst netip.AddrPort) *sipgo.DialogClientSession {
	t.Helper()
	sess, err := pbx.Call(ctx, dst, "4930123456", testSDP("127.0.0.1", 7000))
	if err != nil {
		t.Fatal(err)
	}
	confirm(t, ctx, sess)
	return sess
}
