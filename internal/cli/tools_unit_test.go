package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/admin"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/testkit"
)

// TestToolsCallThroughRunningUnit: `palisade tools call` makes the running
// unit call a number routed to its trunk (sipp answering), and `palisade
// tools ping` reaches a peer by bare URI; both print the ladder.
func TestToolsCallThroughRunningUnit(t *testing.T) {
	sipp := testkit.NeedBinary(t, "sipp", "sip-tester")
	dir := filepath.Join(t.TempDir(), "data")
	trunkPort := testkit.FreePort(t, "udp", "127.0.0.3")
	labAddr := fmt.Sprintf("127.0.0.4:%d", testkit.FreePort(t, "udp", "127.0.0.4"))
	newOptionsPeer(t, labAddr)
	b, err := os.ReadFile(testConfigFile(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	cfg.SIP.Listeners = append(cfg.SIP.Listeners, config.Listener{Interface: "outside", Transport: "udp", Port: testkit.FreePort(t, "udp", "127.0.0.2")})
	cfg.Peers = []config.Peer{
		{Name: "pbx", Kind: "pbx", Interface: "inside", Address: "127.0.0.1:5", Transport: "udp"},
		{Name: "itsp", Kind: "itsp", Interface: "outside", Address: fmt.Sprintf("127.0.0.3:%d", trunkPort), Transport: "udp"},
	}
	cfg.Network.DNSServers = []string{"127.0.0.1:9"}
	cfg.Media.Policies = []config.MediaPolicy{}
	cfg.Media.DefaultPolicy.RTPProfile = "avp"
	unit := startUnit(t, dir, writeInitial(t, cfg))

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	uas := exec.CommandContext(ctx, sipp, "-sn", "uas", "-i", "127.0.0.3", "-p", fmt.Sprint(trunkPort), "-m", "2", "-timeout", "50s", "-nostdin")
	uas.Dir = t.TempDir()
	defer testkit.Start(t, uas, 0).Stop(0)
	waitListening(t, "127.0.0.3", trunkPort)

	r := palisade(t, dir, "tools", "call", "4930123", "--hold", "300ms")
	if r.code != 0 {
		t.Fatalf("tools call: exit %d\n%s%s\nunit log:\n%s", r.code, r.stdout, r.stderr, unit.log)
	}
	t.Logf("tools call:\n%s", r.stdout)
	for _, want := range []string{"Result:  answered (200 OK)", "from pbx", "INVITE (SDP)", "180 Ringing", "ACK", "BYE", "itsp 127.0.0.3"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("tools call output lacks %q:\n%s", want, r.stdout)
		}
	}
	var res admin.CallResult
	if err := json.Unmarshal([]byte(mustCLI(t, dir, "tools", "call", "4930123", "--hold", "100ms", "--json")), &res); err != nil {
		t.Fatal(err)
	}
	var ladder []string
	for _, m := range res.Messages {
		ladder = append(ladder, m.Direction+" "+m.Label)
	}
	if res.Result != "answered" || res.Peer != "itsp" ||
		!slices.Equal(ladder, []string{"out INVITE", "in 180 Ringing", "in 200 OK", "out ACK", "out BYE", "in 200 OK"}) {
		t.Errorf("tools call --json: %s %s, ladder %v", res.Result, res.Peer, ladder)
	}

	r = palisade(t, dir, "tools", "ping", "sip:"+labAddr+";transport=udp")
	if r.code != 0 || !strings.Contains(r.stdout, "answered 200 OK") || !strings.Contains(r.stdout, "OPTIONS") || !strings.Contains(r.stdout, "Server: lab-peer") {
		t.Errorf("tools ping URI: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := palisade(t, dir, "tools", "ping", "http://x"); r.code == 0 || !strings.Contains(r.stderr, "SIP URI") {
		t.Errorf("tools ping http://x: exit %d %s", r.code, r.stderr)
	}
}

// waitListening waits until something holds UDP ip:port (sipp started).
func waitListening(t *testing.T, ip string, port int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.ListenPacket("udp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err != nil {
			return
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s:%d", ip, port)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
