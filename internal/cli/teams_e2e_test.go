package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/observe"
	"github.com/palisade-sbc/palisade/internal/pki"
	"github.com/palisade-sbc/palisade/internal/pki/pkitest"
	"github.com/palisade-sbc/palisade/internal/profiles"
	"github.com/palisade-sbc/palisade/internal/routing/dnstest"
	"github.com/palisade-sbc/palisade/internal/testkit"
	"github.com/palisade-sbc/palisade/internal/testkit/siptest"
	"github.com/palisade-sbc/palisade/internal/testkit/teamsfar"
)

// teamsFQDN is the unit's outside name, the one the tenant pairs.
const teamsFQDN = "sbc.example.test"

// TestTeamsDirectRoutingThroughRun is issue 14's end-to-end run: `palisade
// run` with the teams-direct-routing profile against the Teams-like far end
// (internal/testkit/teamsfar, three datacentres on loopback found by DNS),
// a certificate from a public CA with serverAuth only, sipp and Go user
// agents as the PBX on the inside and a PBX extension as a second inside
// peer. It checks, on the wire and through the CLI: the keepalive state up
// in `palisade status peers`; early- and delayed-offer calls from sipp; one
// INVITE for a declined call; failover to the second datacentre, within
// 10 s, when the first stops answering; a transfer from Teams to a Teams
// user (x-m, x-t kept) and to the PBX extension (the Refer-To number through
// Teams' inbound number rules and the dial plan).
func TestTeamsDirectRoutingThroughRun(t *testing.T) {
	sipp := testkit.NeedBinary(t, "sipp", "sip-tester")
	dir := filepath.Join(t.TempDir(), "data")
	work := t.TempDir()
	unit := startUnit(t, dir, testConfigFile(t))
	root := pkitest.NewRoot(t, "Public Test Root", "Public Test CA")

	// the unit's certificate from the public CA (serverAuth only, as
	// public CAs issue from 2026) and the root in the CA store
	mustCLI(t, dir, "cert", "new", "SBC", "--cn", teamsFQDN, "--san", teamsFQDN)
	own := issueServerAuth(t, root, mustCLI(t, dir, "cert", "csr", "SBC"))
	mustCLI(t, dir, "cert", "import", "SBC", writeFile(t, work, "sbc.pem", pki.EncodeCertificatesPEM(own)))
	mustCLI(t, dir, "ca", "import", "Public Root", writeFile(t, work, "root.der", root.Cert.Raw))

	cfg, err := config.Decode([]byte(mustCLI(t, dir, "config", "export")))
	if err != nil {
		t.Fatal(err)
	}
	for i := range cfg.Network.Interfaces {
		if cfg.Network.Interfaces[i].Name == "outside" {
			cfg.Network.Interfaces[i].FQDN = teamsFQDN
		}
	}
	if err := profiles.Apply(cfg, profiles.TeamsDirectRouting, profiles.Answers{PeerName: "teams", Certificate: "SBC", Model: "test"}); err != nil {
		t.Fatal(err)
	}
	tlsPort := testkit.FreePort(t, "tcp", "127.0.0.2")
	for i, l := range cfg.SIP.Listeners {
		if l.Interface == "outside" && l.Transport == "tls" {
			cfg.SIP.Listeners[i].Port = tlsPort
		}
	}
	far := startTeamsFar(t, root, fmt.Sprintf("127.0.0.2:%d", tlsPort))
	pbx := siptest.NewPeer(t, "pbx", "127.0.0.1", "udp")
	ext := siptest.NewPeer(t, "ext", "127.0.0.3", "udp")
	teamsLoopback(t, cfg, far, pbx, ext)
	cfgFile := filepath.Join(work, "teams.json")
	b, err := config.Encode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, dir, "config", "import", cfgFile)
	mustCLI(t, dir, "config", "apply")
	mustCLI(t, dir, "config", "confirm")

	// keepalive: Teams answers the OPTIONS 200, every datacentre is up
	waitTeamsUp(t, dir, unit)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	inside := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(cfg.SIP.Listeners[0].Port))

	// sipp as the PBX: early and delayed offer, each call one INVITE
	// with SDP at Teams
	before := far.Count(sip.INVITE)
	for _, sc := range []string{"uac.xml", "uac_late.xml"} {
		if err := runSipp(ctx, t, sipp, sc, inside.String(), 2); err != nil {
			t.Fatalf("sipp %s: %v\nunit log:\n%s", sc, err, lastBytes(unit.log.String(), 3000))
		}
	}
	if n := far.Count(sip.INVITE) - before; n != 4 {
		t.Fatalf("Teams got %d INVITEs for 4 sipp calls", n)
	}
	for _, r := range far.Requests() {
		if r.Req.Method == sip.INVITE && len(r.Req.Body()) == 0 {
			t.Fatalf("Teams got an INVITE without SDP (answered %d)", r.Status)
		}
	}

	call := func(user string) (*sipgo.DialogClientSession, error) {
		sess, err := pbx.Call(ctx, inside, user, siptest.SDP("127.0.0.1", 7000))
		if err != nil {
			t.Fatal(err)
		}
		return sess, sess.WaitAnswer(ctx, sipgo.AnswerOptions{})
	}

	// a declined call: 603 to the PBX, one INVITE only
	far.On("+4930600", teamsfar.Script{Action: teamsfar.Decline})
	_, err = call("4930600")
	var de *sipgo.ErrDialogResponse
	if !errors.As(err, &de) || de.Res.StatusCode != 603 {
		t.Fatalf("declined call: %v", err)
	}
	if n := countInvites(far, "+4930600"); n != 1 {
		t.Fatalf("Teams got %d INVITEs for one declined call", n)
	}

	// the first datacentre stops answering: the call reaches the second
	// one after sip.invite_timeout, well within 10 s
	far.DCs[0].SetDown(teamsfar.Silent)
	start := time.Now()
	sess, err := call("4930124")
	if err != nil {
		t.Fatalf("call with the first datacentre silent: %v\nunit log:\n%s", err, lastBytes(unit.log.String(), 3000))
	}
	inv, err := far.Wait(ctx, func(r teamsfar.Request) bool {
		return r.Req.Method == sip.INVITE && r.Req.Recipient.User == "+4930124" && r.Status == 200
	})
	took := time.Since(start)
	if err != nil || inv.DC != 1 || far.DCs[0].Swallowed.Load() == 0 {
		t.Fatalf("answered at datacentre %d (%v), the silent one got %d INVITEs", inv.DC, err, far.DCs[0].Swallowed.Load())
	}
	if took >= 10*time.Second {
		t.Fatalf("failover to the second datacentre took %s, want < 10 s", took)
	}
	t.Logf("failover to the second datacentre: %s", took)
	_ = sess.Ack(ctx)
	if err := sess.Bye(ctx); err != nil {
		t.Fatal(err)
	}

	// the PBX re-INVITEs without SDP: Teams takes no INVITE without an
	// offer, so the unit makes one; Teams' answer is the offer in the 200
	// to the PBX, whose answer in the ACK completes the media
	sess, err = call("4930125")
	if err != nil {
		t.Fatal(err)
	}
	_ = sess.Ack(ctx)
	res, err := sess.Do(ctx, sip.NewRequest(sip.INVITE, sess.InviteResponse.Contact().Address))
	if err != nil || res.StatusCode != 200 || !strings.Contains(string(res.Body()), "m=audio ") {
		t.Fatalf("re-INVITE without SDP: %v %v\nunit log:\n%s", res, err, lastBytes(unit.log.String(), 3000))
	}
	re, err := far.Wait(ctx, func(r teamsfar.Request) bool {
		return r.Req.Method == sip.INVITE && r.Req.Recipient.User == "" && r.Req.CallID().Value() != "" && r.Status == 200 &&
			strings.Contains(r.Req.To().Address.User, "4930125")
	})
	if err != nil || !strings.Contains(string(re.Req.Body()), "RTP/SAVP") {
		t.Fatalf("Teams' re-INVITE: %v, body %q; want the unit's SRTP offer", err, re.Req.Body())
	}
	ack := sip.NewRequest(sip.ACK, sess.InviteResponse.Contact().Address)
	ack.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	ack.SetBody(siptest.SDP("127.0.0.1", 7010))
	if err := sess.WriteRequest(ack); err != nil {
		t.Fatal(err)
	}
	if _, err := far.Wait(ctx, func(r teamsfar.Request) bool {
		return r.Req.Method == sip.ACK && r.Req.CSeq().SeqNo == re.Req.CSeq().SeqNo && r.Req.CallID().Value() == re.Req.CallID().Value()
	}); err != nil {
		t.Fatalf("Teams got no ACK for the re-INVITE: %v", err)
	}
	if err := sess.Bye(ctx); err != nil {
		t.Fatalf("the call did not stay up: %v", err)
	}

	// a transfer from Teams to a Teams user: the new leg keeps x-m, x-t
	far.On("+4930700", teamsfar.Script{Action: teamsfar.Transfer, ReferTo: "+4930701", MRI: "8:orgid:abc", Tenant: "tenant1"})
	sess, err = call("4930700")
	if err != nil {
		t.Fatalf("call to be transferred: %v", err)
	}
	_ = sess.Ack(ctx)
	nl, err := far.Wait(ctx, func(r teamsfar.Request) bool {
		return r.Req.Method == sip.INVITE && r.Req.Recipient.User == "+4930701" && r.Status != 0
	})
	if err != nil {
		t.Fatalf("no new leg to the Teams user: %v\nunit log:\n%s", err, lastBytes(unit.log.String(), 3000))
	}
	if v, _ := nl.Req.Recipient.UriParams.Get("x-m"); v != "8:orgid:abc" || !nl.Req.Recipient.UriParams.Has("x-t") || nl.Status != 200 {
		t.Fatalf("transfer INVITE %s answered %d, want x-m and x-t kept and 200", nl.Req.Recipient.String(), nl.Status)
	}
	finishTeamsTransfer(ctx, t, far, pbx, sess, "+4930701")
	if _, err := far.Wait(ctx, func(r teamsfar.Request) bool {
		return r.Req.Method == sip.BYE && r.Req.CallID().Value() == nl.Req.CallID().Value()
	}); err != nil {
		t.Fatalf("the Teams user's leg got no BYE: %v", err)
	}

	// a transfer from Teams to a PBX extension (a Refer-To naming the
	// unit): +4930200 is 200 after Teams' inbound number rules, which the
	// dial plan sends to ext
	far.On("+4930800", teamsfar.Script{Action: teamsfar.Transfer, ReferTo: "+4930200", MRI: "8:orgid:def", Tenant: "tenant1", ReferHost: teamsFQDN})
	sess, err = call("4930800")
	if err != nil {
		t.Fatalf("call to be transferred to the extension: %v", err)
	}
	_ = sess.Ack(ctx)
	got, ok := ext.NextWithin(sip.INVITE, 20*time.Second)
	if !ok {
		t.Fatalf("the extension got no INVITE\nTeams saw:\n%s\nunit log:\n%s", farLog(far), lastBytes(unit.log.String(), 6000))
	}
	if got.Recipient.User != "200" || !strings.Contains(string(got.Body()), "m=audio ") {
		t.Fatalf("the extension got INVITE %s with %q", got.Recipient.String(), got.Body())
	}
	ext.Next(sip.ACK)
	finishTeamsTransfer(ctx, t, far, pbx, sess, "+4930200")
	ext.Next(sip.BYE)
}

