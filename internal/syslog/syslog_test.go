package syslog

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/observe"
	"github.com/palisade-sbc/palisade/internal/observe/alarms"
	"github.com/palisade-sbc/palisade/internal/testkit"
)

func TestFormat(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 890000000, time.FixedZone("x", 3600))
	got := string(format(facilityCode("local3"), sevWarning, at, "sbc-1", 42, msgIDLog, []byte(`msg="peer down" peer=trunk`)))
	want := `<156>1 2026-03-04T04:06:07.890000Z sbc-1 palisade 42 log - msg="peer down" peer=trunk`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if got := string(format(facilityCode(""), sevInfo, at, "", 1, msgIDCDR, []byte("{}"))); !strings.HasPrefix(got, "<134>1 ") || !strings.Contains(got, " - palisade 1 cdr - {}") {
		t.Fatalf("defaults (local0, no hostname): %s", got)
	}
	for _, tc := range []struct {
		line  string
		level slog.Level
		rest  string
	}{
		{"level=WARN msg=x a=1\n", slog.LevelWarn, "msg=x a=1"},
		{"level=ERROR msg=y\n", slog.LevelError, "msg=y"},
		{"level=DEBUG-2 msg=z\n", slog.LevelDebug - 2, "msg=z"},
		{"msg=no-level\n", slog.LevelInfo, "msg=no-level\n"},
	} {
		l, rest := levelOf([]byte(tc.line))
		if l != tc.level || string(rest) != tc.rest {
			t.Errorf("%q: %v %q", tc.line, l, rest)
		}
	}
	for l, want := range map[slog.Level]int{slog.LevelDebug: 7, slog.LevelInfo: 6, slog.LevelWarn: 4, slog.LevelError: 3, slog.LevelError + 4: 3} {
		if got := severity(l); got != want {
			t.Errorf("severity(%v) = %d, want %d", l, got, want)
		}
	}
}

// rfc5424 matches a message as format makes it.
var rfc5424 = regexp.MustCompile(`^<(\d+)>1 (\S+) (\S+) palisade (\d+) (log|cdr) - (.*)$`)

// collector is a Go stand-in for a syslog server: UDP datagrams, or
// octet-counted frames over TCP or TLS.
type collector struct {
	addr string
	msgs chan string
	ln   net.Listener
}

func newCollector(t *testing.T, transport string, tlsConf *tls.Config) *collector {
	t.Helper()
	c := &collector{msgs: make(chan string, 10000)}
	if transport == "udp" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		c.addr = pc.LocalAddr().String()
		go func() {
			buf := make([]byte, 65536)
			for {
				n, _, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				c.msgs <- string(buf[:n])
			}
		}()
		return c
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if tlsConf != nil {
		ln = tls.NewListener(ln, tlsConf)
	}
	t.Cleanup(func() { ln.Close() })
	c.ln, c.addr = ln, ln.Addr().String()
	go c.serve()
	return c
}

// serve reads frames from every connection to c.ln.
func (c *collector) serve() {
	for {
		conn, err := c.ln.Accept()
		if err != nil {
			return
		}
		go c.readFrames(conn)
	}
}

func (c *collector) readFrames(conn net.Conn) {
	defer conn.Close()
	r := bufio.NewReader(conn)
	for {
		n, err := r.ReadString(' ')
		if err != nil {
			return
		}
		size, err := strconv.Atoi(strings.TrimSpace(n))
		if err != nil {
			c.msgs <- "BAD FRAME " + n
			return
		}
		b := make([]byte, size)
		if _, err := io.ReadFull(r, b); err != nil {
			return
		}
		c.msgs <- string(b)
	}
}

