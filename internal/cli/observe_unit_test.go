package cli

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/observe"
	"github.com/palisade-sbc/palisade/internal/testkit"
)

// TestTraceCallsThroughRunningUnit makes calls with sipp (PBX on 127.0.0.1,
// trunk on 127.0.0.3) through `palisade run` and follows them with the
// commands an administrator uses: calls, trace (text, pcap, svg), cdr.
func TestTraceCallsThroughRunningUnit(t *testing.T) {
	sipp := testkit.NeedBinary(t, "sipp", "sip-tester")
	dir := filepath.Join(t.TempDir(), "data")
	pbxPort, trunkPort := testkit.FreePort(t, "udp", "127.0.0.1"), testkit.FreePort(t, "udp", "127.0.0.3")
	cfg := decodedTestConfig(t)
	cfg.SIP.Listeners = append(cfg.SIP.Listeners, config.Listener{Interface: "outside", Transport: "udp", Port: testkit.FreePort(t, "udp", "127.0.0.2")})
	cfg.Peers = []config.Peer{
		{Name: "pbx", Kind: "pbx", Interface: "inside", Address: fmt.Sprintf("127.0.0.1:%d", pbxPort), Transport: "udp"},
		{Name: "itsp", Kind: "itsp", Interface: "outside", Address: fmt.Sprintf("127.0.0.3:%d", trunkPort), Transport: "udp"},
	}
	cfg.Network.DNSServers = []string{"127.0.0.1:9"}
	cfg.Media.Policies = []config.MediaPolicy{} // sipp's trunk speaks plain RTP
	cfg.Media.DefaultPolicy.RTPProfile = "avp"
	hepRecv := startHEPReceiver(t) // every traced message also goes out as HEP
	cfg.HEP = config.HEP{Enabled: true, NodeID: 99, QueueSize: 1000, Collectors: []config.HEPCollector{{Address: hepRecv.addr, Transport: "udp"}}}
	initial := writeInitial(t, cfg)
	unit := startUnit(t, dir, initial)

	const calls = 2
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	work := t.TempDir()
	uas := exec.CommandContext(ctx, sipp, "-sn", "uas", "-i", "127.0.0.3", "-p", fmt.Sprint(trunkPort),
		"-m", fmt.Sprint(calls), "-timeout", "50s", "-nostdin")
	uas.Dir = work
	defer testkit.Start(t, uas, 0).Stop(0)
	uac := exec.CommandContext(ctx, sipp, "-sn", "uac", "-i", "127.0.0.1", "-p", fmt.Sprint(pbxPort), "-s", "4687",
		"-m", fmt.Sprint(calls), "-r", "5", "-d", "200", "-timeout", "40s", "-nostdin",
		fmt.Sprintf("127.0.0.1:%d", cfg.SIP.Listeners[0].Port))
	uac.Dir = work
	if out, err := uac.CombinedOutput(); err != nil {
		t.Fatalf("sipp uac: %v\n%s\nunit log:\n%s", err, out, unit.log)
	}

	// The call list shows both calls, ended, answered and traced.
	var rows []observe.CallRow
	for i := 0; i < 100; i++ {
		rows = nil
		_ = json.Unmarshal([]byte(mustCLI(t, dir, "calls", "--ended", "--json")), &rows)
		if len(rows) == calls && rows[0].Messages >= 10 && rows[1].Messages >= 10 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(rows) != calls {
		t.Fatalf("calls --ended: %+v\nunit log:\n%s", rows, unit.log)
	}
	for _, r := range rows {
		if r.Code != 200 || !r.Traced || r.To != "4687" || len(r.CallIDs) != 2 {
			t.Errorf("call row %+v", r)
		}
	}
	id := rows[0].ID

	var msgs []observe.Message
	if err := json.Unmarshal([]byte(mustCLI(t, dir, "trace", id, "--json")), &msgs); err != nil {
		t.Fatal(err)
	}
	legs := map[string]int{}
	for _, m := range msgs {
		legs[m.Leg]++
		if m.SIPCallID != rows[0].CallIDs[0] && m.SIPCallID != rows[0].CallIDs[1] {
			t.Errorf("message %d has Call-ID %q, not one of the call's", m.Index, m.SIPCallID)
		}
	}
	if legs["inside"] < 5 || legs["outside"] < 5 {
		t.Errorf("trace of %s: %v messages per leg", id, legs)
	}
	hepRecv.checkCall(t, id, 99, msgs)
	if text := mustCLI(t, dir, "trace", rows[0].CallIDs[1]); strings.Count(text, "Call-ID: ") != len(msgs) {
		t.Errorf("text trace by the outside Call-ID:\n%s", text)
	}

	svgFile, pcapFile := filepath.Join(work, "call.svg"), filepath.Join(work, "call.pcap")
	mustCLI(t, dir, "trace", id, "--svg", svgFile, "--pcap", pcapFile)
	svg, _ := os.ReadFile(svgFile)
	if n := bytes.Count(svg, []byte(`<g class="msg`)); n != len(msgs) {
		t.Errorf("ladder has %d arrows for %d messages", n, len(msgs))
	}
	if tshark, err := exec.LookPath("tshark"); err == nil {
		out, err := exec.CommandContext(ctx, tshark, "-n", "-r", pcapFile, "-Y", "sip", "-T", "fields", "-e", "sip.CSeq").Output()
		if err != nil {
			t.Fatalf("tshark: %v", err)
		}
		if n := strings.Count(string(out), "\n"); n != len(msgs) {
			t.Errorf("tshark read %d SIP messages of %d", n, len(msgs))
		}
	}

	rowsCSV, err := csv.NewReader(strings.NewReader(mustCLI(t, dir, "cdr", "--csv", "--since", "1h"))).ReadAll()
	if err != nil || len(rowsCSV) != calls+1 {
		t.Fatalf("cdr --csv: %v %v", rowsCSV, err)
	}
	for _, r := range rowsCSV[1:] {
		if r[6] != "200" || r[8] != observe.EndedByCaller {
			t.Errorf("record %v", r)
		}
	}
	// The media relay's counters reach the records (sipp sends no RTP here:
	// addresses and codec, no packets).
	var cdrs []observe.CDR
	if err := json.Unmarshal([]byte(mustCLI(t, dir, "cdr", "--json")), &cdrs); err != nil || len(cdrs) != calls {
		t.Fatalf("cdr --json: %v %v", cdrs, err)
	}
	for _, c := range cdrs {
		if !c.Media[0].Local.IsValid() || !c.Media[1].Local.IsValid() || c.Media[0].Codec == "" {
			t.Errorf("record %s has media %+v", c.ID, c.Media)
		}
	}
	if out := mustCLI(t, dir, "status", "peers"); !strings.Contains(out, "itsp") || !strings.Contains(out, "pbx") {
		t.Errorf("status peers:\n%s", out)
	}
	if out := mustCLI(t, dir, "status", "calls"); !strings.Contains(out, "no calls in progress") {
		t.Errorf("status calls:\n%s", out)
	}
}
