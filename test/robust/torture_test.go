package robust_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// tortureMsg is one RFC 4475 message ready to send.
type tortureMsg struct {
	name  string
	valid bool
	data  []byte
}

// loadTorture reads testdata/torture/{valid,invalid}: LF becomes CRLF and
// {{LEN}} the real body length. longreq (very long header values, many
// Vias) is generated here rather than stored.
func loadTorture(t *testing.T) []tortureMsg {
	t.Helper()
	var out []tortureMsg
	for _, kind := range []string{"valid", "invalid"} {
		files, err := filepath.Glob(filepath.Join("testdata", "torture", kind, "*.sip"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no torture messages in testdata/torture/%s: %v", kind, err)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, tortureMsg{name: strings.TrimSuffix(filepath.Base(f), ".sip"), valid: kind == "valid", data: crlf(b)})
		}
	}
	return append(out, tortureMsg{name: "longreq", valid: true, data: crlf([]byte(longreq()))})
}

func crlf(b []byte) []byte {
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	b = bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
	if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
		body := len(b) - i - 4
		b = bytes.Replace(b, []byte("{{LEN}}"), []byte(strconv.Itoa(body)), 1)
	}
	return b
}

// longreq is RFC 4475's "long values in header fields": a long To display
// name and tag, a long Call-ID, dozens of Vias and a long unknown header.
func longreq() string {
	long := strings.Repeat("amazinglylongcallid", 30)
	var b strings.Builder
	fmt.Fprintf(&b, "INVITE sip:user@example.com SIP/2.0\n")
	fmt.Fprintf(&b, "To: \"I have a user name of %s\" <sip:user@example.com>\n", strings.Repeat("extreme ", 40))
	fmt.Fprintf(&b, "From: sip:caller@example.net;tag=%s\n", strings.Repeat("12982424", 30))
	fmt.Fprintf(&b, "Call-ID: longreq.%s\nCSeq: 1 INVITE\nMax-Forwards: 70\n", long)
	fmt.Fprintf(&b, "Unknown-LongLongLongLongLongLongLongLongLongLongLongLongLongLongLongLongLongLong-Name: unknown-%s\n", strings.Repeat("long", 100))
	for i := range 34 {
		fmt.Fprintf(&b, "Via: SIP/2.0/TCP sip%d.example.com;branch=z9hG4bK%s%d\n", i, strings.Repeat("kdjuw", 4), i)
	}
	b.WriteString("Contact: <sip:amazinglylongcallid@host5.example.net>\nContent-Type: application/sdp\nl: {{LEN}}\n\n")
	b.WriteString("v=0\no=mhandley 29739 7272939 IN IP4 192.0.2.5\ns=-\nc=IN IP4 192.0.2.5\nt=0 0\nm=audio 49217 RTP/AVP 0\n")
	return b.String()
}

// outcome is what came back for one message: every status code in order
// and the header section of each response.
type outcome struct {
	codes []int
	heads []string
}

func (o *outcome) add(code int, head string) {
	o.codes = append(o.codes, code)
	o.heads = append(o.heads, head)
}

// provisional reports whether a 1xx came back: the request was taken as a
// call. (Answers caught over UDP and over the connection are not in wire
// order relative to each other, so any 1xx counts, not only the first.)
func (o outcome) provisional() bool {
	for _, c := range o.codes {
		if c >= 100 && c < 200 {
			return true
		}
	}
	return false
}

// finalHas reports whether the last final response carries header name.
func (o outcome) finalHas(name string) bool {
	re := regexp.MustCompile(`(?mi)^` + regexp.QuoteMeta(name) + `[ \t]*:`)
	for i := len(o.codes) - 1; i >= 0; i-- {
		if o.codes[i] >= 200 {
			return re.MatchString(o.heads[i])
		}
	}
	return false
}

// of keeps the answers to requests of method: a message that holds two
// requests (dblreq: a REGISTER and then an INVITE in one datagram) is two
// requests over TCP, each with its own answer, and the two answers come
// back in either order (each request is handled in its own goroutine).
func (o outcome) of(method string) outcome {
	var out outcome
	for i, h := range o.heads {
		if m := cseqMethodRE.FindStringSubmatch(h); m != nil && strings.EqualFold(m[1], method) {
			out.add(o.codes[i], h)
		}
	}
	return out
}

