package observe_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/media"
	"github.com/palisade-sbc/palisade/internal/observe"
	"github.com/palisade-sbc/palisade/internal/pki"
	"github.com/palisade-sbc/palisade/internal/pki/pkitest"
	"github.com/palisade-sbc/palisade/internal/sip/b2bua"
	"github.com/palisade-sbc/palisade/internal/store"
	"github.com/palisade-sbc/palisade/internal/testkit"
	"github.com/prometheus/client_golang/prometheus"
)

// TestSIPCallsThroughTheUnit makes calls with sipp (a PBX on 127.0.0.1, a
// trunk on 127.0.0.3) through the SIP subsystem and checks what observe
// made of them: every message of both legs in the trace, one ladder arrow
// per message, a pcap tshark reads whole, and the SIP counters.
func TestSIPCallsThroughTheUnit(t *testing.T) {
	sipp := testkit.NeedBinary(t, "sipp", "sip-tester")
	for _, outside := range []string{"udp", "tls"} {
		t.Run("inside udp, outside "+outside, func(t *testing.T) { callsThroughTheUnit(t, sipp, outside, nil) })
	}
}

// callsThroughTheUnit makes the calls and checks them; tap, when not nil,
// gets every traced message too (as the HEP export does in the unit).
func callsThroughTheUnit(t *testing.T, sipp, outside string, tap observe.Tracer) *observe.Service {
	tshark, _ := exec.LookPath("tshark")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	st := store.NewMemory()
	svc := observe.New(st, nil, nil)
	t.Cleanup(func() { svc.Close() })
	if tap != nil {
		svc.Traces.SetTap(tap)
	}
	pbxPort, trunkPort := testkit.FreePort(t, "udp", "127.0.0.1"), testkit.FreePort(t, "udp", "127.0.0.3")
	cfg := config.Default()
	cfg.Network.Interfaces = []config.Interface{{Name: "inside", Address: "127.0.0.1"}, {Name: "outside", Address: "127.0.0.2"}}
	cfg.SIP.Listeners = []config.Listener{{Interface: "inside", Transport: "udp"}, {Interface: "outside", Transport: outside, Certificate: "default"}}
	cfg.Peers = []config.Peer{
		{Name: "pbx", Kind: "pbx", Interface: "inside", Address: fmt.Sprintf("127.0.0.1:%d", pbxPort), Transport: "udp"},
		{Name: "itsp", Kind: "itsp", Interface: "outside", Address: fmt.Sprintf("127.0.0.3:%d", trunkPort), Transport: outside},
	}
	cfg.Network.DNSServers = []string{"127.0.0.1:9"}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	deps := b2bua.Deps{Logger: log, Media: media.Passthrough{}, Tracer: svc.Traces}
	if outside == "tls" {
		// The trunk (sipp) has a certificate from a test CA the unit trusts.
		caPEM := trunkCertificate(t, dir)
		if _, err := (&pki.Certs{Store: st}).ImportCA(ctx, cfg, "trunk-ca", caPEM); err != nil {
			t.Fatal(err)
		}
		tlsp := pki.New(st, log)
		if err := tlsp.Apply(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tlsp.Close() })
		deps.TLS = tlsp
	}
	sip := b2bua.New(deps) // first: it sets sipgo's global logger
	if outside == "tls" {
		// Debian's sipp has no TLS: a sipgo UAS plays the TLS trunk.
		trunkPort = tlsTrunk(t, ctx, dir)
		cfg.Peers[1].Address = fmt.Sprintf("127.0.0.3:%d", trunkPort)
	}
	if err := svc.Apply(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if err := sip.Apply(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sip.Close() })
	inside := sip.ListenAddr("inside", "udp")

	const calls = 3
	invitesBefore := counter(t, "palisade_observe_sip_requests_total", "leg", "inside", "direction", "in", "method", "INVITE")
	okBefore := counter(t, "palisade_observe_sip_responses_total", "leg", "outside", "direction", "in", "method", "INVITE", "code", "200")
	answeredBefore := counter(t, "palisade_calls_total", "direction", "outbound", "result", "answered")
	activeBefore := counter(t, "palisade_calls_active", "direction", "outbound")
	var uasOut bytes.Buffer
	if outside == "udp" {
		uas := exec.CommandContext(ctx, sipp, "-sn", "uas", "-i", "127.0.0.3", "-p", fmt.Sprint(trunkPort),
			"-m", fmt.Sprint(calls), "-timeout", "50s", "-nostdin")
		uas.Dir = dir
		uas.Stdout, uas.Stderr = &uasOut, &uasOut
		defer testkit.Start(t, uas, 0).Stop(0)
	}
	uac := exec.CommandContext(ctx, sipp, "-sn", "uac", "-i", "127.0.0.1", "-p", fmt.Sprint(pbxPort), "-s", "4687",
		"-m", fmt.Sprint(calls), "-r", "5", "-d", "200", "-timeout", "40s", "-nostdin", inside.String())
	uac.Dir = dir
	if out, err := uac.CombinedOutput(); err != nil {
		t.Fatalf("sipp uac: %v\n%s\nsipp uas:\n%s", err, testkit.LastLines(string(out), 30), testkit.LastLines(uasOut.String(), 30))
	}

	// Every call's trace: both legs, the whole dialog on each.
	want := map[string][]string{
		"inside":  {"in INVITE", "out 200 OK", "in ACK", "in BYE", "out 200 OK"},
		"outside": {"out INVITE", "in 200 OK", "out ACK", "out BYE", "in 200 OK"},
	}
	// Wait until the trace holds both 200s to BYE of every call: the unit
	// answers the caller's BYE before the trunk's answer arrives.
	byeDone := func() int {
		n := 0
		for _, m := range svc.Traces.Window(time.Time{}, time.Time{}) {
			if m.Method == "BYE" && m.Status == 200 {
				n++
			}
		}
		return n
	}
	for i := 0; i < 250 && byeDone() < 2*calls; i++ {
		time.Sleep(20 * time.Millisecond)
	}
	sums := svc.Traces.List(observe.CallFilter{Ended: true})
	if len(sums) != calls {
		t.Fatalf("%d ended calls traced, want %d: %+v", len(sums), calls, svc.Traces.List(observe.CallFilter{}))
	}
	var all []observe.Message
	for _, sum := range sums {
		msgs, _ := svc.Traces.Messages(sum.ID)
		all = append(all, msgs...)
		// Provisional answers are compared by count: 100 is hop by hop, and
		// every 180 the trunk sent must have been relayed to the PBX.
		got := map[string][]string{}
		ringing := map[string]int{}
		for _, m := range msgs {
			if m.Status >= 100 && m.Status < 200 {
				if m.Status == 180 {
					ringing[m.Direction]++
				}
				continue
			}
			got[m.Leg] = append(got[m.Leg], m.Direction+" "+m.Label)
		}
		if ringing["in"] != ringing["out"] {
			t.Errorf("call %s: %d 180s received, %d relayed", sum.ID, ringing["in"], ringing["out"])
		}
		for leg, seq := range want {
			if strings.Join(got[leg], ", ") != strings.Join(seq, ", ") {
				t.Errorf("call %s leg %s: %v, want %v", sum.ID, leg, got[leg], seq)
			}
		}
		if sum.Result != 200 || sum.Failed || len(sum.CallIDs) != 2 || sum.To != "4687" {
			t.Errorf("summary %+v", sum)
		}
		for _, m := range msgs {
			if want := map[string]string{"inside": "udp", "outside": outside}[m.Leg]; m.Transport != want {
				t.Errorf("message %d on %s carried by %q, want %q", m.Index, m.Leg, m.Transport, want)
			}
		}
		var svg bytes.Buffer
		if err := observe.WriteLadder(&svg, sum.ID, msgs); err != nil {
			t.Fatal(err)
		}
		if n := bytes.Count(svg.Bytes(), []byte(`<g class="msg`)); n != len(msgs) {
			t.Errorf("ladder of %s has %d arrows for %d messages", sum.ID, n, len(msgs))
		}
	}

	if got := counter(t, "palisade_observe_sip_requests_total", "leg", "inside", "direction", "in", "method", "INVITE") - invitesBefore; got != calls {
		t.Errorf("INVITEs received inside counted %v, want %d", got, calls)
	}
	if got := counter(t, "palisade_observe_sip_responses_total", "leg", "outside", "direction", "in", "method", "INVITE", "code", "200") - okBefore; got != calls {
		t.Errorf("200 OKs to INVITE from the trunk counted %v, want %d", got, calls)
	}

	// One call record per call, matching its trace (derived from the trace
	// while the SIP layer does not report calls itself).
	var cdrs []observe.CDR
	for i := 0; i < 250 && len(cdrs) < calls; i++ {
		cdrs, _, _ = observe.ListCDRs(ctx, st, time.Time{})
		time.Sleep(20 * time.Millisecond)
	}
	if len(cdrs) != calls {
		t.Fatalf("%d call records, want %d", len(cdrs), calls)
	}
	bySum := map[string]observe.CallSummary{}
	for _, sum := range sums {
		bySum[sum.ID] = sum
	}
	for _, c := range cdrs {
		sum, ok := bySum[c.ID]
		if !ok {
			t.Errorf("record of an unknown call %s", c.ID)
			continue
		}
		if c.Code != 200 || c.Answer.IsZero() || c.EndedBy != observe.EndedByCaller || c.Direction != observe.DirOutbound ||
			c.A.Interface != "inside" || c.B.Interface != "outside" || c.B.Transport != outside ||
			c.A.CallID != sum.CallIDs[0] || c.B.CallID != sum.CallIDs[1] || c.B.Remote.Port() != uint16(trunkPort) {
			t.Errorf("record %+v does not match the call %+v", c, sum)
		}
	}

	if got := counter(t, "palisade_calls_total", "direction", "outbound", "result", "answered") - answeredBefore; got != calls {
		t.Errorf("answered outbound calls counted %v, want %d", got, calls)
	}
	if got := counter(t, "palisade_calls_active", "direction", "outbound"); got != activeBefore {
		t.Errorf("%v outbound calls still active after the calls, %v before", got, activeBefore)
	}

	if tshark == "" {
		t.Log("tshark missing (Debian package tshark): pcap not checked")
		return svc
	}
	path := filepath.Join(dir, "calls.pcap")
	var pcap bytes.Buffer
	if err := observe.WritePCAP(&pcap, all); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pcap.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, tshark, "-n", "-r", path, "-Y", "sip", "-T", "fields", "-e", "sip.Method", "-e", "sip.Status-Code")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	if n := strings.Count(string(out), "\n"); n != len(all) {
		t.Errorf("tshark read %d SIP messages, want %d", n, len(all))
	}
	return svc
}

