package b2bua

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/media"
	"github.com/palisade-sbc/palisade/internal/observe"
	"github.com/palisade-sbc/palisade/internal/sip/transport"
)

// tortureDir holds the RFC 4475 messages of the black-box torture test.
var tortureDir = filepath.Join("..", "..", "..", "test", "robust", "testdata", "torture")

// tortureFile reads one RFC 4475 message as sent on the wire: CRLF line
// ends and {{LEN}} replaced by the body length.
func tortureFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(tortureDir, name+".sip"))
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
	if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
		b = bytes.Replace(b, []byte("{{LEN}}"), []byte(strconv.Itoa(len(b)-i-4)), 1)
	}
	return b
}

// parseWire parses data as an endpoint does: read filter, then our parser.
func parseWire(t testing.TB, data []byte) *sip.Request {
	t.Helper()
	filtered, _ := transport.ReadFilter(sip.TransportReadProps{Transport: "udp"}, data)
	m, err := transport.NewParser().ParseSIP(filtered)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	req, ok := m.(*sip.Request)
	if !ok {
		t.Fatalf("not a request: %T", m)
	}
	if _, err := sip.ServerTxKeyMake(req); err != nil {
		t.Fatalf("sipgo makes no transaction for it: %v", err)
	}
	transport.NullFromTag(req) // as onRequest does
	return req
}

func testRuntime() *runtime {
	methods := []string{"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "UPDATE"}
	rt := &runtime{allowed: map[string]bool{}, allowHdr: strings.Join(methods, ", "), ownHostPorts: map[string]bool{}}
	for _, m := range methods {
		rt.allowed[m] = true
	}
	return rt
}

const multipartInvite = "INVITE sip:100@example.com SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-mp\r\n" +
	"From: <sip:a@example.com>;tag=1\r\nTo: <sip:100@example.com>\r\n" +
	"Call-ID: mp\r\nCSeq: 1 INVITE\r\nContact: <sip:a@192.0.2.1>\r\nMax-Forwards: 70\r\n" +
	"MIME-Version: 1.0\r\nContent-Type: CTYPE\r\nEXTRAContent-Length: LEN\r\n\r\nBODY"

func buildInvite(ctype, extra, body string) []byte {
	m := strings.NewReplacer("CTYPE", ctype, "EXTRA", extra, "LEN", strconv.Itoa(len(body)), "BODY", body).Replace(multipartInvite)
	return []byte(m)
}

const sdpBody = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"

func TestValidate(t *testing.T) {
	mixed := "--b1\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b1\r\nContent-Type: application/sdp\r\n\r\n" + sdpBody + "\r\n--b1--\r\n"
	noSDP := "--b1\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b1--\r\n"
	for _, tc := range []struct {
		name   string
		data   []byte
		code   int    // 0: accepted
		reason string // prefix of the reason phrase
		header string // "Name: value" the response must carry
	}{
		// RFC 4475 messages
		{"wsinv", tortureFile(t, "valid/wsinv"), 0, "", ""},
		{"intmeth", tortureFile(t, "valid/intmeth"), 405, "Method Not Allowed", "Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE"},
		{"novelsc", tortureFile(t, "valid/novelsc"), 416, "Unsupported URI Scheme", ""},
		{"unksch", tortureFile(t, "valid/unksch"), 416, "Unsupported URI Scheme", ""},
		{"invut", tortureFile(t, "valid/invut"), 415, "Unsupported Media Type", "Accept: application/sdp, multipart/mixed"},
		{"baddn", tortureFile(t, "invalid/baddn"), 400, "Display name", ""},
		{"sdp01", tortureFile(t, "valid/sdp01"), 0, "", ""},
		{"inv2543", tortureFile(t, "valid/inv2543"), 0, "", ""},
		{"no From tag with RFC 3261 branch", []byte(strings.Replace(string(buildInvite("application/sdp", "", sdpBody)), ";tag=1", "", 1)), 400, "Missing From tag", ""},
		{"lwsdisp", tortureFile(t, "valid/lwsdisp"), 0, "", ""},
		// bodies
		{"multipart with sdp", buildInvite("multipart/mixed;boundary=b1", "", mixed), 0, "", ""},
		{"multipart without sdp", buildInvite("multipart/mixed;boundary=b1", "", noSDP), 415, "Unsupported Media Type", "Accept: application/sdp, multipart/mixed"},
		{"multipart without boundary", buildInvite("multipart/mixed", "", mixed), 415, "Unsupported Media Type", "Accept: "},
		{"bad content type", buildInvite("application/", "", sdpBody), 415, "Unsupported Media Type", "Accept: "},
		{"gzip", buildInvite("application/sdp", "Content-Encoding: gzip\r\n", sdpBody), 415, "Unsupported Media Type", "Accept-Encoding: identity"},
		{"identity encoding", buildInvite("application/sdp", "Content-Encoding: identity\r\n", sdpBody), 0, "", ""},
		{"tel uri", []byte(strings.Replace(string(buildInvite("application/sdp", "", sdpBody)), "sip:100@example.com SIP", "tel:+4930123 SIP", 1)), 416, "Unsupported URI Scheme", ""},
		{"quoted display name with comma", []byte(strings.Replace(string(buildInvite("application/sdp", "", sdpBody)), "From: <sip", "From: \"Bell, A.\" <sip", 1)), 0, "", ""},
		{"unquoted token display name", []byte(strings.Replace(string(buildInvite("application/sdp", "", sdpBody)), "To: <sip", "To: Thomas A. Watson <sip", 1)), 0, "", ""},
		{"unquoted sloppy display name", []byte(strings.Replace(string(buildInvite("application/sdp", "", sdpBody)), "To: <sip", "To: AT&T Müller (Sales) <sip", 1)), 0, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := parseWire(t, tc.data)
			rj := validate(req, testRuntime())
			if tc.code == 0 {
				if rj != nil {
					t.Fatalf("refused with %d %s", rj.code, rj.reason)
				}
				return
			}
			if rj == nil {
				t.Fatalf("accepted, want %d", tc.code)
			}
			if rj.code != tc.code || !strings.HasPrefix(rj.reason, tc.reason) {
				t.Fatalf("got %d %q, want %d %q", rj.code, rj.reason, tc.code, tc.reason)
			}
			got := ""
			if rj.header != nil {
				got = rj.header.Name() + ": " + rj.header.Value()
			}
			if !strings.HasPrefix(got, tc.header) || (tc.header == "") != (got == "") {
				t.Fatalf("header %q, want %q", got, tc.header)
			}
		})
	}
}

