package b2bua

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/palisade-sbc/palisade/internal/config"
	dto "github.com/prometheus/client_model/go"
)

// rawExchange sends msg over UDP to dst and returns the first response
// that is not a 100 Trying ("" when none comes within 3 s).
func rawExchange(t *testing.T, dst string, msg string) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	port := c.LocalAddr().(*net.UDPAddr).Port
	msg = strings.ReplaceAll(msg, "PORT", itoa(port))
	ua, _ := net.ResolveUDPAddr("udp", dst)
	if _, err := c.WriteTo([]byte(msg), ua); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65535)
	for {
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			return ""
		}
		if s := string(buf[:n]); !strings.HasPrefix(s, "SIP/2.0 100 ") {
			return s
		}
	}
}

const rawInvite = "INVITE sip:100@127.0.0.1 SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP 127.0.0.1:PORT;branch=z9hG4bK-BRANCH\r\n" +
	"From: <sip:pbx@127.0.0.1>FROMTAG\r\n" +
	"To: <sip:100@127.0.0.1>\r\n" +
	"Call-ID: raw-CALLID\r\n" +
	"CSeq: 1 INVITE\r\n" +
	"Contact: <sip:pbx@127.0.0.1:PORT>\r\n" +
	"Max-Forwards: MF\r\n" +
	"EXTRA" +
	"Content-Length: 0\r\n\r\n"

func TestBadInput(t *testing.T) {
	pbx, itsp := newUDPPeers(t)
	u := newTestUnit(t, pbx, itsp, func(c *config.Config) {
		c.SIP.AllowedMethods = []string{"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS"}
	})
	dst := u.inside().String()
	build := func(id, fromTag, mf, extra string) string {
		r := strings.NewReplacer("BRANCH", id, "CALLID", id, "FROMTAG", fromTag, "MF", mf, "EXTRA", extra)
		return r.Replace(rawInvite)
	}
	ownVia := "Via: SIP/2.0/UDP " + u.outside().String() + ";branch=z9hG4bK-old\r\n"
	for _, tc := range []struct {
		name, msg, want, metric string
	}{
		{"max-forwards 0", build("mf0", ";tag=a", "0", ""), "SIP/2.0 483 ", "too_many_hops"},
		{"missing from tag", build("notag", "", "70", ""), "SIP/2.0 400 Missing From tag", "bad_request"},
		{"cseq method mismatch", strings.Replace(build("cseq", ";tag=a", "70", ""), "1 INVITE", "1 BYE", 1), "SIP/2.0 400 CSeq method", "bad_request"},
		{"loop through the unit", strings.Replace(build("loop", ";tag=a", "70", ""), "Call-ID:", ownVia+"Call-ID:", 1), "SIP/2.0 482 ", "loop"},
		{"method not allowed", strings.NewReplacer("INVITE sip", "MESSAGE sip", "1 INVITE", "1 MESSAGE").Replace(build("m405", ";tag=a", "70", "")), "SIP/2.0 405 ", "method_not_allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := counterValue(badInput.WithLabelValues(tc.metric))
			got := rawExchange(t, dst, tc.msg)
			if !strings.HasPrefix(got, tc.want) {
				t.Fatalf("got %q, want %q", firstLine(got), tc.want)
			}
			if tc.metric == "method_not_allowed" && !strings.Contains(got, "Allow: INVITE, ACK, BYE, CANCEL, OPTIONS") {
				t.Fatalf("405 without Allow: %q", got)
			}
			if after := counterValue(badInput.WithLabelValues(tc.metric)); after != before+1 {
				t.Fatalf("metric %s went %v → %v", tc.metric, before, after)
			}
		})
	}
	t.Run("unparseable dropped and counted", func(t *testing.T) {
		before := counterValue(badInput.WithLabelValues("unparseable"))
		if got := rawExchange(t, dst, "HELLO THIS IS NOT SIP\r\n\r\n"); got != "" {
			t.Fatalf("answered garbage with %q", got)
		}
		waitFor(t, func() bool { return counterValue(badInput.WithLabelValues("unparseable")) > before }, "unparseable counter")
	})
	if n := itsp.Wire.Count("INVITE "); n != 0 {
		t.Fatalf("%d bad INVITEs reached the outside", n)
	}
}

func firstLine(s string) string {
	if i := strings.Index(s, "\r\n"); i >= 0 {
		return s[:i]
	}
	return s
}

func FuzzInbound(f *testing.F) {
	f.Add([]byte(rawInvite))
	f.Add([]byte("OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4\r\n\r\n"))
	f.Add([]byte("\x00\x01garbage"))
	s := New(Deps{Logger: testLogger()})
	cfg := config.Default()
	cfg.Network.Interfaces = []config.Interface{{Name: "inside", Address: "127.0.0.1"}}
	cfg.SIP.Listeners = []config.Listener{{Interface: "inside", Transport: "udp"}}
	cfg.Network.DNSServers = []string{"127.0.0.1:9"}
	if err := s.Apply(t0(), cfg); err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	dst, _ := net.ResolveUDPAddr("udp", s.ListenAddr("inside", "udp").String())
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	defer c.Close()
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = c.WriteTo(b, dst)
		// the unit must still answer after any input
		opt := "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:PORT;branch=z9hG4bKf\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: f\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
		if got := rawExchange(t, dst.String(), opt); !strings.HasPrefix(got, "SIP/2.0 200") {
			t.Fatalf("unit stopped answering: %q", got)
		}
	})
}

func counterValue(c interface{ Write(*dto.Metric) error }) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}
