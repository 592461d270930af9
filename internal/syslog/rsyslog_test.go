package syslog

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/testkit"
)

// Debian's rsyslog, started here on loopback with one input per
// transport (UDP, TCP, TLS with GnuTLS), each writing what it parsed
// (RFC 5424 fields) to its own file, receives the unit's logs and call
// records as they were sent.
func TestRsyslog(t *testing.T) {
	rsyslogd := testkit.NeedBinary(t, "rsyslogd", "rsyslog")
	if _, err := os.Stat("/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so"); err != nil {
		if m, _ := filepath.Glob("/usr/lib/*/rsyslog/lmnsd_gtls.so"); len(m) == 0 {
			t.Skip("install Debian package rsyslog-gnutls")
		}
	}
	dir := t.TempDir()
	_, pool, certPEM, keyPEM := selfSigned(t, "collector.test")
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ca := write("cert.pem", string(certPEM))
	key := write("key.pem", string(keyPEM))
	udpPort := testkit.FreePort(t, "udp", "127.0.0.1")
	tcpPort := testkit.FreePort(t, "tcp", "127.0.0.1")
	tlsPort := testkit.FreePort(t, "tcp", "127.0.0.1")
	os.MkdirAll(filepath.Join(dir, "work"), 0o700)
	conf := write("rsyslog.conf", fmt.Sprintf(`
global(workDirectory="%[1]s/work" maxMessageSize="64k"
       defaultNetstreamDriverCAFile="%[2]s" defaultNetstreamDriverCertFile="%[2]s"
       defaultNetstreamDriverKeyFile="%[3]s")
module(load="imudp")
module(load="imtcp")
template(name="fields" type="string"
         string="pri=%%pri%% ver=%%protocol-version%% time=%%timereported:::date-rfc3339%% host=%%hostname%% app=%%app-name%% procid=%%procid%% msgid=%%msgid%% msg=%%msg%%\n")
ruleset(name="udp") { action(type="omfile" file="%[1]s/udp.log" template="fields") }
ruleset(name="tcp") { action(type="omfile" file="%[1]s/tcp.log" template="fields") }
ruleset(name="tls") { action(type="omfile" file="%[1]s/tls.log" template="fields") }
input(type="imudp" address="127.0.0.1" port="%[4]d" ruleset="udp")
input(type="imtcp" address="127.0.0.1" port="%[5]d" ruleset="tcp")
input(type="imtcp" address="127.0.0.1" port="%[6]d" ruleset="tls"
      streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")
`, dir, ca, key, udpPort, tcpPort, tlsPort))
	if out, err := exec.Command(rsyslogd, "-N1", "-f", conf).CombinedOutput(); err != nil {
		t.Fatalf("rsyslogd -N1 (config check): %v\n%s", err, out)
	}
	rlog := &testkit.SyncBuffer{}
	cmd := exec.Command(rsyslogd, "-n", "-f", conf, "-i", filepath.Join(dir, "rsyslogd.pid"))
	cmd.Stdout, cmd.Stderr = rlog, rlog
	testkit.Start(t, cmd, 5*time.Second)
	for _, p := range []int{tcpPort, tlsPort} {
		waitFor(t, "rsyslogd listening on "+strconv.Itoa(p), func() bool {
			c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err == nil {
				c.Close()
			}
			return err == nil
		})
	}

	udpAddr := "127.0.0.1:" + strconv.Itoa(udpPort)
	s, log := startService(t, certs{pool}, "sbc-rsyslog",
		config.SyslogDestination{Address: udpAddr, Transport: "udp", Facility: "local5", Logs: true},
		config.SyslogDestination{Address: "127.0.0.1:" + strconv.Itoa(tcpPort), Transport: "tcp", Logs: true, CallRecords: true},
		config.SyslogDestination{Address: "127.0.0.1:" + strconv.Itoa(tlsPort), Transport: "tls", ServerName: "collector.test", Logs: true, CallRecords: true},
	)
	// UDP has no handshake: send until rsyslog's UDP input shows it is up.
	waitFor(t, "rsyslog's UDP input", func() bool {
		log.Info("udp probe")
		return strings.Contains(readLog(dir, "udp.log"), "udp probe")
	})
	log.Warn("trunk unreachable", "peer", "itsp", "attempts", 3)
	s.CallRecord(sampleCDR("rsyslog-call-1"))

	lines := map[string]string{}
	for _, name := range []string{"udp.log", "tcp.log", "tls.log"} {
		waitFor(t, "the warning in rsyslog's "+name, func() bool {
			return strings.Contains(readLog(dir, name), "trunk unreachable")
		})
		lines[name] = lineWith(readLog(dir, name), "trunk unreachable")
	}
	for name, want := range map[string]string{
		"udp.log": "pri=172 ver=1 ", // local5.warning
		"tcp.log": "pri=132 ver=1 ", // local0.warning
		"tls.log": "pri=132 ver=1 ",
	} {
		l := lines[name]
		if !strings.HasPrefix(l, want) || !strings.Contains(l, " host=sbc-rsyslog app=palisade procid="+strconv.Itoa(os.Getpid())+" msgid=log ") ||
			!strings.Contains(l, `msg="trunk unreachable" peer=itsp attempts=3`) {
			t.Errorf("%s: %q\nwant prefix %q, host, app, procid, msgid and the record", name, l, want)
		}
	}
	for _, name := range []string{"tcp.log", "tls.log"} {
		waitFor(t, "the call record in rsyslog's "+name, func() bool {
			return strings.Contains(readLog(dir, name), `"id":"rsyslog-call-1"`)
		})
		l := lineWith(readLog(dir, name), `"id":"rsyslog-call-1"`)
		if !strings.Contains(l, "pri=134 ver=1 time=2026-01-02T03:05:07") || !strings.Contains(l, "msgid=cdr msg={") || !strings.Contains(l, `"code":200`) {
			t.Errorf("%s: call record line %q", name, l)
		}
	}
	if strings.Contains(readLog(dir, "udp.log"), "rsyslog-call-1") {
		t.Error("the UDP destination (logs only) got a call record")
	}
	if t.Failed() {
		t.Log("rsyslogd output:\n" + testkit.LastLines(rlog.String(), 30))
	}
}

func readLog(dir, name string) string {
	b, _ := os.ReadFile(filepath.Join(dir, name))
	return string(b)
}

func lineWith(text, s string) string {
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}