func TestMultipartReducedToSDP(t *testing.T) {
	mixed := "--b1\r\nContent-Type: application/sdp\r\n\r\n" + sdpBody + "\r\n--b1\r\nContent-Type: application/pidf+xml\r\n\r\n<presence/>\r\n--b1--\r\n"
	req := parseWire(t, buildInvite("multipart/mixed; boundary=b1", "Content-Disposition: session\r\n", mixed))
	if rj := validate(req, testRuntime()); rj != nil {
		t.Fatalf("refused: %d %s", rj.code, rj.reason)
	}
	if string(req.Body()) != sdpBody {
		t.Fatalf("body %q, want the SDP part", req.Body())
	}
	if ct := req.ContentType(); ct == nil || ct.Value() != "application/sdp" {
		t.Fatalf("Content-Type %v", ct)
	}
	if req.GetHeader("Content-Disposition") != nil || len(req.GetHeaders("Content-Type")) != 1 {
		t.Fatalf("stale headers: %s", req.String())
	}
	if cl := req.ContentLength(); cl == nil || int(*cl) != len(sdpBody) {
		t.Fatalf("Content-Length %v", cl)
	}
}

func TestWireParserTidiesLWS(t *testing.T) {
	req := parseWire(t, tortureFile(t, "valid/wsinv"))
	if tag := getTag(req.From().Params); tag != "98asjd8" {
		t.Errorf("From tag %q", tag)
	}
	if tag := getTag(req.To().Params); tag != "1918181833n" {
		t.Errorf("To tag %q", tag)
	}
	if h := req.To().Address.Host; h != "chair-dnrc.example.com" {
		t.Errorf("To host %q", h)
	}
	vias := req.GetHeaders("Via")
	if len(vias) != 3 {
		t.Fatalf("%d Vias", len(vias))
	}
	if v := vias[1].(*sip.ViaHeader); v.Transport != "TCP" || v.Host != "spindle.example.com" || v.Params.GetOr("branch", "") != "z9hG4bK9ikj8" {
		t.Errorf("second Via %q", v.Value())
	}
	if q := req.Contact().Params.GetOr("q", ""); q != "0.33" {
		t.Errorf("Contact q %q", q)
	}
}

