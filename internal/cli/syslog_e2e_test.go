package cli

import (
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/testkit"
)

// A unit with observe.syslog sends its own log records (here the start
// message) to the collector: run.go's tee and wire.go's subsystem are in
// place.
func TestRunSendsLogsToSyslog(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	initial := testConfigFile(t)
	b, err := os.ReadFile(initial)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Observe.Syslog.Hostname = "e2e-unit"
	// The TLS destination (nothing listens there) takes its TLS settings
	// from the PKI subsystem on apply; the unit starts with it all the same.
	tlsAddr := "127.0.0.1:" + strconv.Itoa(testkit.FreePort(t, "tcp", "127.0.0.1"))
	cfg.Observe.Syslog.Destinations = []config.SyslogDestination{
		{Address: pc.LocalAddr().String(), Transport: "udp", Logs: true},
		{Address: tlsAddr, Transport: "tls", ServerName: "collector.example.com", CallRecords: true},
	}
	if b, err = config.Encode(cfg); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(initial, b, 0o600); err != nil {
		t.Fatal(err)
	}
	u := startUnit(t, t.TempDir(), initial)
	defer u.stop(t)
	buf := make([]byte, 65536)
	for {
		pc.SetReadDeadline(time.Now().Add(60 * time.Second)) // only a failure waits this long
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("no syslog message with the start record: %v\n%s", err, u.log)
		}
		m := string(buf[:n])
		if strings.Contains(m, `msg="unit running"`) {
			if !strings.HasPrefix(m, "<134>1 ") || !strings.Contains(m, " e2e-unit palisade ") {
				t.Fatalf("message %q: want local0.info from host e2e-unit", m)
			}
			return
		}
	}
}
