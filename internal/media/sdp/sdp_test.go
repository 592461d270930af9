package sdp

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readSDP(t *testing.T) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob("testdata/*.sdp")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = b
	}
	return out
}

// Every byte of an SDP we do not change must come back as it came in.
func TestRoundTripUntouched(t *testing.T) {
	for name, b := range readSDP(t) {
		t.Run(name, func(t *testing.T) {
			s, err := Parse(b)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Marshal(); !bytes.Equal(got, b) {
				t.Fatalf("round trip changed the SDP:\n%q\n%q", b, got)
			}
			if got := s.Clone().Marshal(); !bytes.Equal(got, b) {
				t.Fatalf("clone changed the SDP")
			}
		})
	}
}

func TestRewrite(t *testing.T) {
	b := readSDP(t)["pbx-avp.sdp"]
	s, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParseAddr("192.0.2.1")
	s.SetOrigin(addr)
	s.SetConn(addr)
	m := s.Media[0]
	m.SetPort(20000)
	m.SetProto("RTP/SAVP")
	m.AddAttr("crypto:1 X")
	got := string(s.Marshal())
	want := strings.NewReplacer(
		"o=- 1 1 IN IP4 10.0.0.10", "o=- 1 1 IN IP4 192.0.2.1",
		"c=IN IP4 10.0.0.10", "c=IN IP4 192.0.2.1",
		"m=audio 4000 RTP/AVP", "m=audio 20000 RTP/SAVP",
	).Replace(string(b)) + "a=crypto:1 X\r\n"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func TestSetConnAddsMissingAndKeepsHold(t *testing.T) {
	s, err := Parse([]byte("v=0\r\nm=audio 1 RTP/AVP 0\r\ni=x\r\na=rtcp:9 IN IP4 10.1.1.1\r\nm=audio 2 RTP/AVP 0\r\nc=IN IP4 0.0.0.0\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	v6 := netip.MustParseAddr("2001:db8::5")
	s.SetConn(v6)
	s.Media[0].SetRTCP(3001, v6)
	want := "v=0\r\nm=audio 1 RTP/AVP 0\r\ni=x\r\nc=IN IP6 2001:db8::5\r\na=rtcp:3001 IN IP6 2001:db8::5\r\nm=audio 2 RTP/AVP 0\r\nc=IN IP4 0.0.0.0\r\n"
	if got := string(s.Marshal()); got != want {
		t.Fatalf("got %q want %q", got, want)
	}
}

func TestParseRefuses(t *testing.T) {
	many := "v=0\r\n" + strings.Repeat("m=audio 1 RTP/AVP 0\r\n", 100)
	big := "v=0\r\n" + strings.Repeat("a=x\r\n", MaxSize/5)
	cases := map[string]string{
		"empty":          "",
		"no v":           "o=- 1 1 IN IP4 1.1.1.1\r\n",
		"100 m lines":    many,
		"64 KB":          big,
		"bad port":       "v=0\r\nm=audio 70000 RTP/AVP 0\r\n",
		"short m":        "v=0\r\nm=audio 1\r\n",
		"host name in c": "v=0\r\nc=IN IP4 pbx.example\r\n",
		"v4 marked IP6":  "v=0\r\nc=IN IP6 10.0.0.1\r\n",
		"bad m in list":  "v=0\r\nm=audio 1 RTP/AVP 0\r\nm=audio x RTP/AVP 0\r\n",
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse([]byte(in)); !errors.Is(err, ErrBadSDP) {
				t.Fatalf("err = %v, want ErrBadSDP", err)
			}
		})
	}
}

func TestMediaAccessors(t *testing.T) {
	s, err := Parse(readSDP(t)["itsp-savp.sdp"])
	if err != nil {
		t.Fatal(err)
	}
	m := s.Media[0]
	if a, ok := s.MediaConn(m); !ok || a.String() != "203.0.113.5" {
		t.Fatalf("media conn %v %v", a, ok)
	}
	if r, ok := m.RTCPAttr(); !ok || r.Port != 30001 {
		t.Fatalf("rtcp %v", r)
	}
	if !m.Has("rtcp-mux") || len(m.Attrs("crypto")) != 2 || m.RTPMap("0") != "PCMU/8000" {
		t.Fatal("attributes not found")
	}
	if d := m.Direction(s); d != "sendrecv" {
		t.Fatalf("direction %s", d)
	}
	m.RemoveAttrs("crypto", "rtcp-mux")
	if m.Has("crypto") || m.Has("rtcp-mux") || !m.Has("rtpmap") {
		t.Fatal("RemoveAttrs removed the wrong lines")
	}
}

func FuzzParseSDP(f *testing.F) {
	for _, b := range readSDPFiles(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrBadSDP) {
				t.Fatalf("error does not wrap ErrBadSDP: %v", err)
			}
			return
		}
		if got := s.Marshal(); !bytes.Equal(got, b) {
			t.Fatalf("round trip changed the input")
		}
		addr := netip.MustParseAddr("2001:db8::1")
		s.SetOrigin(addr)
		s.SetConn(addr)
		for _, m := range s.Media {
			_, _ = m.RTCPAttr()
			_, _ = s.MediaConn(m)
			_ = m.RTPMap("0")
			m.SetPort(1000)
			m.SetProto("RTP/SAVP")
			m.SetRTCP(1001, addr)
			m.RemoveAttrs("crypto")
			_ = m.Direction(s)
		}
		if _, err := Parse(s.Marshal()); err != nil {
			t.Fatalf("rewritten SDP does not parse: %v", err)
		}
	})
}

func readSDPFiles(f *testing.F) [][]byte {
	files, _ := filepath.Glob("testdata/*.sdp")
	var out [][]byte
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func TestRTCPAttrOddValues(t *testing.T) {
	for _, v := range []string{"a=rtcp:", "a=rtcp: ", "a=rtcp:x", "a=rtcp:0", "a=rtcp:70000", "a=rtcp:9 IN IP4"} {
		s, err := Parse([]byte("v=0\r\nm=audio 1 RTP/AVP 0\r\n" + v + "\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		if r, ok := s.Media[0].RTCPAttr(); ok && v != "a=rtcp:9 IN IP4" {
			t.Fatalf("%q read as %+v", v, r)
		}
	}
}
