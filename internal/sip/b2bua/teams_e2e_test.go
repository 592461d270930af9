package b2bua

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/pki/pkitest"
	"github.com/palisade-sbc/palisade/internal/routing/dnstest"
	"github.com/palisade-sbc/palisade/internal/testkit/teamsfar"
)

// teamsTLS is the unit's TLS for the Teams test: its certificate (public
// CA, serverAuth only, naming the FQDN) as server and as client.
type teamsTLS struct{ cert tls.Certificate }

func (p teamsTLS) ServerConfig(config.Listener) (*tls.Config, error) {
	return &tls.Config{Certificates: []tls.Certificate{p.cert}, MinVersion: tls.VersionTLS12, ClientAuth: tls.RequestClientCert}, nil
}

func (p teamsTLS) ClientConfig(name string) (*tls.Config, error) {
	return &tls.Config{Certificates: []tls.Certificate{p.cert}, InsecureSkipVerify: true, ServerName: name, MinVersion: tls.VersionTLS12}, nil //nolint:gosec // the far end is a test double
}

// TestTeamsDirectRouting runs the unit against the Teams-like far end
// (internal/testkit/teamsfar: mutual TLS, 403 to a Contact that is not the
// SBC's FQDN or a missing X-MS-SBC, 404 to a number without "+", 488 to an
// INVITE without SDP) with the settings of the teams-direct-routing
// profile, the first datacentre down: the keepalive finds the others up,
// calls fail over to the second datacentre, a declined call is sent once,
// a delayed-offer call from the PBX succeeds, and a transfer from Teams
// (REFER with x-m/x-t) reaches the Teams user.
func TestTeamsDirectRouting(t *testing.T) {
	const fqdn = "sbc.example.test"
	root := pkitest.NewRoot(t, "Public Test Root", "Public Test CA")
	roots := x509.NewCertPool()
	roots.AddCert(root.Cert)
	leaf := func(cn string, dns ...string) tls.Certificate {
		key := pkitest.NewKey(t)
		c := root.Issue(t, key.Public(), pkitest.Leaf{CN: cn, DNS: dns, EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		return tls.Certificate{Certificate: [][]byte{c.Raw}, PrivateKey: key, Leaf: c}
	}
	own := leaf(fqdn, fqdn)
	pbx := newPeerUA(t, "pbx", "127.0.0.1", "udp")
	tlsPort := freePort(t, "tcp", "127.0.0.2")
	far, err := teamsfar.Start(teamsfar.Options{SBCFQDN: fqdn, SBCAddr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), uint16(tlsPort)).String(),
		Cert: leaf(teamsfar.Names[0], teamsfar.Names...), Roots: roots,
		Listen: []string{"127.0.0.5:0", "127.0.0.6:0", "127.0.0.7:0"}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(far.Close)
	far.DCs[0].SetDown(teamsfar.Unreachable) // the first datacentre is out
	dns, err := dnstest.Start(far.DNSRecords()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dns.Close)
	far.On("+4930600", teamsfar.Script{Action: teamsfar.Decline})
	u := newTestUnitWith(t, pbx, nil, Deps{TLS: teamsTLS{own}}, func(c *config.Config) {
		c.Network.Interfaces[1].FQDN = fqdn
		c.SIP.Listeners = append(c.SIP.Listeners, config.Listener{Interface: "outside", Transport: "tls", Port: tlsPort})
		c.SIP.InviteTimeout = config.Duration(2 * time.Second)
		// as the profile writes it: the first name overridden to the three
		// names in order, sip2 and sip3 as further targets; the names
		// resolve by DNS
		c.Network.DNSServers = []string{dns.Addr}
		ov := config.DNSOverride{Domain: teamsfar.Names[0]}
		var targets []string
		for i, dc := range far.DCs {
			port := int(netip.MustParseAddrPort(dc.Addr).Port())
			ov.Targets = append(ov.Targets, config.Target{Host: teamsfar.Names[i], Port: port, Transport: "tls", Priority: i + 1, Weight: 1})
			if i > 0 {
				targets = append(targets, teamsfar.Names[i]+":"+strconv.Itoa(port))
			}
		}
		c.Routing.DNSOverride = []config.DNSOverride{ov}
		c.Routing.Refer.Always = true
		c.Peers = append(c.Peers, config.Peer{Name: "teams", Kind: "itsp", Interface: "outside", Domain: teamsfar.Names[0], Transport: "tls",
			OptionsInterval: config.Duration(200 * time.Millisecond), Headers: map[string]string{"X-MS-SBC": "Palisade/test/1.0"},
			Trunk: config.PeerTrunk{
				Targets:   targets,
				Keepalive: config.PeerKeepalive{Up: "2xx", DownAfter: 1},
				Numbers:   config.PeerNumbers{Outbound: []config.NumberRule{{Fields: []string{"request_uri", "to"}, Match: `(\d{7,15})`, Replace: "+$1"}}},
				Offer:     config.PeerOffer{Required: true},
				OwnAllow:  true,
			}})
	})
	// keepalive: the first datacentre down, the other two up after a 200
	waitFor(t, func() bool {
		st := peerStateOf(u, "teams")
		return st.Up && !st.LastCheck.IsZero() && len(st.Targets) == 3 && !st.Targets[0].Up && st.Targets[1].Up && st.Targets[2].Up
	}, "teams peer up with its first datacentre down")

	ctx := ctxT(t)
	call := func(user string, body []byte) (*sipgo.DialogClientSession, error) {
		sess, err := pbx.Call(ctx, u.inside(), user, body)
		if err != nil {
			t.Fatal(err)
		}
		return sess, sess.WaitAnswer(ctx, sipgo.AnswerOptions{})
	}
	// an answered call goes to the second datacentre, number in E.164
	sess, err := call("4930123", testSDP("127.0.0.1", 7000))
	if err != nil {
		t.Fatalf("call through the second datacentre: %v", err)
	}
	inv, err := far.Wait(ctx, func(r teamsfar.Request) bool { return r.Req.Method == sip.INVITE && r.Status == 200 })
	if err != nil || inv.DC != 1 || inv.Req.Recipient.User != "+4930123" || inv.Req.Recipient.Host != teamsfar.Names[1] {
		t.Fatalf("answered INVITE at datacentre %d (%v): %s", inv.DC, err, inv.Req.Recipient.String())
	}
	_ = sess.Ack(ctx)
	hangUp(t, ctx, sess, nil, u)

	// a declined call: 603 to the PBX, one INVITE only
	_, err = call("4930600", testSDP("127.0.0.1", 7002))
	var de *sipgo.ErrDialogResponse
	if !errors.As(err, &de) || de.Res.StatusCode != 603 {
		t.Fatalf("declined call: %v", err)
	}
	n := 0
	for _, r := range far.Requests() {
		if r.Req.Method == sip.INVITE && r.Req.Recipient.User == "+4930600" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("Teams got %d INVITEs for one declined call", n)
	}
	waitNoCalls(t, u.Service)

	// a delayed-offer call from the PBX: the unit makes the offer
	sess, err = call("4930124", nil)
	if err != nil {
		t.Fatalf("delayed-offer call: %v", err)
	}
	if !strings.Contains(string(sess.InviteResponse.Body()), "m=audio ") {
		t.Fatalf("200 to the PBX without the offer: %q", sess.InviteResponse.Body())
	}
	ack := sip.NewRequest(sip.ACK, sess.InviteResponse.Contact().Address)
	ack.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	ack.SetBody(testSDP("127.0.0.1", 7004))
	if err := sess.WriteAck(ctx, ack); err != nil {
		t.Fatal(err)
	}
	hangUp(t, ctx, sess, nil, u)
	for _, r := range far.Requests() {
		if r.Req.Method == sip.INVITE && len(r.Req.Body()) == 0 {
			t.Fatalf("Teams got an INVITE without SDP (answered %d)", r.Status)
		}
	}

	// sipp as the PBX: early and delayed offer (the unit makes the offer)
	if _, err := exec.LookPath("sipp"); err != nil {
		t.Log("sipp part skipped: install Debian package sip-tester")
	} else {
		before := far.Count(sip.INVITE)
		runSippScenario(t, "uac.xml", "127.0.0.1", "udp", u.inside().String(), 3)
		runSippScenario(t, "uac_late.xml", "127.0.0.1", "udp", u.inside().String(), 3)
		waitNoCalls(t, u.Service)
		if n := far.Count(sip.INVITE) - before; n != 6 {
			t.Fatalf("Teams got %d INVITEs for 6 sipp calls", n)
		}
	}

	// a transfer from Teams to a Teams user: REFER with x-m and x-t; the
	// new leg's INVITE keeps them and is answered
	far.On("+4930700", teamsfar.Script{Action: teamsfar.Transfer, ReferTo: "+4930701", MRI: "8:orgid:abc", Tenant: "tenant1"})
	sess, err = call("4930700", testSDP("127.0.0.1", 7006))
	if err != nil {
		t.Fatalf("call to be transferred: %v", err)
	}
	_ = sess.Ack(ctx)
	ref, err := far.Wait(ctx, func(r teamsfar.Request) bool { return r.Req.Method == sip.REFER })
	if err != nil || ref.Status != 202 {
		t.Fatalf("REFER answered %d (%v)", ref.Status, err)
	}
	nl, err := far.Wait(ctx, func(r teamsfar.Request) bool {
		return r.Req.Method == sip.INVITE && r.Req.Recipient.User == "+4930701" && r.Status != 0
	})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := nl.Req.Recipient.UriParams.Get("x-m"); v != "8:orgid:abc" || !nl.Req.Recipient.UriParams.Has("x-t") || nl.Status != 200 {
		t.Fatalf("transfer INVITE %s answered %d, want x-m and x-t kept and 200", nl.Req.Recipient.String(), nl.Status)
	}
	if a := nl.Req.GetHeader("Allow"); a == nil || !strings.Contains(a.Value(), "REFER") {
		t.Fatalf("transfer INVITE Allow %v", a)
	}
}