// next waits for a message whose MSG contains want.
func (c *collector) next(t *testing.T, want string) []string {
	t.Helper()
	deadline := time.After(60 * time.Second) // only a real failure waits this long
	for {
		select {
		case m := <-c.msgs:
			f := rfc5424.FindStringSubmatch(m)
			if f == nil {
				t.Fatalf("not an RFC 5424 message as sent: %q", m)
			}
			if strings.Contains(f[6], want) {
				return f
			}
		case <-deadline:
			t.Fatalf("no message with %q", want)
		}
	}
}

// certs stands in for the PKI: trust pool and the server name to check.
type certs struct{ pool *x509.CertPool }

// Like the PKI with tls.check_server_domain off: the chain is verified,
// the name is not (the syslog service checks it itself).
func (c certs) ClientConfig(string) (*tls.Config, error) {
	return &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("no certificate")
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: c.pool})
			return err
		}}, nil
}

// selfSigned makes a server certificate for name (and 127.0.0.1).
func selfSigned(t testing.TB, name string) (tls.Certificate, *x509.CertPool, []byte, []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		DNSNames: []string{name}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	kb, _ := x509.MarshalECPrivateKey(key)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return pair, pool, certPEM, keyPEM
}

// startService applies dests and returns the service with a logger teed
// into it.
func startService(t *testing.T, tc TLSConfigs, hostname string, dests ...config.SyslogDestination) (*Service, *slog.Logger) {
	t.Helper()
	s := New(tc, slog.New(slog.NewTextHandler(io.Discard, nil)))
	cfg := config.Default()
	cfg.Observe.Syslog = config.Syslog{Hostname: hostname, Destinations: dests}
	if errs := cfg.Validate(); errs != nil {
		t.Fatal(errs)
	}
	if err := s.Apply(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, slog.New(Tee(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug})))
}

func sampleCDR(id string) observe.CDR {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return observe.CDR{ID: id, Direction: observe.DirOutbound, Start: start, Answer: start.Add(2 * time.Second),
		End: start.Add(62 * time.Second), Duration: time.Minute, Code: 200, EndedBy: observe.EndedByCaller,
		A: observe.CallLeg{From: "sip:100@pbx", To: "sip:+4930123@trunk"}}
}

// Logs and call records reach a UDP, a TCP and a TLS collector, each with
// its facility and level filter, as RFC 5424 messages.
func TestSendToCollectors(t *testing.T) {
	pair, pool, _, _ := selfSigned(t, "collector.test")
	udp := newCollector(t, "udp", nil)
	tcp := newCollector(t, "tcp", nil)
	tlsc := newCollector(t, "tls", &tls.Config{Certificates: []tls.Certificate{pair}})
	s, log := startService(t, certs{pool}, "sbc-test",
		config.SyslogDestination{Address: udp.addr, Transport: "udp", Facility: "local1", Logs: true, LogLevel: "debug"},
		config.SyslogDestination{Address: tcp.addr, Transport: "tcp", Logs: true, LogLevel: "warn", CallRecords: true},
		config.SyslogDestination{Address: tlsc.addr, Transport: "tls", ServerName: "collector.test", CallRecords: true},
	)
	log.With("subsystem", "sip").Debug("debug detail", "n", 1)
	log.Warn("peer down", "peer", "trunk")
	s.CallRecord(sampleCDR("call-1"))

	f := udp.next(t, "debug detail")
	if f[1] != strconv.Itoa(17*8+7) || f[3] != "sbc-test" || f[5] != "log" || !strings.Contains(f[6], "subsystem=sip") || !strings.Contains(f[6], "n=1") {
		t.Errorf("udp debug record: %q", f)
	}
	if f := udp.next(t, "peer down"); f[1] != strconv.Itoa(17*8+4) {
		t.Errorf("udp warning: PRI %s, want local1.warning", f[1])
	}
	// TCP takes warnings, not debug: the first log message is the warning.
	if f := tcp.next(t, "msg="); !strings.Contains(f[6], `msg="peer down" peer=trunk`) || f[1] != strconv.Itoa(16*8+4) {
		t.Errorf("tcp: %q", f)
	}
	for _, c := range []*collector{tcp, tlsc} {
		f := c.next(t, `"id":"call-1"`)
		var got observe.CDR
		if err := json.Unmarshal([]byte(f[6]), &got); err != nil || got.ID != "call-1" || got.Code != 200 || got.Duration != time.Minute {
			t.Errorf("call record: %v %+v", err, got)
		}
		if f[5] != "cdr" || f[1] != strconv.Itoa(16*8+6) || f[2] != "2026-01-02T03:05:07.000000Z" {
			t.Errorf("call record header: %q", f[:6])
		}
	}
	// The sender counts after its write returns, which may be after the
	// collector has read the message.
	for _, label := range []string{"udp://" + udp.addr, "tcp://" + tcp.addr, "tls://" + tlsc.addr} {
		waitFor(t, label+" collector_up 1", func() bool { return testutil.ToFloat64(collectorUp.WithLabelValues(label)) == 1 })
	}
	waitFor(t, "tls sent_total{kind=cdr} 1", func() bool {
		return testutil.ToFloat64(sentTotal.WithLabelValues("tls://"+tlsc.addr, "cdr")) == 1
	})
}