// finishTeamsTransfer checks the end of a transfer by Teams of the PBX's
// call sess to number: REFER accepted, the PBX re-INVITEd to the new
// party's media, Teams' leg ended; then the PBX hangs up.
func finishTeamsTransfer(ctx context.Context, t *testing.T, far *teamsfar.Far, pbx *siptest.Peer, sess *sipgo.DialogClientSession, number string) {
	t.Helper()
	ref, err := far.Wait(ctx, func(r teamsfar.Request) bool {
		if r.Req.Method != sip.REFER {
			return false
		}
		rt := r.Req.GetHeader("Refer-To")
		return rt != nil && strings.Contains(rt.Value(), number+"@")
	})
	if err != nil || ref.Status != 202 {
		t.Fatalf("REFER to %s answered %d (%v)", number, ref.Status, err)
	}
	// the re-INVITE to the new party's media (a media resync of an
	// earlier transfer may come first)
	for i := 0; pbx.Next(sip.INVITE).CallID().Value() != sess.InviteRequest.CallID().Value(); i++ {
		if i == 3 {
			t.Fatal("no re-INVITE on the transferee's call")
		}
	}
	if _, err := far.Wait(ctx, func(r teamsfar.Request) bool {
		return r.Req.Method == sip.BYE && r.Req.CallID().Value() == ref.Req.CallID().Value()
	}); err != nil {
		t.Fatalf("Teams' leg was not ended after the transfer: %v", err)
	}
	if err := sess.Bye(ctx); err != nil {
		t.Fatal(err)
	}
}