// tlsTrunk answers calls over TLS on 127.0.0.3 as a trunk would (180, 200
// with SDP, then 200 to BYE) and returns its port.
func tlsTrunk(t *testing.T, ctx context.Context, dir string) int {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "trunk.pem"), filepath.Join(dir, "trunk.key"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.3:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("test-trunk"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	contact := &sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "trunk", Host: "127.0.0.3", Port: port,
		UriParams: sip.HeaderParams{{K: "transport", V: "tls"}}}}
	srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		req.To().Params.Add("tag", fmt.Sprintf("trunk%d", time.Now().UnixNano())) // one tag for 180 and 200
		_ = tx.Respond(sip.NewResponseFromRequest(req, 180, "Ringing", nil))
		res := sip.NewResponseFromRequest(req, 200, "OK", []byte("v=0\r\no=- 2 2 IN IP4 127.0.0.3\r\ns=-\r\nc=IN IP4 127.0.0.3\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n"))
		res.AppendHeader(contact)
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		_ = tx.Respond(res)
	})
	srv.OnAck(func(*sip.Request, sip.ServerTransaction) {})
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	go srv.ServeTLS(ln) //nolint:errcheck // ends when the listener closes
	t.Cleanup(func() { ln.Close(); srv.Close(); ua.Close() })
	return port
}

// trunkCertificate writes a certificate for the trunk at 127.0.0.3 (and its
// key) into dir as trunk.pem and trunk.key, and returns its CA in PEM.
func trunkCertificate(t *testing.T, dir string) []byte {
	t.Helper()
	ca := pkitest.NewRoot(t, "Trunk Test CA", "")
	leafKey := pkitest.NewKey(t)
	leaf := ca.Issue(t, leafKey.Public(), pkitest.Leaf{CN: "trunk.test", DNS: []string{"trunk.test"}, IPs: []net.IP{net.ParseIP("127.0.0.3")}})
	keyDER, err := x509.MarshalPKCS8PrivateKey(leafKey)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, der []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("trunk.pem", "CERTIFICATE", leaf.Raw)
	write("trunk.key", "PRIVATE KEY", keyDER)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
}

// counter reads one series of a counter or gauge from the default registry (0 when
// it does not exist yet).
func counter(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue next
				}
			}
			if g := m.GetGauge(); g != nil {
				return g.GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}
