package hep

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/observe"
	"github.com/palisade-sbc/palisade/internal/observe/alarms"
	"github.com/palisade-sbc/palisade/internal/testkit"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func message(i int, dir observe.Direction, transport string) observe.SIPMessage {
	raw := fmt.Sprintf("OPTIONS sip:x@example.com SIP/2.0\r\nCall-ID: c%d\r\nCSeq: %d OPTIONS\r\nContent-Length: 0\r\n\r\n", i, i)
	return observe.SIPMessage{CallID: fmt.Sprintf("u%d", i), Leg: "outside", Dir: dir, Transport: transport,
		Local: netip.MustParseAddrPort("127.0.0.2:5061"), Remote: netip.MustParseAddrPort("127.0.0.3:40000"),
		Time: time.Unix(1_800_000_000, int64(i)*1000), Raw: []byte(raw)}
}

func hepConfig(queue int, cols ...config.HEPCollector) *config.Config {
	cfg := config.Default()
	cfg.Unit.Name = "sbc-test"
	cfg.HEP = config.HEP{Enabled: true, Collectors: cols, NodeID: 42, Password: "pw", QueueSize: queue}
	return cfg
}

func applyExporter(t *testing.T, cfg *config.Config) *Exporter {
	t.Helper()
	if errs := cfg.Validate(); errs != nil {
		t.Fatal(errs)
	}
	e := New(nil)
	if err := e.Apply(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// checkPacket compares a received packet with the message it came from.
func checkPacket(t *testing.T, p Packet, m observe.SIPMessage) {
	t.Helper()
	src, dst, proto := m.Remote, m.Local, uint8(ProtoUDP)
	if m.Dir == observe.Sent {
		src, dst = m.Local, m.Remote
	}
	if m.Transport != "udp" {
		proto = ProtoTCP
	}
	if p.Src != src || p.Dst != dst || p.Proto != proto || !p.Time.Equal(m.Time) || p.Type != TypeSIP ||
		p.NodeID != 42 || p.NodeName != "sbc-test" || p.AuthKey != "pw" || p.CorrelationID != m.CallID || !bytes.Equal(p.Payload, m.Raw) {
		t.Errorf("packet %+v\nfrom message %+v", p, m)
	}
}

func TestExportUDP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	e := applyExporter(t, hepConfig(100, config.HEPCollector{Address: pc.LocalAddr().String(), Transport: "udp"}))
	var msgs []observe.SIPMessage
	for i := range 20 {
		m := message(i, observe.Direction(i%2), []string{"udp", "tls"}[i%2])
		msgs = append(msgs, m)
		e.TraceSIP(m)
	}
	buf := make([]byte, 70000)
	pc.SetReadDeadline(time.Now().Add(30 * time.Second))
	for _, m := range msgs {
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		p, _, err := Decode(buf[:n])
		if err != nil {
			t.Fatal(err)
		}
		checkPacket(t, p, m)
	}
}

func TestExportTCPReconnects(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	e := applyExporter(t, hepConfig(100, config.HEPCollector{Address: ln.Addr().String(), Transport: "tcp"}))
	read := func(c net.Conn, m observe.SIPMessage) {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		r := bufio.NewReader(c)
		head, err := r.Peek(6)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, binary.BigEndian.Uint16(head[4:]))
		if _, err := io.ReadFull(r, b); err != nil {
			t.Fatal(err)
		}
		p, _, err := Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		checkPacket(t, p, m)
	}
	e.TraceSIP(message(1, observe.Received, "tcp"))
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	read(c, message(1, observe.Received, "tcp"))
	c.Close() // the collector restarts: the exporter connects anew
	label := "tcp:" + ln.Addr().String()
	for i := 2; ; i++ {
		e.TraceSIP(message(i, observe.Sent, "tcp"))
		if testutil.ToFloat64(dropped.WithLabelValues(label, "write_error"))+testutil.ToFloat64(dropped.WithLabelValues(label, "collector_down")) > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	// After the retry pause, the next message opens a new connection.
	next := make(chan net.Conn)
	go func() {
		c, _ := ln.Accept()
		next <- c
	}()
	for i := 1000; ; i++ {
		m := message(i, observe.Sent, "tls")
		e.TraceSIP(m)
		select {
		case c := <-next:
			defer c.Close()
			read(c, m)
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestCollectorDownOrSlow: a collector that refuses or never reads costs
// dropped packets, counted, and TraceSIP still returns at once (were it to
// wait, the test would hang on the first full queue).
func TestCollectorDownOrSlow(t *testing.T) {
	down := fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t, "tcp", "127.0.0.1"))
	slow, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	go func() { // accepts and never reads
		for {
			c, err := slow.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	e := applyExporter(t, hepConfig(4, config.HEPCollector{Address: down, Transport: "tcp"},
		config.HEPCollector{Address: slow.Addr().String(), Transport: "tcp"}))
	m := message(1, observe.Received, "udp")
	m.Raw = []byte("MESSAGE sip:x SIP/2.0\r\n\r\n" + strings.Repeat("x", 60000))
	full := func(label, reason string) float64 { return testutil.ToFloat64(dropped.WithLabelValues(label, reason)) }
	for full("tcp:"+slow.Addr().String(), "queue_full") == 0 || full("tcp:"+down, "collector_down") == 0 {
		e.TraceSIP(m)
	}
	if up := testutil.ToFloat64(collectorUp.WithLabelValues("tcp:" + down)); up != 0 {
		t.Errorf("collector_up of the refusing collector is %v", up)
	}
	// The dashboard's alarm: the refusing collector is down.
	if c, ok := alarms.Find(alarms.NewWatcher(prometheus.DefaultGatherer).Conditions(time.Now()), alarms.HEPCollectorDown, "tcp:"+down); !ok || c.Severity != alarms.Minor {
		t.Errorf("no minor hep_collector_down alarm for the refusing collector: %+v", c)
	}
	// Close ends a write stuck on the collector that does not read rather
	// than waiting for the write timeout.
	e.Close()
}

func TestApplyKeepsAndStopsCollectors(t *testing.T) {
	a := config.HEPCollector{Address: "127.0.0.1:9", Transport: "udp"}
	b := config.HEPCollector{Address: "127.0.0.1:10", Transport: "udp"}
	e := applyExporter(t, hepConfig(10, a, b))
	first := e.collectors
	if err := e.Apply(context.Background(), hepConfig(10, a)); err != nil {
		t.Fatal(err)
	}
	ka := collectorKey{"udp", a.Address, 10}
	if len(e.collectors) != 1 || e.collectors[ka] != first[ka] {
		t.Fatalf("collectors after removing one: %v", e.collectors)
	}
	select {
	case <-first[collectorKey{"udp", b.Address, 10}].done:
	default:
		t.Error("the removed collector still runs")
	}
	off := hepConfig(10, a)
	off.HEP.Enabled = false
	if err := e.Apply(context.Background(), off); err != nil {
		t.Fatal(err)
	}
	if len(e.collectors) != 0 || len(e.cur.Load().collectors) != 0 {
		t.Error("disabled export keeps collectors")
	}
}
