package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/palisade-sbc/palisade/internal/admin"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/testkit"
)

// optionsPeer answers OPTIONS 200 over UDP while answering is on; off, it
// stays silent like a peer that stopped.
type optionsPeer struct {
	conn   net.PacketConn
	answer atomic.Bool
}

func newOptionsPeer(t *testing.T, addr string) *optionsPeer {
	t.Helper()
	c, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	p := &optionsPeer{conn: c}
	p.answer.Store(true)
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			if !p.answer.Load() || !bytes.HasPrefix(buf[:n], []byte("OPTIONS ")) {
				continue
			}
			var res strings.Builder
			res.WriteString("SIP/2.0 200 OK\r\n")
			for _, line := range strings.Split(string(buf[:n]), "\r\n") {
				name, _, _ := strings.Cut(line, ":")
				switch strings.ToLower(strings.TrimSpace(name)) {
				case "via", "v", "from", "f", "call-id", "i", "cseq":
					res.WriteString(line + "\r\n")
				case "to", "t":
					res.WriteString(line + ";tag=lab\r\n")
				}
			}
			res.WriteString("Server: lab-peer\r\nContent-Length: 0\r\n\r\n")
			_, _ = c.WriteTo([]byte(res.String()), from)
		}
	}()
	return p
}

// sippConfig is testConfigFile's configuration for calls from sipp as the
// PBX (127.0.0.1:pbxPort, inside) to sipp as the trunk
// (127.0.0.3:trunkPort, outside, on a UDP listener of its own), with
// plain RTP.
func sippConfig(t *testing.T, pbxPort, trunkPort int) *config.Config {
	t.Helper()
	cfg := decodedTestConfig(t)
	cfg.SIP.Listeners = append(cfg.SIP.Listeners, config.Listener{Interface: "outside", Transport: "udp", Port: testkit.FreePort(t, "udp", "127.0.0.2")})
	cfg.Peers = []config.Peer{
		{Name: "pbx", Kind: "pbx", Interface: "inside", Address: fmt.Sprintf("127.0.0.1:%d", pbxPort), Transport: "udp"},
		{Name: "itsp", Kind: "itsp", Interface: "outside", Address: fmt.Sprintf("127.0.0.3:%d", trunkPort), Transport: "udp"},
	}
	cfg.Network.DNSServers = []string{"127.0.0.1:9"}
	cfg.Media.Policies = []config.MediaPolicy{}
	cfg.Media.DefaultPolicy.RTPProfile = "avp"
	return cfg
}

// sippCalls places calls (rate a second, each holding holdMS) from sipp
// as the PBX to sipp as the trunk through the unit's inside listener,
// and returns the UAC's output.
func sippCalls(t *testing.T, sipp string, calls, rate, holdMS, pbxPort, trunkPort int, inside string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(60+2*calls/rate)*time.Second)
	defer cancel()
	work := t.TempDir()
	// The trunk runs until the UAC is done (no call count of its own: a
	// stray message must not end it early) and listens before the first call.
	defer startUAS(t, sipp, trunkPort).Stop(0)
	uac := exec.CommandContext(ctx, sipp, "-sn", "uac", "-i", "127.0.0.1", "-p", fmt.Sprint(pbxPort), "-s", "4687",
		"-m", fmt.Sprint(calls), "-r", fmt.Sprint(rate), "-d", fmt.Sprint(holdMS), "-timeout", fmt.Sprintf("%ds", 40+2*calls/rate),
		"-nostdin", inside)
	uac.Dir = work
	return uac.CombinedOutput()
}

