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
		{Address: pc.LocalAddr().String(), Transport: "udp", Logs: true, CallRecords: true},
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
	next := func(what, want string) string {
		t.Helper()
		buf := make([]byte, 65536)
		for {
			pc.SetReadDeadline(time.Now().Add(60 * time.Second)) // only a failure waits this long
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				t.Fatalf("no syslog message with %s: %v\n%s", what, err, u.log)
			}
			if m := string(buf[:n]); strings.Contains(m, want) {
				return m
			}
		}
	}
	m := next("the start record", `msg="unit running"`)
	if !strings.HasPrefix(m, "<134>1 ") || !strings.Contains(m, " e2e-unit palisade ") {
		t.Fatalf("message %q: want local0.info from host e2e-unit", m)
	}

	// A call the unit cannot route still ends with a call record, which
	// observe's recorder hands to the syslog service.
	var in config.Listener
	for _, l := range cfg.SIP.Listeners {
		if l.Interface == "inside" && l.Transport == "udp" {
			in = l
		}
	}
	sip, err := net.Dial("udp", "127.0.0.1:"+strconv.Itoa(in.Port))
	if err != nil {
		t.Fatal(err)
	}
	defer sip.Close()
	local := sip.LocalAddr().String()
	invite := "INVITE sip:4999@127.0.0.1 SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + local + ";branch=z9hG4bK-syslog-e2e\r\n" +
		"Max-Forwards: 70\r\nFrom: <sip:1001@127.0.0.1>;tag=a1\r\nTo: <sip:4999@127.0.0.1>\r\n" +
		"Call-ID: syslog-e2e-call\r\nCSeq: 1 INVITE\r\nContact: <sip:1001@" + local + ">\r\nContent-Length: 0\r\n\r\n"
	if _, err := sip.Write([]byte(invite)); err != nil {
		t.Fatal(err)
	}
	m = next("a call record", " cdr - {")
	if !strings.HasPrefix(m, "<134>1 ") || !strings.Contains(m, `"call_id":"syslog-e2e-call"`) || !strings.Contains(m, `"code":`) {
		t.Fatalf("call record message %q", m)
	}
}