var cseqMethodRE = regexp.MustCompile(`(?mi)^(?:cseq)[ \t]*:[ \t]*\d+[ \t]+([A-Za-z]+)`)

func (o outcome) final() int {
	for i := len(o.codes) - 1; i >= 0; i-- {
		if o.codes[i] >= 200 {
			return o.codes[i]
		}
	}
	return 0
}

func (o outcome) String() string {
	if len(o.codes) == 0 {
		return "no answer"
	}
	return fmt.Sprint(o.codes)
}

// sendTorture sends every message (each from its own socket, all at once)
// and gathers the answers for a few seconds.
func sendTorture(t *testing.T, msgs []tortureMsg, transport, dst string) map[string]outcome {
	t.Helper()
	res := make(map[string]outcome)
	var mu sync.Mutex
	var wg sync.WaitGroup
	{
		// When the top Via names UDP the unit answers where RFC 3261
		// section 18.2.2 says: the source address with the Via's port
		// (5060 when none), unless the Via asks for rport; also when the
		// request came over TCP (wsinv). A collector on the torture
		// address's port 5060 (our own loopback address, no other unit
		// uses it) catches those, matched back by Call-ID.
		if col, err := net.ListenPacket("udp", tortureIP+":5060"); err != nil {
			t.Logf("no collector on %s:5060 (%v): UDP answers to Vias without rport are not seen", tortureIP, err)
		} else {
			byCallID := map[string]string{}
			for _, m := range msgs {
				byCallID[callIDOf(uniq(m, transport))] = m.name
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer col.Close()
				col.SetReadDeadline(time.Now().Add(5 * time.Second))
				buf := make([]byte, 65535)
				for {
					n, _, err := col.ReadFrom(buf)
					if err != nil {
						return
					}
					m, err := sip.ParseMessage(append([]byte(nil), buf[:n]...))
					r, ok := m.(*sip.Response)
					if err != nil || !ok || r.CallID() == nil {
						continue
					}
					if name := byCallID[r.CallID().Value()]; name != "" {
						mu.Lock()
						o := res[name]
						o.add(r.StatusCode, headOf(buf[:n]))
						res[name] = o
						mu.Unlock()
					}
				}
			}()
		}
	}
	for _, m := range msgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got := exchange(transport, dst, uniq(m, transport), 4*time.Second)
			mu.Lock()
			o := res[m.name]
			for _, r := range got.heads {
				o.add(statusOf([]byte(r)), r)
			}
			res[m.name] = o
			mu.Unlock()
		}()
	}
	wg.Wait()
	return res
}

// uniq makes one send of m distinct from every other. The RFC's messages
// share branch values; sent at once they would look like retransmissions
// of one another, so each send gets its own (the Via stays as tortuous as
// written). Messages without an RFC 3261 branch (wsinv, inv2543) are
// matched by Call-ID, From tag, CSeq and top Via instead (RFC 3261 section
// 17.2.3), so the Call-ID gets the transport in front too: otherwise the
// TCP send is a retransmission of the UDP one, still in its transaction.
func uniq(m tortureMsg, transport string) []byte {
	data := bytes.ReplaceAll(m.data, []byte("branch=z9hG4bK"), []byte("branch=z9hG4bK"+transport+m.name+"-"))
	if loc := callIDRE.FindSubmatchIndex(data); loc != nil && loc[3] > loc[2] {
		data = slices.Concat(data[:loc[2]], []byte(transport+"."), data[loc[2]:])
	}
	return data
}

var callIDRE = regexp.MustCompile(`(?mi)^(?:call-id|i)[ \t]*:[ \t]*([^\r\n]*)`)

// callIDOf is a raw message's Call-ID value.
func callIDOf(b []byte) string {
	if m := callIDRE.FindSubmatch(b); m != nil {
		return strings.TrimSpace(string(m[1]))
	}
	return ""
}

// headOf is the header section of a raw message.
func headOf(b []byte) string {
	if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
		return string(b[:i+4])
	}
	return string(b)
}

