package b2bua

import (
	"regexp"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/media"
)

// anchorMedia stands in for the media engine: it rewrites the addresses in
// SDP to the unit's address on the leg the SDP is sent on, as anchoring does.
type anchorMedia struct{}

type anchorCall struct{ legs [2]media.Leg }

func (anchorMedia) NewCall(_ string, a, b media.Leg) (media.Call, error) {
	return &anchorCall{legs: [2]media.Leg{a, b}}, nil
}

var ip4 = regexp.MustCompile(`IN IP4 [0-9.]+`)

func (c *anchorCall) rewrite(from media.Side, sdp []byte) ([]byte, error) {
	return ip4.ReplaceAll(sdp, []byte("IN IP4 "+c.legs[from.Other()].Advertised.String())), nil
}
func (c *anchorCall) Offer(from media.Side, sdp []byte) ([]byte, error)  { return c.rewrite(from, sdp) }
func (c *anchorCall) Answer(from media.Side, sdp []byte) ([]byte, error) { return c.rewrite(from, sdp) }
func (c *anchorCall) OnInactive(func())                                  {}
func (c *anchorCall) Stats() media.CallStats                             { return media.CallStats{} }
func (c *anchorCall) Close()                                             {}

func TestTopologyHiding(t *testing.T) {
	pbx := newPeerUA(t, "InsidePBX-9000", "127.0.0.1", "udp")
	itsp := newPeerUA(t, "Trunk-Vendor-7", "127.0.0.3", "udp")
	u := newTestUnitWith(t, pbx, itsp, Deps{Media: anchorMedia{}}, func(c *config.Config) {
		c.Network.Interfaces[1].FQDN = "sbc.example.net"
	})
	ctx := ctxT(t)
	sess, srv := establish(t, u, pbx, itsp, viaInside(u))
	_ = srv
	// in-dialog traffic both ways, with identity headers naming inside hosts
	info := sip.NewRequest(sip.INFO, sess.InviteResponse.Contact().Address)
	info.AppendHeader(sip.NewHeader("P-Asserted-Identity", "<sip:100@127.0.0.1:"+itoa(int(pbx.Addr.Port()))+">"))
	info.AppendHeader(sip.NewHeader("Record-Route", "<sip:pbx-proxy.inside.lan;lr>"))
	if _, err := sess.Do(ctx, info); err != nil {
		t.Fatal(err)
	}
	re := sip.NewRequest(sip.INVITE, sess.InviteResponse.Contact().Address)
	re.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	re.SetBody(testSDP("127.0.0.1", 7100))
	if _, err := sess.Do(ctx, re); err != nil {
		t.Fatal(err)
	}
	_ = sess.WriteRequest(sip.NewRequest(sip.ACK, sess.InviteResponse.Contact().Address))
	itsp.Next(sip.ACK)
	up := sip.NewRequest(sip.UPDATE, srv.InviteRequest.Contact().Address)
	up.AppendHeader(sip.NewHeader("User-Agent", "Trunk-Vendor-7"))
	up.SetDestination(u.outside().String()) // the test has no DNS for the FQDN
	if _, err := srv.Do(ctx, up); err != nil {
		t.Fatal(err)
	}
	hangUp(t, ctx, sess, nil, u)

	if ua := sess.InviteRequest.GetHeader("User-Agent"); ua == nil || ua.Value() != "InsidePBX-9000" {
		t.Fatalf("the test PBX should send a User-Agent, got %v", ua)
	}
	insideSecrets := []string{"127.0.0.1", ":" + itoa(int(pbx.Addr.Port())), ":" + itoa(int(u.inside().Port())),
		sess.InviteRequest.CallID().Value(), "User-Agent: InsidePBX-9000", "pbx-proxy.inside.lan"}
	outsideMsgs := itsp.Wire.All()
	if len(outsideMsgs) < 6 {
		t.Fatalf("only %d messages recorded outside", len(outsideMsgs))
	}
	for _, m := range outsideMsgs {
		for _, s := range insideSecrets {
			if strings.Contains(m, s) {
				t.Errorf("outside message shows %q:\n%s", s, m)
			}
		}
		if strings.HasPrefix(m, "INVITE ") && !strings.Contains(m, "Contact: <sip:sbc.example.net:") {
			t.Errorf("outside INVITE without the FQDN in Contact:\n%s", m)
		}
	}
	outsideSecrets := []string{"127.0.0.3", ":" + itoa(int(itsp.Addr.Port())), srv.InviteRequest.CallID().Value(), "User-Agent: Trunk-Vendor-7"}
	for _, m := range pbx.Wire.All() {
		for _, s := range outsideSecrets {
			if strings.Contains(m, s) {
				t.Errorf("inside message shows %q:\n%s", s, m)
			}
		}
	}
}

// TestTopologyHidingOff: with sip.topology_hiding false, equipment headers
// (User-Agent) pass; each leg still has its own Call-ID.
func TestTopologyHidingOff(t *testing.T) {
	pbx := newPeerUA(t, "InsidePBX-9000", "127.0.0.1", "udp")
	itsp := newPeerUA(t, "trunk", "127.0.0.3", "udp")
	u := newTestUnit(t, pbx, itsp, func(c *config.Config) { c.SIP.TopologyHiding = false })
	sess, srv := establish(t, u, pbx, itsp, viaInside(u))
	if ua := srv.InviteRequest.GetHeader("User-Agent"); ua == nil || ua.Value() != "InsidePBX-9000" {
		t.Fatalf("User-Agent not passed with hiding off: %v", ua)
	}
	if srv.InviteRequest.CallID().Value() == sess.InviteRequest.CallID().Value() {
		t.Fatal("Call-ID crossed")
	}
	_ = sess.Bye(ctxT(t))
	waitNoCalls(t, u.Service)
}
