package observe_test

import (
	"bytes"
	"context"
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

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/media"
	"github.com/palisade-sbc/palisade/internal/observe"
	"github.com/palisade-sbc/palisade/internal/sip/b2bua"
	"github.com/palisade-sbc/palisade/internal/store"
	"github.com/prometheus/client_golang/prometheus"
)

func freeUDPPort(t *testing.T, ip string) int {
	t.Helper()
	c, err := net.ListenPacket("udp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// TestSIPCallsThroughTheUnit makes calls with sipp (a PBX on 127.0.0.1, a
// trunk on 127.0.0.3) through the SIP subsystem and checks what observe
// made of them: every message of both legs in the trace, one ladder arrow
// per message, a pcap tshark reads whole, and the SIP counters.
func TestSIPCallsThroughTheUnit(t *testing.T) {
	sipp, err := exec.LookPath("sipp")
	if err != nil {
		t.Skip("install Debian package sip-tester")
	}
	tshark, _ := exec.LookPath("tshark")

	svc := observe.New(store.NewMemory(), nil, nil)
	t.Cleanup(func() { svc.Close() })
	pbxPort, trunkPort := freeUDPPort(t, "127.0.0.1"), freeUDPPort(t, "127.0.0.3")
	cfg := config.Default()
	cfg.Network.Interfaces = []config.Interface{{Name: "inside", Address: "127.0.0.1"}, {Name: "outside", Address: "127.0.0.2"}}
	cfg.SIP.Listeners = []config.Listener{{Interface: "inside", Transport: "udp"}, {Interface: "outside", Transport: "udp"}}
	cfg.Peers = []config.Peer{
		{Name: "pbx", Kind: "pbx", Interface: "inside", Address: fmt.Sprintf("127.0.0.1:%d", pbxPort), Transport: "udp"},
		{Name: "itsp", Kind: "itsp", Interface: "outside", Address: fmt.Sprintf("127.0.0.3:%d", trunkPort), Transport: "udp"},
	}
	cfg.Network.DNSServers = []string{"127.0.0.1:9"}
	if err := svc.Apply(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	sip := b2bua.New(b2bua.Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Media: media.Passthrough{}, Tracer: svc.Traces})
	if err := sip.Apply(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sip.Close() })
	inside := sip.ListenAddr("inside", "udp")

	const calls = 3
	invitesBefore := counter(t, "palisade_observe_sip_requests_total", "leg", "inside", "direction", "in", "method", "INVITE")
	okBefore := counter(t, "palisade_observe_sip_responses_total", "leg", "outside", "direction", "in", "method", "INVITE", "code", "200")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	uas := exec.CommandContext(ctx, sipp, "-sn", "uas", "-i", "127.0.0.3", "-p", fmt.Sprint(trunkPort),
		"-m", fmt.Sprint(calls), "-timeout", "50s", "-nostdin")
	uas.Dir = dir
	var uasOut bytes.Buffer
	uas.Stdout, uas.Stderr = &uasOut, &uasOut
	if err := uas.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = uas.Process.Kill(); _ = uas.Wait() }()
	uac := exec.CommandContext(ctx, sipp, "-sn", "uac", "-i", "127.0.0.1", "-p", fmt.Sprint(pbxPort), "-s", "4687",
		"-m", fmt.Sprint(calls), "-r", "5", "-d", "200", "-timeout", "40s", "-nostdin", inside.String())
	uac.Dir = dir
	if out, err := uac.CombinedOutput(); err != nil {
		t.Fatalf("sipp uac: %v\n%s", err, lastLines(out, 30))
	}

	// Every call's trace: both legs, the whole dialog on each.
	want := map[string][]string{
		"inside":  {"in INVITE", "out 180 Ringing", "out 200 OK", "in ACK", "in BYE", "out 200 OK"},
		"outside": {"out INVITE", "in 180 Ringing", "in 200 OK", "out ACK", "out BYE", "in 200 OK"},
	}
	var sums []observe.CallSummary
	for range 200 { // the last BYE's 200 may still be on its way
		sums = svc.Traces.List(observe.CallFilter{Ended: true})
		if len(sums) == calls {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(sums) != calls {
		t.Fatalf("%d ended calls traced, want %d: %+v", len(sums), calls, svc.Traces.List(observe.CallFilter{}))
	}
	var all []observe.Message
	for _, sum := range sums {
		msgs, _ := svc.Traces.Messages(sum.ID)
		all = append(all, msgs...)
		got := map[string][]string{}
		for _, m := range msgs {
			if m.Status == 100 {
				continue // hop by hop; either leg may or may not have one
			}
			got[m.Leg] = append(got[m.Leg], m.Direction+" "+m.Label)
		}
		for leg, seq := range want {
			if strings.Join(got[leg], ", ") != strings.Join(seq, ", ") {
				t.Errorf("call %s leg %s: %v, want %v", sum.ID, leg, got[leg], seq)
			}
		}
		if sum.Result != 200 || sum.Failed || len(sum.CallIDs) != 2 || sum.To != "4687" {
			t.Errorf("summary %+v", sum)
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

	if tshark == "" {
		t.Log("tshark missing (Debian package tshark): pcap not checked")
		return
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
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(string(b), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// counter reads one series of a counter from the default registry (0 when
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
			return m.GetCounter().GetValue()
		}
	}
	return 0
}