// exchange sends data and returns the header sections of the responses
// that came back on the same socket or connection within d.
func exchange(transport, dst string, data []byte, d time.Duration) outcome {
	var o outcome
	switch transport {
	case "udp":
		c, err := net.ListenPacket("udp", tortureIP+":0")
		if err != nil {
			return o
		}
		defer c.Close()
		ua, _ := net.ResolveUDPAddr("udp", dst)
		if _, err := c.WriteTo(data, ua); err != nil {
			return o
		}
		c.SetReadDeadline(time.Now().Add(d))
		buf := make([]byte, 65535)
		for {
			n, _, err := c.ReadFrom(buf)
			if err != nil {
				return o
			}
			o.add(statusOf(buf[:n]), headOf(buf[:n]))
		}
	default:
		dl := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(tortureIP)}, Timeout: d}
		c, err := dl.Dial("tcp", dst)
		if err != nil {
			return o
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(d))
		if _, err := c.Write(data); err != nil {
			return o
		}
		r := bufio.NewReader(c)
		for {
			head, err := readTCPResponse(r)
			if err != nil {
				return o
			}
			o.add(statusOf([]byte(head)), head)
		}
	}
}

// readTCPResponse reads one response from a stream (header and body) and
// returns its header section.
func readTCPResponse(r *bufio.Reader) (string, error) {
	var head bytes.Buffer
	cl := 0
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return "", err
		}
		if strings.TrimSpace(line) == "" {
			if head.Len() == 0 {
				continue // keepalive CRLF
			}
			break
		}
		head.WriteString(line)
		if k, v, ok := strings.Cut(line, ":"); ok {
			if k = strings.ToLower(strings.TrimSpace(k)); k == "content-length" || k == "l" {
				cl, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
	}
	if cl > 0 {
		if _, err := io.CopyN(io.Discard, r, int64(cl)); err != nil {
			return "", err
		}
	}
	head.WriteString("\r\n")
	return head.String(), nil
}

// statusOf is the status code of a response, -1 for anything else.
func statusOf(b []byte) int {
	m, err := sip.ParseMessage(append([]byte(nil), b...))
	if err != nil {
		return -1
	}
	if r, ok := m.(*sip.Response); ok {
		return r.StatusCode
	}
	return -1
}

// Invalid messages whose defect RFC 4475 lets an element tolerate (it
// "MAY" process them, e.g. ignore the escaped headers of escruri): for
// these a forwarded request is acceptable too.
var tolerated = map[string]bool{"baddate": true, "escruri": true}

// expect is the one answer RFC 4475 (read with RFC 3261) calls for: the
// final status and a header that response must carry, or (relayed) that
// the request is taken as a call and the trunk's answer comes back; and why.
type expect struct {
	final   int
	header  string
	relayed bool
	why     string
}

// expected are the messages with a single right answer from this unit.
var expected = map[string]expect{
	"wsinv":   {final: 481, why: "valid despite its LWS and folding; its To tag names a dialog the unit does not have"},
	"intmeth": {final: 405, header: "Allow", why: "unknown method with unusual token characters, not in the methods filter"},
	"esc02":   {final: 405, header: "Allow", why: "RE%47IST%45R is a method of its own, not REGISTER"},
	"novelsc": {final: 416, why: "soap.beep: Request-URI scheme"},
	"unksch":  {final: 416, why: "Request-URI scheme nobody knows"},
	"invut":   {final: 415, header: "Accept", why: "INVITE body of an unknown type"},
	"zeromf":  {final: 483, why: "Max-Forwards 0"},
	"baddn":   {final: 400, why: "unquoted display name with a comma"},
	"badvers": {final: 505, why: "SIP/7.0"},
	"inv2543": {relayed: true, why: "RFC 2543 INVITE with neither an RFC 3261 branch nor a From tag: a call like any other"},
}

// Messages that are responses: no transaction wants them, nothing answers.
var responses = map[string]bool{"unreason": true, "noreason": true, "scalarlg": true, "bcast": true}

