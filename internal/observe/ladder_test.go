package observe

import (
	"bytes"
	"encoding/xml"
	"github.com/palisade-sbc/palisade/internal/testkit"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestLadderGolden(t *testing.T) {
	tests := []struct {
		name string
		busy bool
	}{
		{"ladder-answered.svg", false},
		{"ladder-busy.svg", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := NewTraces(10, time.Hour)
			traceAll(tr, testCall("c1", t0, "1001", "4687", tt.busy))
			msgs, _ := tr.Messages("c1")
			var b bytes.Buffer
			if err := WriteLadder(&b, "Call c1", msgs); err != nil {
				t.Fatal(err)
			}
			checkLadder(t, b.Bytes(), msgs)
			for _, lane := range []string{"PBX", "inside", "Palisade", "outside", "trunk"} {
				if !bytes.Contains(b.Bytes(), []byte(">"+lane+"</text>")) {
					t.Errorf("lane %q missing", lane)
				}
			}
			testkit.Golden(t, filepath.Join("testdata", tt.name), b.Bytes())
		})
	}
}

// checkLadder asserts what the golden file shows: well-formed XML, one
// clickable arrow per message in time order, each with its full text.
func checkLadder(t *testing.T, svg []byte, msgs []Message) {
	t.Helper()
	// Well-formed XML, and each arrow's data-message holds its whole message
	// with line breaks intact (what the web admin shows on a click).
	dec := xml.NewDecoder(bytes.NewReader(svg))
	var shown []string
	for {
		tok, err := dec.Token()
		if err != nil {
			if err.Error() == "EOF" {
				break
			}
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "g" {
			for _, a := range se.Attr {
				if a.Name.Local == "data-message" {
					shown = append(shown, a.Value)
				}
			}
		}
	}
	if len(shown) != len(msgs) {
		t.Fatalf("%d arrows with data-message for %d messages", len(shown), len(msgs))
	}
	for i, m := range msgs {
		body := strings.ReplaceAll(xmlUnsafe.Replace(m.Text), "\r", "")
		if !strings.HasSuffix(shown[i], body) {
			t.Errorf("arrow %d shows %q, want the message %q", i+1, shown[i], body)
		}
	}
	arrows := regexp.MustCompile(`<g class="msg[^"]*" id="m(\d+)"`).FindAllSubmatch(svg, -1)
	if len(arrows) != len(msgs) {
		t.Fatalf("%d arrows for %d messages", len(arrows), len(msgs))
	}
	s := string(svg)
	last := 0
	for i, m := range msgs {
		if string(arrows[i][1]) != itoa(m.Index) {
			t.Errorf("arrow %d is message %s", i, arrows[i][1])
		}
		callID := "Call-ID: " + m.SIPCallID
		at := strings.Index(s[last:], callID)
		if at < 0 {
			t.Errorf("message %d's text is not in its arrow's title", m.Index)
		}
		label := ">" + xmlEscape(arrowLabel(&m)) + "</text>"
		if !strings.Contains(s, label) {
			t.Errorf("label %q missing", m.Label)
		}
		last += max(at, 0)
	}
}

// xmlUnsafe is what xmlEscape replaces in hostile text.
var xmlUnsafe = strings.NewReplacer("\x00", "\uFFFD", "\x1b", "\uFFFD", "\xff", "\uFFFD")

func itoa(n int) string { return strings.TrimLeft(itoa3(n), "0") }

func TestLadderHostileText(t *testing.T) {
	m := testCall("c1", t0, "1", "2", false)[0]
	m.Raw = append([]byte("INVITE sip:x SIP/2.0\r\nX: <script>&\x00\x1b\xff]]>\r\n\r\n"), m.Raw...)
	tr := NewTraces(10, time.Hour)
	tr.TraceSIP(m)
	msgs, _ := tr.Messages("c1")
	var b bytes.Buffer
	if err := WriteLadder(&b, "<evil>", msgs); err != nil {
		t.Fatal(err)
	}
	checkLadder(t, b.Bytes(), msgs)
	if bytes.Contains(b.Bytes(), []byte("<script>")) {
		t.Fatal("message text not escaped")
	}
}

func TestLadderOneArmed(t *testing.T) {
	// Both legs on one interface: told apart by their SIP Call-IDs.
	call := testCall("c1", t0, "1", "2", false)
	for i := range call {
		call[i].Leg = "lan"
	}
	tr := NewTraces(10, time.Hour)
	traceAll(tr, call)
	msgs, _ := tr.Messages("c1")
	l := layout(msgs, nil)
	if len(l.lanes) != 5 {
		t.Fatalf("%d lanes, want 5", len(l.lanes))
	}
	if l.side(&msgs[0]) == l.side(&msgs[2]) {
		t.Fatal("both legs drawn on the same side")
	}
}

// FuzzTraceDrawExport sends outside bytes through the whole path an
// administrator looks at: trace store, ladder SVG (must stay well-formed
// XML) and pcap export.
func FuzzTraceDrawExport(f *testing.F) {
	for _, m := range testCall("seed", t0, "1001", "4687", true) {
		f.Add(m.Raw)
	}
	f.Add([]byte("SIP/2.0 200 \xff\x00<&>]]>\r\nCall-ID: \"'\r\n\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		tr := NewTraces(4, time.Hour)
		m := testCall("c1", t0, "1", "2", false)[0]
		m.Raw = raw
		tr.TraceSIP(m)
		m.Dir, m.Leg, m.Remote = Sent, "outside", trunkAddr
		tr.TraceSIP(m)
		msgs, ok := tr.Messages("c1")
		if !ok || len(msgs) != 2 {
			t.Fatalf("stored %d messages", len(msgs))
		}
		var svg, pcap bytes.Buffer
		if err := WriteLadder(&svg, string(raw), msgs); err != nil {
			t.Fatal(err)
		}
		dec := xml.NewDecoder(&svg)
		for {
			if _, err := dec.Token(); err != nil {
				if err.Error() != "EOF" {
					t.Fatalf("SVG not well-formed: %v", err)
				}
				break
			}
		}
		if err := WritePCAP(&pcap, msgs); err != nil {
			t.Fatal(err)
		}
	})
}

func TestLadderFailoverLanes(t *testing.T) {
	// The first trunk address answers 503, the second one takes the call:
	// each gets its own lane on the outside, the first nearest the unit.
	call := testCall("c1", t0, "1", "2", false)
	second := netip.MustParseAddrPort("203.0.113.6:5061")
	extra := []SIPMessage{call[2], call[3]} // INVITE out, 100 in: to the first trunk
	extra[1].Raw = []byte(strings.Replace(string(extra[1].Raw), "100 Trying", "503 Service Unavailable", 1))
	for i := 2; i < len(call); i++ {
		if call[i].Leg == "outside" {
			call[i].Remote = second
		}
	}
	tr := NewTraces(10, time.Hour)
	traceAll(tr, append(extra, call...))
	msgs, _ := tr.Messages("c1")
	l := layout(msgs, nil)
	var titles []string
	for _, ln := range l.lanes {
		titles = append(titles, ln.title+" "+ln.sub)
	}
	want := []string{"PBX 10.0.0.10:5060", "inside 10.0.0.1:5060 udp", "Palisade ", "outside 192.0.2.1:5061 tls",
		"trunk 203.0.113.5:5061", "trunk 203.0.113.6:5061"}
	if strings.Join(titles, "|") != strings.Join(want, "|") {
		t.Fatalf("lanes %q, want %q", titles, want)
	}
	var svg bytes.Buffer
	if err := WriteLadder(&svg, "failover", msgs); err != nil {
		t.Fatal(err)
	}
	checkLadder(t, svg.Bytes(), msgs)
	// With the configured peers' names, the lanes carry them.
	names := func(a netip.AddrPort) string {
		return map[string]string{"10.0.0.10:5060": "hq-pbx", "203.0.113.6:5061": "itsp-b"}[a.String()]
	}
	titles = nil
	for _, ln := range layout(msgs, names).lanes {
		titles = append(titles, ln.title)
	}
	if want := "hq-pbx|inside|Palisade|outside|trunk|itsp-b"; strings.Join(titles, "|") != want {
		t.Fatalf("named lanes %q, want %s", titles, want)
	}
}