// TestNullFromTag: an RFC 2543 From without tag gets an empty one for
// sipgo's transaction key (retransmissions and the ACK share it), and loses
// it again before the B2BUA answers.
func TestNullFromTag(t *testing.T) {
	raw := tortureFile(t, "valid/inv2543")
	key := func(data []byte) string {
		m, err := transport.NewParser().ParseSIP(data)
		if err != nil {
			t.Fatal(err)
		}
		k, err := sip.ServerTxKeyMake(m)
		if err != nil {
			t.Fatalf("no transaction key: %v", err)
		}
		return k
	}
	// The ACK for a non-2xx answer (same Via, no tag either) must find the
	// INVITE's transaction, or the answer is retransmitted for 32 s.
	ack := strings.NewReplacer("INVITE sip:", "ACK sip:", "CSeq: 1 INVITE", "CSeq: 1 ACK").Replace(string(raw))
	if a, i := key([]byte(ack)), key(raw); a != i {
		t.Errorf("ACK key %q, INVITE key %q", a, i)
	}
	req := parseWire(t, raw)
	if _, has := req.From().Params.Get("tag"); has {
		t.Fatalf("From still tagged: %s", req.From().Value())
	}
	res := sip.NewResponseFromRequest(req, 486, "Busy Here", nil)
	if got := res.From().Value(); got != "<sip:UserA@example.com>" {
		t.Fatalf("response From %q, want the caller's own", got)
	}
}

// TestRefusalsOnTheWire sends refused requests to a running unit: the
// status, the header it calls for and the metric.
func TestRefusalsOnTheWire(t *testing.T) {
	pbx, itsp := newUDPPeers(t)
	u := newTestUnit(t, pbx, itsp, nil)
	dst := u.inside().String()
	invite := func(id string, r ...string) string {
		return strings.NewReplacer(append([]string{"BRANCH", id, "CALLID", id, "FROMTAG", ";tag=a", "MF", "70"}, r...)...).Replace(rawInvite)
	}
	for _, tc := range []struct {
		name, msg, want, header, metric string
	}{
		{"unknown body type", invite("ut", "EXTRA", "Content-Type: application/unknownformat\r\n", "Content-Length: 0", "Content-Length: 5", "\r\n\r\n", "\r\n\r\nhello"),
			"SIP/2.0 415 ", "Accept: application/sdp, multipart/mixed", "unsupported_media_type"},
		{"unknown uri scheme", invite("us", "INVITE sip:100@127.0.0.1", "INVITE im:100@127.0.0.1", "EXTRA", ""),
			"SIP/2.0 416 ", "", "unsupported_uri_scheme"},
		{"scheme sipgo cannot parse", invite("sp", "INVITE sip:100@127.0.0.1", "INVITE soap.beep://127.0.0.1", "EXTRA", ""),
			"SIP/2.0 416 ", "", "unsupported_uri_scheme"},
		{"unquoted display name with comma", invite("dn", "From: <sip", "From: Bell, Alexander <sip", "EXTRA", ""),
			"SIP/2.0 400 Display name", "", "bad_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := counterValue(badInput.WithLabelValues(tc.metric))
			got := rawExchange(t, dst, tc.msg)
			if !strings.HasPrefix(got, tc.want) {
				t.Fatalf("got %q, want %q", firstLine(got), tc.want)
			}
			if tc.header != "" && !strings.Contains(got, "\r\n"+tc.header+"\r\n") {
				t.Fatalf("no %q in %q", tc.header, got)
			}
			if after := counterValue(badInput.WithLabelValues(tc.metric)); after != before+1 {
				t.Fatalf("metric %s went %v → %v", tc.metric, before, after)
			}
		})
	}
	if n := itsp.Wire.Count("INVITE "); n != 0 {
		t.Fatalf("%d refused INVITEs reached the outside", n)
	}
}