// TestTortureMessages sends the RFC 4475 messages over UDP and TCP while a
// call is up: messages with one right answer get it (expected, with the
// header it calls for, or relayed to the trunk), other valid requests are
// answered (not 400), invalid ones get 400 (505 for a bad version) or
// nothing, none of the invalid INVITEs reaches the trunk, the unit keeps
// answering and the call ends normally afterwards.
func TestTortureMessages(t *testing.T) {
	msgs := loadTorture(t)
	u := startUnit(t, nil)
	c := startCall(t, u)
	fdsBefore := u.openFDs(t)
	var table []string
	tried := 0
	for _, tr := range []struct{ name, dst string }{{"udp", u.insideUDP}, {"tcp", u.insideTCP}} {
		invitesBefore := c.uas.Invites.Load()
		res := sendTorture(t, msgs, tr.name, tr.dst)
		validInvites := 0
		for _, m := range msgs {
			tried++
			o := res[m.name]
			table = append(table, fmt.Sprintf("%-4s %-8s %-12s %s", tr.name, map[bool]string{true: "valid", false: "invalid"}[m.valid], m.name, o))
			for _, code := range o.codes {
				if code == -1 {
					t.Errorf("%s/%s: the unit sent something that is no SIP response", tr.name, m.name)
				}
			}
			switch {
			case responses[m.name]:
				if len(o.codes) != 0 {
					t.Errorf("%s/%s (a response) was answered: %s", tr.name, m.name, o)
				}
			case expected[m.name].relayed:
				// The trunk of this lab is busy with the call: 486.
				if !o.provisional() || o.final() != 486 {
					t.Errorf("%s/%s: answered %s, want 100 and the trunk's 486: %s", tr.name, m.name, o, expected[m.name].why)
				}
				validInvites++
			case expected[m.name].final != 0:
				e := expected[m.name]
				if f := o.final(); f != e.final {
					t.Errorf("%s/%s: answered %s, want %d: %s", tr.name, m.name, o, e.final, e.why)
				} else if e.header != "" && !o.finalHas(e.header) {
					t.Errorf("%s/%s: %d without %s", tr.name, m.name, f, e.header)
				}
				if o.provisional() {
					t.Errorf("%s/%s: taken as a call (%s) before its final answer", tr.name, m.name, o)
				}
			case m.valid:
				// judged by the answers to its (first) request: over TCP
				// dblreq's INVITE is a request of its own, without Contact
				// (400 is right for it)
				method, _, _ := strings.Cut(string(m.data), " ")
				o = o.of(method)
				if o.final() == 0 && m.name != "dblreq" {
					t.Errorf("%s/%s: valid request got no final answer (%s)", tr.name, m.name, o)
				}
				if o.final() == 400 {
					t.Errorf("%s/%s: valid request answered 400", tr.name, m.name)
				}
				if strings.HasPrefix(string(m.data), "INVITE") {
					validInvites++
				}
			case tolerated[m.name]:
				if f := o.final(); f != 0 && f < 300 {
					t.Errorf("%s/%s: answered %d", tr.name, m.name, f)
				}
			default:
				// Refused: nothing, or a 4xx/5xx without a 100 (a 100
				// means it was taken as a call and relayed).
				if f := o.final(); (f != 0 && f < 400) || o.provisional() {
					t.Errorf("%s/%s: invalid request answered %s, want 400 or nothing", tr.name, m.name, o)
				}
			}
		}
		// Only valid (and tolerated) INVITEs may have been relayed.
		if got := c.uas.Invites.Load() - invitesBefore; got > int64(validInvites+len(tolerated)) {
			t.Errorf("%s: trunk got %d INVITEs from torture messages, at most %d valid ones were sent", tr.name, got, validInvites+len(tolerated))
		}
		if !u.alive() || !u.optionsOK(t, "udp", u.insideUDP) {
			t.Fatalf("unit not answering after the %s torture messages", tr.name)
		}
	}
	sort.Strings(table)
	t.Logf("%d torture messages sent (%d distinct):\n%s", tried, len(msgs), strings.Join(table, "\n"))
	if st, got := c.hangUp(t); st != 200 || !got {
		t.Fatalf("call disturbed: BYE answered %d, trunk got BYE: %v", st, got)
	}
	// TCP connections of the torture senders are not kept forever.
	for i := 0; i < 100 && u.openFDs(t) > fdsBefore+5; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("file descriptors: %d before, %d after", fdsBefore, u.openFDs(t))
}