// issueServerAuth signs the unit's CSR with a serverAuth-only certificate.
func issueServerAuth(t *testing.T, ca *pkitest.CA, csrPEM string) *x509.Certificate {
	t.Helper()
	blk, _ := pem.Decode([]byte(csrPEM))
	if blk == nil {
		t.Fatalf("no CSR in %q", csrPEM)
	}
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return ca.Issue(t, csr.PublicKey, pkitest.Leaf{CN: csr.Subject.CommonName, DNS: csr.DNSNames, EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
}

// startTeamsFar runs the far end: three datacentres on loopback with a
// certificate from the same public CA, serverAuth only.
func startTeamsFar(t *testing.T, root *pkitest.CA, sbcAddr string) *teamsfar.Far {
	t.Helper()
	key := pkitest.NewKey(t)
	c := root.Issue(t, key.Public(), pkitest.Leaf{CN: teamsfar.Names[0], DNS: teamsfar.Names, EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	roots := x509.NewCertPool()
	roots.AddCert(root.Cert)
	far, err := teamsfar.Start(teamsfar.Options{SBCFQDN: teamsFQDN, SBCAddr: sbcAddr,
		Cert: tls.Certificate{Certificate: [][]byte{c.Raw}, PrivateKey: key, Leaf: c}, Roots: roots,
		Listen: []string{"127.0.0.5:0", "127.0.0.6:0", "127.0.0.7:0"}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(far.Close)
	return far
}

// teamsLoopback adapts the profile's settings to the loopback lab: the
// three names resolve by a test DNS server, with the datacentres' ports;
// Teams' ranges are loopback; a keepalive every 5 s; the PBX and the
// extension on the inside; the dial plan sends 2xx to the extension and
// everything else to Teams.
func teamsLoopback(t *testing.T, cfg *config.Config, far *teamsfar.Far, pbx, ext *siptest.Peer) {
	t.Helper()
	dns, err := dnstest.Start(far.DNSRecords()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dns.Close)
	cfg.Network.DNSServers = []string{dns.Addr}
	cfg.SIP.InviteTimeout = config.Duration(3 * time.Second)
	for i := range cfg.Routing.DNSOverride {
		ov := &cfg.Routing.DNSOverride[i]
		for j := range ov.Targets {
			ov.Targets[j].Port = int(netip.MustParseAddrPort(far.DCs[j].Addr).Port())
		}
	}
	var teams *config.Peer
	for i := range cfg.Peers {
		if cfg.Peers[i].Name == "teams" {
			teams = &cfg.Peers[i]
		}
	}
	if teams == nil {
		t.Fatal("the profile wrote no peer teams")
	}
	teams.OptionsInterval = config.Duration(5 * time.Second)
	teams.Trunk.Ranges = []string{"127.0.0.0/8"}
	teams.Trunk.Targets = nil
	for i, dc := range far.DCs[1:] {
		teams.Trunk.Targets = append(teams.Trunk.Targets, teamsfar.Names[i+1]+":"+strconv.Itoa(int(netip.MustParseAddrPort(dc.Addr).Port())))
	}
	teams.Trunk.Numbers.Inbound = []config.NumberRule{{Fields: []string{"request_uri"}, Match: `\+4930(2[0-9][0-9])`, Replace: "$1"}}
	cfg.Peers = append([]config.Peer{
		{Name: "pbx", Kind: "pbx", Interface: "inside", Address: pbx.Addr.String(), Transport: "udp"},
		{Name: "ext", Kind: "pbx", Interface: "inside", Address: ext.Addr.String(), Transport: "udp"},
	}, *teams)
	cfg.DialPlan.Rules = []config.DialRule{
		{Name: "extension", Regex: `^2[0-9][0-9]$`, ForwardTo: []config.Forward{{Peer: "ext"}}},
		{Name: "teams", ForwardTo: []config.Forward{{Peer: "teams"}}},
	}
}

// waitTeamsUp waits until `palisade status peers` shows Teams up with its
// three datacentres up.
func waitTeamsUp(t *testing.T, dir string, unit *unitProc) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		last = mustCLI(t, dir, "status", "peers", "--json")
		var peers []observe.PeerStatus
		if err := json.Unmarshal([]byte(last), &peers); err != nil {
			t.Fatalf("status peers --json: %v\n%s", err, last)
		}
		for _, p := range peers {
			if p.Name != "teams" || p.State != "up" || len(p.Targets) != 3 {
				continue
			}
			up := 0
			for _, tg := range p.Targets {
				if tg.Up && tg.LastStatus == 200 {
					up++
				}
			}
			if up == 3 {
				return
			}
		}
	}
	t.Fatalf("Teams not up with three datacentres in palisade status peers:\n%s\nunit log:\n%s", last, lastBytes(unit.log.String(), 3000))
}

// runSipp places n calls with a scenario of the b2bua package's testdata
// from 127.0.0.1 (the PBX's address) to dst.
func runSipp(ctx context.Context, t *testing.T, sipp, scenario, dst string, n int) error {
	t.Helper()
	sf, err := filepath.Abs(filepath.Join("..", "sip", "b2bua", "testdata", "sipp", scenario))
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	work := t.TempDir()
	cmd := exec.CommandContext(cctx, sipp, "-sf", sf, dst, "-s", "4930123", "-i", "127.0.0.1",
		"-p", strconv.Itoa(testkit.FreePort(t, "udp", "127.0.0.1")), "-t", "u1", "-m", strconv.Itoa(n), "-l", "1",
		"-recv_timeout", "15000", "-timeout", "50s", "-nostdin", "-bind_local",
		"-mi", "127.0.0.1", "-mp", strconv.Itoa(testkit.FreePort(t, "udp", "127.0.0.1")&^1),
		"-trace_err", "-error_file", filepath.Join(work, "err.log"))
	cmd.Dir = work
	out, err := cmd.CombinedOutput()
	if err != nil {
		errs, _ := os.ReadFile(filepath.Join(work, "err.log"))
		return fmt.Errorf("%v\n%s\n%s", err, lastBytes(string(out), 1500), lastBytes(string(errs), 2000))
	}
	return nil
}

// countInvites counts the INVITEs Teams got for number.
func countInvites(far *teamsfar.Far, number string) int {
	n := 0
	for _, r := range far.Requests() {
		if r.Req.Method == sip.INVITE && r.Req.Recipient.User == number {
			n++
		}
	}
	return n
}

// farLog lists what the far end received, for failure messages.
func farLog(far *teamsfar.Far) string {
	var b strings.Builder
	for _, r := range far.Requests() {
		fmt.Fprintf(&b, "dc %d %s %s %s -> %d\n", r.DC, r.Req.Method, r.Req.Recipient.String(), r.Req.CallID().Value(), r.Status)
	}
	return b.String()
}