// TestNoPortsRetryAfter: a call refused because the media port range is
// exhausted gets 503 with Retry-After; other media refusals carry none.
func TestNoPortsRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		err        error
		want       string
		retryAfter bool
	}{
		{media.ErrNoPorts, "SIP/2.0 503 ", true},
		{media.ErrNotAcceptable, "SIP/2.0 488 ", false},
	} {
		t.Run(tc.err.Error(), func(t *testing.T) {
			pbx := newPeerUA(t, "pbx", "127.0.0.1", "udp") // the raw sender's address
			itsp := newPeerUA(t, "trunk", "127.0.0.3", "udp")
			u := newTestUnitWith(t, pbx, itsp, Deps{Media: failingMedia{tc.err}}, nil)
			sdp := string(testSDP("127.0.0.1", 7000))
			msg := strings.NewReplacer("BRANCH", "np", "CALLID", "np", "FROMTAG", ";tag=a", "MF", "70",
				"EXTRA", "Content-Type: application/sdp\r\n",
				"Content-Length: 0\r\n\r\n", "Content-Length: "+strconv.Itoa(len(sdp))+"\r\n\r\n"+sdp).Replace(rawInvite)
			got := rawExchange(t, u.inside().String(), msg)
			if !strings.HasPrefix(got, tc.want) {
				t.Fatalf("got %q, want %q", firstLine(got), tc.want)
			}
			if has := strings.Contains(got, "\r\nRetry-After: 10\r\n"); has != tc.retryAfter {
				t.Fatalf("Retry-After: 10 present %v, want %v: %q", has, tc.retryAfter, got)
			}
			if n := itsp.Wire.Count("INVITE "); n != 0 {
				t.Fatalf("the refused call still went out (%d INVITEs)", n)
			}
		})
	}
}

// FuzzWireParser: our header parsers and read filter never panic, the
// filter keeps the length, and validate copes with whatever parses.
func FuzzWireParser(f *testing.F) {
	for _, n := range []string{"valid/wsinv", "valid/intmeth", "valid/novelsc", "valid/invut", "valid/mpart01", "valid/inv2543", "invalid/baddn"} {
		f.Add(tortureFile(f, n))
	}
	f.Add(buildInvite("multipart/mixed;boundary=b1", "", "--b1\r\nContent-Type: application/sdp\r\n\r\n"+sdpBody+"\r\n--b1--\r\n"))
	p := transport.NewParser()
	rt := testRuntime()
	f.Fuzz(func(t *testing.T, data []byte) {
		in := bytes.Clone(data)
		out, err := transport.ReadFilter(sip.TransportReadProps{Transport: "tcp"}, data)
		if err != nil || len(out) != len(in) || !bytes.Equal(data, in) {
			t.Fatalf("filter: err %v, length %d → %d, input changed %v", err, len(in), len(out), !bytes.Equal(data, in))
		}
		m, err := p.ParseSIP(out)
		if err != nil {
			return
		}
		if req, ok := m.(*sip.Request); ok {
			transport.NullFromTag(req)
			_ = validate(req, rt)
		}
	})
}