// TestDashboardThroughRunningUnit: after real calls through `palisade run`
// the dashboard counts them (ASR, ACD); a peer that stops answering its
// OPTIONS raises the peer_down alarm, which clears when it answers again.
func TestDashboardThroughRunningUnit(t *testing.T) {
	sipp := testkit.NeedBinary(t, "sipp", "sip-tester")
	dir := filepath.Join(t.TempDir(), "data")
	pbxPort, trunkPort := testkit.FreePort(t, "udp", "127.0.0.1"), testkit.FreePort(t, "udp", "127.0.0.3")
	labAddr := fmt.Sprintf("127.0.0.4:%d", testkit.FreePort(t, "udp", "127.0.0.4"))
	lab := newOptionsPeer(t, labAddr)
	cfg := sippConfig(t, pbxPort, trunkPort)
	cfg.Peers = append(cfg.Peers,
		config.Peer{Name: "lab", Kind: "itsp", Interface: "outside", Address: labAddr, Transport: "udp", OptionsInterval: config.Duration(time.Second)})
	initial := writeInitial(t, cfg)
	unit := startUnit(t, dir, initial)

	const calls = 2
	if out, err := sippCalls(t, sipp, calls, 5, 1000, pbxPort, trunkPort, fmt.Sprintf("127.0.0.1:%d", cfg.SIP.Listeners[0].Port)); err != nil {
		t.Fatalf("sipp uac: %v\n%s\nunit log:\n%s", err, out, unit.log)
	}

	dash := func() admin.Dashboard {
		t.Helper()
		var d admin.Dashboard
		if err := json.Unmarshal([]byte(mustCLI(t, dir, "dashboard", "--json")), &d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	// waitFor asks the dashboard until ok (generous bound: a real failure only).
	waitFor := func(what string, ok func(admin.Dashboard) bool) admin.Dashboard {
		t.Helper()
		deadline := time.Now().Add(3 * time.Minute)
		for {
			d := dash()
			if ok(d) {
				return d
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: dashboard %+v\nunit log:\n%s", what, d, unit.log)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	d := waitFor("two answered calls", func(d admin.Dashboard) bool { return len(d.Stats) == 3 && d.Stats[0].Ended == calls })
	s := d.Stats[0]
	if s.Name != "5m" || s.Attempts != calls || s.Answered != calls || s.ASR != 100 || s.ACD < 900*time.Millisecond || s.Failed != 0 {
		t.Errorf("last 5 minutes: %+v", s)
	}
	peerState := func(d admin.Dashboard, name string) string {
		for _, p := range d.Peers {
			if p.Name == name {
				return p.State
			}
		}
		return ""
	}
	// A peer with keepalive is "up" only after its first answer; without
	// keepalive it is not monitored.
	waitFor("lab up", func(d admin.Dashboard) bool { return peerState(d, "lab") == "up" })
	if st := peerState(d, "itsp"); st != "unmonitored" {
		t.Errorf("itsp without keepalive: %q", st)
	}
	hasAlarm := func(d admin.Dashboard) bool {
		for _, a := range d.Alarms {
			if a.Kind == "peer_down" && a.Subject == "lab" {
				return true
			}
		}
		return false
	}
	br := newUnitBrowser(t, dir)
	if br != nil {
		br.run(t, "dashboard after calls",
			br.waitText("#traffic-stats tr[data-window='5m'] .answered", "2"),
			br.waitText("#traffic-stats tr[data-window='5m'] .asr", "100 %"),
			br.waitText("#dash-peers tr[data-peer='lab']", "up"),
			br.waitText("#dash-peers tr[data-peer='itsp']", "not monitored"),
			br.shot("01-dashboard-after-calls"))
	}
	lab.answer.Store(false)
	waitFor("peer_down alarm for lab", hasAlarm)
	if br != nil {
		br.run(t, "alarm raised", br.waitText("#alarms tr[data-kind='peer_down'][data-subject='lab']", "does not answer"),
			br.shot("02-dashboard-peer-down"))
	}
	if out := mustCLI(t, dir, "status", "alarms"); !strings.Contains(out, "peer_down") || !strings.Contains(out, "lab") {
		t.Errorf("status alarms:\n%s", out)
	}
	lab.answer.Store(true)
	d = waitFor("lab's alarm cleared", func(d admin.Dashboard) bool { return !hasAlarm(d) && peerState(d, "lab") == "up" })
	if br != nil {
		br.run(t, "alarm cleared", br.waitText("#no-alarms", "No active alarms"),
			chromedp.Click(chromedp.CSS("#cleared-alarms summary"), chromedp.NodeVisible),
			br.waitText("#cleared-alarms tr[data-kind='peer_down']", "lab"),
			br.shot("03-dashboard-alarm-cleared"))
	}
	if len(d.Cleared) == 0 || d.Cleared[0].Subject != "lab" || !d.Cleared[0].Cleared.After(d.Cleared[0].Raised) {
		t.Errorf("cleared alarms: %+v", d.Cleared)
	}
	if out := mustCLI(t, dir, "dashboard"); !strings.Contains(out, "Alarms: none") || !strings.Contains(out, "100 %") {
		t.Errorf("dashboard:\n%s", out)
	}
}