// A collector whose certificate does not carry the configured name gets
// nothing: the handshake fails, the messages are dropped and counted.
func TestTLSWrongName(t *testing.T) {
	pair, pool, _, _ := selfSigned(t, "collector.test")
	tlsc := newCollector(t, "tls", &tls.Config{Certificates: []tls.Certificate{pair}})
	s, _ := startService(t, certs{pool}, "", config.SyslogDestination{Address: tlsc.addr, Transport: "tls", ServerName: "other.test", CallRecords: true})
	s.CallRecord(sampleCDR("x"))
	label := "tls://" + tlsc.addr
	waitFor(t, "the record dropped as unreachable", func() bool {
		return testutil.ToFloat64(droppedTotal.WithLabelValues(label, "unreachable")) >= 1
	})
	select {
	case m := <-tlsc.msgs:
		t.Fatalf("collector with the wrong name got %q", m)
	default:
	}
}

// A collector that is down or stops reading never holds up the caller:
// the queue fills, the rest is dropped and counted; once a collector
// listens again the sender reconnects.
func TestCollectorDownNeverBlocks(t *testing.T) {
	// A port where nothing listens (yet).
	port := testkit.FreePort(t, "tcp", "127.0.0.1")
	addr := "127.0.0.1:" + strconv.Itoa(port)
	s, log := startService(t, certs{}, "", config.SyslogDestination{Address: addr, Transport: "tcp", Logs: true, CallRecords: true, QueueSize: 10})
	for i := 0; i < 5000; i++ {
		log.Info("while down", "i", i)
		s.CallRecord(sampleCDR(fmt.Sprint(i)))
	}
	label := "tcp://" + addr
	if n := testutil.ToFloat64(droppedTotal.WithLabelValues(label, "queue_full")); n < 5000 {
		t.Errorf("queue_full drops %v, want most of 10000 with a queue of 10", n)
	}
	waitFor(t, "a failed connect counted", func() bool {
		return testutil.ToFloat64(droppedTotal.WithLabelValues(label, "unreachable")) >= 1
	})
	if v := testutil.ToFloat64(collectorUp.WithLabelValues(label)); v != 0 {
		t.Errorf("collector_up %v while down", v)
	}
	// The dashboard's alarm follows the gauge.
	w := alarms.NewWatcher(prometheus.DefaultGatherer)
	if c, ok := alarms.Find(w.Conditions(time.Now()), alarms.SyslogCollectorDown, label); !ok || c.Severity != alarms.Minor {
		t.Errorf("no minor syslog_collector_down alarm for %s while down: %+v", label, c)
	}
	// Shutdown does not wait for a collector that is down.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	err := s.Drain(ctx)
	cancel()
	if err == nil || !strings.Contains(err.Error(), "collector down") {
		t.Errorf("drain with the collector down: %v, want it to give up at once", err)
	}
	// The collector comes up on that port: the sender reconnects (after
	// its back-off) and later messages arrive.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skip("the port was taken meanwhile:", err)
	}
	c := &collector{msgs: make(chan string, 100000), ln: ln, addr: addr}
	t.Cleanup(func() { ln.Close() })
	go c.serve()
	stop := make(chan struct{})
	defer close(stop)
	go func() { // keep logging until the test sees one arrive
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				log.Info("after recovery", "i", i)
			}
		}
	}()
	c.next(t, "after recovery")
	waitFor(t, "collector_up back to 1", func() bool { return testutil.ToFloat64(collectorUp.WithLabelValues(label)) == 1 })
	if c, ok := alarms.Find(w.Conditions(time.Now()), alarms.SyslogCollectorDown, label); ok {
		t.Errorf("syslog_collector_down alarm after recovery: %+v", c)
	}
}

