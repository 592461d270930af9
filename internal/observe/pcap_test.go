package observe

import (
	"bytes"
	"encoding/binary"
	"github.com/palisade-sbc/palisade/internal/testkit"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestPCAPReadByTshark(t *testing.T) {
	tshark := testkit.NeedBinary(t, "tshark", "tshark")
	tr := NewTraces(10, time.Hour)
	traceAll(tr, testCall("c1", t0, "1001", "4687", false))
	traceAll(tr, testCall("c2", t0.Add(time.Second), "1002", "4688", true))
	// One IPv6 call too, so both families share the file.
	v6 := testCall("c3", t0.Add(2*time.Second), "1003", "4689", false)
	for i := range v6 {
		if v6[i].Leg == "outside" {
			v6[i].Local = netip.MustParseAddrPort("[2001:db8::1]:5061")
			v6[i].Remote = netip.MustParseAddrPort("[2001:db8::5]:5061")
		}
	}
	traceAll(tr, v6)
	msgs := tr.Window(time.Time{}, time.Time{})

	path := filepath.Join(t.TempDir(), "export.pcap")
	var b bytes.Buffer
	if err := WritePCAP(&b, msgs); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(tshark, "-n", "-r", path, "-o", "udp.check_checksum:TRUE",
		"-Y", "sip && !_ws.expert.severity >= warning", "-T", "fields",
		"-e", "sip.Method", "-e", "sip.Status-Code", "-e", "ip.src", "-e", "ipv6.src", "-e", "udp.srcport", "-e", "sip.Call-ID")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, stderr.Bytes())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(msgs) {
		t.Fatalf("tshark read %d SIP messages without warnings, want %d:\n%s", len(lines), len(msgs), out)
	}
	for i, line := range lines {
		f := strings.Split(line, "\t")
		if len(f) != 6 {
			t.Fatalf("line %d: %q", i, line)
		}
		m := msgs[i]
		want := m.Method
		if m.Status != 0 {
			want = strconv.Itoa(m.Status)
			if f[1] != want {
				t.Errorf("packet %d: status %q, want %s", i+1, f[1], want)
			}
		} else if f[0] != want {
			t.Errorf("packet %d: method %q, want %s", i+1, f[0], want)
		}
		src := m.Remote
		if m.Direction == "out" {
			src = m.Local
		}
		if got := f[2] + f[3]; got != src.Addr().String() || f[4] != strconv.Itoa(int(src.Port())) {
			t.Errorf("packet %d: from %s:%s, want %s", i+1, got, f[4], src)
		}
		if f[5] != m.SIPCallID {
			t.Errorf("packet %d: Call-ID %q, want %q", i+1, f[5], m.SIPCallID)
		}
	}
}

func TestPCAPLayout(t *testing.T) {
	msgs := []Message{{
		Time: time.Unix(1700000000, 123456000), Direction: "out", Text: "OPTIONS sip:x SIP/2.0\r\n\r\n",
		Local: netip.MustParseAddrPort("10.0.0.1:5060"), Remote: netip.MustParseAddrPort("10.0.0.2:5070"),
	}}
	var b bytes.Buffer
	if err := WritePCAP(&b, msgs); err != nil {
		t.Fatal(err)
	}
	p := b.Bytes()
	if binary.LittleEndian.Uint32(p[0:]) != pcapMagic || binary.LittleEndian.Uint32(p[20:]) != linktypeRaw {
		t.Fatal("bad file header")
	}
	rec := p[24:]
	if sec, us := binary.LittleEndian.Uint32(rec[0:]), binary.LittleEndian.Uint32(rec[4:]); sec != 1700000000 || us != 123456 {
		t.Errorf("timestamp %d.%06d", sec, us)
	}
	pkt := rec[16:]
	if n := binary.LittleEndian.Uint32(rec[8:]); int(n) != len(pkt) || len(pkt) != 28+len(msgs[0].Text) {
		t.Fatalf("record length %d, packet %d", n, len(pkt))
	}
	if checksum(0, pkt[:20]) != 0 {
		t.Error("IPv4 header checksum does not verify")
	}
	if got := netip.AddrFrom4([4]byte(pkt[12:16])); got.String() != "10.0.0.1" {
		t.Errorf("source %s", got)
	}
	if sp, dp := binary.BigEndian.Uint16(pkt[20:]), binary.BigEndian.Uint16(pkt[22:]); sp != 5060 || dp != 5070 {
		t.Errorf("ports %d → %d", sp, dp)
	}
	if string(pkt[28:]) != msgs[0].Text {
		t.Error("payload differs")
	}
}