// TestRFC2543Call: a caller without RFC 3261 branches and From tags (RFC
// 2543, RFC 4475 inv2543) gets a whole call through: its INVITE is relayed
// and answered, every answer carries its From as sent (no tag added), its
// ACK and BYE (still untagged) reach the trunk.
func TestRFC2543Call(t *testing.T) {
	pbx, itsp := newUDPPeers(t)
	acks := &ackTracer{}
	u := newTestUnitWith(t, pbx, itsp, Deps{Tracer: acks}, nil)
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dst, _ := net.ResolveUDPAddr("udp", u.inside().String())
	port := strconv.Itoa(c.LocalAddr().(*net.UDPAddr).Port)
	send := func(method, ruri string, cseq int, toTag, body string) {
		t.Helper()
		var b strings.Builder
		fmt.Fprintf(&b, "%s %s SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%s\r\n", method, ruri, port)
		fmt.Fprintf(&b, "From: <sip:pbx@127.0.0.1>\r\nTo: <sip:100@127.0.0.1>%s\r\nCall-ID: rfc2543-call\r\n", toTag)
		fmt.Fprintf(&b, "CSeq: %d %s\r\nContact: <sip:pbx@127.0.0.1:%s>\r\nMax-Forwards: 70\r\n", cseq, method, port)
		if body != "" {
			b.WriteString("Content-Type: application/sdp\r\n")
		}
		fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
		if _, err := c.WriteTo([]byte(b.String()), dst); err != nil {
			t.Fatal(err)
		}
	}
	// final reads responses until a final one for method.
	final := func(method string) *sip.Response {
		t.Helper()
		buf := make([]byte, 65535)
		for {
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, _, err := c.ReadFrom(buf)
			if err != nil {
				t.Fatalf("no final answer to %s: %v", method, err)
			}
			m, err := sip.ParseMessage(append([]byte(nil), buf[:n]...))
			r, ok := m.(*sip.Response)
			if err != nil || !ok || r.CSeq() == nil || string(r.CSeq().MethodName) != method {
				continue
			}
			if got := r.From().Value(); got != "<sip:pbx@127.0.0.1>" {
				t.Fatalf("%d to %s with From %q: not the caller's own", r.StatusCode, method, got)
			}
			if r.StatusCode >= 200 {
				return r
			}
		}
	}
	send("INVITE", "sip:100@127.0.0.1", 1, "", string(testSDP("127.0.0.1", 7002)))
	ok := final("INVITE")
	if ok.StatusCode != 200 || ok.Contact() == nil {
		t.Fatalf("INVITE answered %d", ok.StatusCode)
	}
	toTag := ";tag=" + getTag(ok.To().Params)
	send("ACK", ok.Contact().Address.String(), 1, toTag, "")
	// The unit ACKs the trunk's 200 itself; the caller's ACK must reach
	// the call (it is traced there), not be swallowed by sipgo.
	waitFor(t, func() bool { return acks.n.Load() == 1 }, "the caller's ACK at the call")
	send("BYE", ok.Contact().Address.String(), 2, toTag, "")
	if r := final("BYE"); r.StatusCode != 200 {
		t.Fatalf("BYE answered %d", r.StatusCode)
	}
	waitFor(t, func() bool { return itsp.Wire.Count("BYE ") == 1 }, "BYE at the trunk")
}

// ackTracer counts the ACKs the unit received within a call.
type ackTracer struct{ n atomic.Int32 }

func (a *ackTracer) TraceSIP(m observe.SIPMessage) {
	if m.Dir == observe.Received && bytes.HasPrefix(m.Raw, []byte("ACK ")) {
		a.n.Add(1)
	}
}

// BenchmarkWireParser compares sipgo's parser with ours on an ordinary
// INVITE (the wrappers must cost next to nothing on clean input).
func BenchmarkWireParser(b *testing.B) {
	msg := buildInvite("application/sdp", "", sdpBody)
	for _, p := range []struct {
		name string
		p    *sip.Parser
	}{{"sipgo", sip.NewParser()}, {"wire", transport.NewParser()}} {
		b.Run(p.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				data, _ := transport.ReadFilter(sip.TransportReadProps{}, msg)
				if _, err := p.p.ParseSIP(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