// A collector that accepts but never reads: the kernel buffers fill, the
// sender's write waits, and logging goes on regardless.
func TestStalledCollectorNeverBlocks(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	held := make(chan net.Conn, 4)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			held <- conn // never read
		}
	}()
	defer func() {
		for len(held) > 0 {
			(<-held).Close()
		}
	}()
	addr := ln.Addr().String()
	_, log := startService(t, certs{}, "", config.SyslogDestination{Address: addr, Transport: "tcp", Logs: true, QueueSize: 100})
	big := strings.Repeat("x", 4000)
	for i := 0; i < 20000; i++ { // ~80 MB: far beyond any socket buffer
		log.Info("stalled", "i", i, "pad", big)
	}
	if n := testutil.ToFloat64(droppedTotal.WithLabelValues("tcp://"+addr, "queue_full")); n == 0 {
		t.Fatal("nothing dropped although the collector reads nothing")
	}
}

// An apply that keeps a destination keeps its sender; one that removes it
// stops it; none left means the tee sends nothing.
func TestApplyKeepsAndRemoves(t *testing.T) {
	udp := newCollector(t, "udp", nil)
	d := config.SyslogDestination{Address: udp.addr, Transport: "udp", Logs: true}
	s, log := startService(t, certs{}, "", d)
	first := s.cur.Load().dests[0]
	cfg := config.Default()
	cfg.Observe.Syslog.Destinations = []config.SyslogDestination{d}
	cfg.Unit.Name = "changed elsewhere"
	if err := s.Apply(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if s.cur.Load().dests[0] != first {
		t.Fatal("an unchanged destination got a new sender")
	}
	log.Info("kept")
	udp.next(t, "kept")
	cfg.Observe.Syslog.Destinations = nil
	if err := s.Apply(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	select {
	case <-first.done:
	case <-time.After(60 * time.Second):
		t.Fatal("the removed destination's sender still runs")
	}
	if active.Load() != nil {
		t.Fatal("the tee still feeds a service without destinations")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for " + what)
		}
	}
}

// A datagram is cut at maxUDP; a stream carries the whole message.
func TestLongMessages(t *testing.T) {
	udp := newCollector(t, "udp", nil)
	tcp := newCollector(t, "tcp", nil)
	_, log := startService(t, certs{}, "",
		config.SyslogDestination{Address: udp.addr, Transport: "udp", Logs: true},
		config.SyslogDestination{Address: tcp.addr, Transport: "tcp", Logs: true})
	long := strings.Repeat("y", 3*maxUDP)
	log.Info("long", "v", long)
	if f := udp.next(t, "msg=long"); len(f[0]) != maxUDP {
		t.Errorf("udp datagram of %d bytes, want it cut at %d", len(f[0]), maxUDP)
	}
	if f := tcp.next(t, "msg=long"); !strings.HasSuffix(f[6], "v="+long) {
		t.Errorf("tcp message cut: %d bytes", len(f[0]))
	}
}
