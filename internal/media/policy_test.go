package media

import (
	"errors"
	"strings"
	"testing"

	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/media/sdp"
)

const goodKey = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"

func TestNotAcceptable(t *testing.T) {
	cases := []struct {
		name   string
		cfg    func(*config.Config)
		from   Side
		proto  string
		crypto []string
	}{
		{"plain RTP offered where SRTP is required", nil, SideB, "RTP/AVP", nil},
		{"SAVP with only unknown suites", nil, SideB, "RTP/SAVP", []string{"crypto:1 F8_128_HMAC_SHA1_80 inline:" + goodKey}},
		{"SAVP with only bad keys", nil, SideB, "RTP/SAVP", []string{
			"crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + goodKey[:10],
			"crypto:2 AES_CM_128_HMAC_SHA1_80 inline:%%%%" + goodKey[4:],
			"crypto:3 AES_CM_128_HMAC_SHA1_80 inline:" + goodKey + "|2^99",
			"crypto:4 AES_CM_128_HMAC_SHA1_80"}},
		{"suite outside the interface's group", func(c *config.Config) { setOutside(c, "GCM", "srtp") }, SideB, "RTP/SAVP",
			[]string{"crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + goodKey}},
		{"SRTP offered on an RTP-only inside", nil, SideA, "RTP/SAVP", []string{"crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + goodKey}},
		{"no transcoding, plain inside, SRTP outside", func(c *config.Config) { c.Media.DefaultPolicy.AllowTranscoding = false }, SideA, "RTP/AVP", nil},
		{"T.38 where SRTP is required", nil, SideB, "udptl", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, 20)
			if tc.cfg != nil {
				tc.cfg(cfg)
			}
			c := newTestCall(t, newTestRelay(t, cfg))
			body := newEndpoint(t).sdpBody(tc.proto, tc.crypto...)
			if _, err := c.Offer(tc.from, body); !errors.Is(err, ErrNotAcceptable) {
				t.Fatalf("err = %v, want ErrNotAcceptable", err)
			}
		})
	}
}

// The outside answers our SRTP offer without a key: the call cannot go on.
func TestAnswerWithoutCryptoRefused(t *testing.T) {
	c := newTestCall(t, newTestRelay(t, testConfig(t, 20)))
	pbx, ext := newEndpoint(t), newEndpoint(t)
	if _, err := c.Offer(SideA, pbx.sdpBody("RTP/AVP")); err != nil {
		t.Fatal(err)
	}
	for _, ans := range [][]byte{
		ext.sdpBody("RTP/AVP"),
		ext.sdpBody("RTP/SAVP"),
		ext.sdpBody("RTP/SAVP", "crypto:9 AES_CM_128_HMAC_SHA1_80 inline:"+goodKey), // tag we never offered
		ext.sdpBody("RTP/SAVP", "crypto:1 AES_CM_128_HMAC_SHA1_32 inline:"+goodKey), // tag 1 was the 80 suite
	} {
		if _, err := c.Answer(SideB, ans); !errors.Is(err, ErrNotAcceptable) {
			t.Fatalf("err = %v, want ErrNotAcceptable for\n%s", err, ans)
		}
	}
}

func TestBadSDP(t *testing.T) {
	c := newTestCall(t, newTestRelay(t, testConfig(t, 20)))
	e := newEndpoint(t)
	many := string(e.sdpBody("RTP/AVP")) + strings.Repeat("m=audio 5000 RTP/AVP 0\r\n", 99)
	big := string(e.sdpBody("RTP/AVP")) + strings.Repeat("a=x-filler:0123456789\r\n", 3000)
	for name, body := range map[string]string{
		"100 m= lines": many,
		"64 KB":        big,
		"not SDP":      "hello",
		"empty":        "",
		"bad c=":       "v=0\r\nc=IN IP4 999.1.1.1\r\nm=audio 1 RTP/AVP 0\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := c.Offer(SideA, []byte(body)); !errors.Is(err, ErrBadSDP) {
				t.Fatalf("err = %v, want ErrBadSDP", err)
			}
		})
	}
	if _, err := c.Answer(SideB, e.sdpBody("RTP/AVP")); !errors.Is(err, ErrBadSDP) {
		t.Fatalf("answer without offer: %v", err)
	}
}

// Duplicate tags: the first line with a tag wins; a usable later tag is still found.
func TestCryptoTagsAndSkips(t *testing.T) {
	c := newTestCall(t, newTestRelay(t, testConfig(t, 20)))
	ext, pbx := newEndpoint(t), newEndpoint(t)
	good := ext.key(5, sdp.SuiteAES80)
	body := ext.sdpBody("RTP/SAVP",
		"crypto:5 AES_CM_128_HMAC_SHA1_80 inline:"+goodKey[:30],
		strings.Replace(good, "crypto:5", "crypto:5", 1),
		"crypto:6 AEAD_AES_256_GCM inline:"+goodKey,
		strings.Replace(good, "crypto:5", "crypto:8", 1))
	out, err := c.Offer(SideB, body)
	if err != nil {
		t.Fatal(err)
	}
	pbx.learn(out, 0)
	ans, err := c.Answer(SideA, pbx.sdpBody("RTP/AVP"))
	if err != nil {
		t.Fatal(err)
	}
	s := ext.learn(ans, 0)
	v := s.Media[0].Attrs("crypto")
	if len(v) != 1 || !strings.HasPrefix(v[0], "8 AES_CM_128_HMAC_SHA1_80 ") {
		t.Fatalf("answer crypto %v, want tag 8 (5 is duplicated, 6 unknown)", v)
	}
	exchange(t, pbx, ext, "tags")
}

// An "either" outside with prefer-savp offers RTP/AVP with keys and
// accepts a plain answer (transcoding allowed).
func TestPreferSAVPFallsBack(t *testing.T) {
	cfg := testConfig(t, 20)
	setOutside(cfg, "SRTP", "either")
	c := newTestCall(t, newTestRelay(t, cfg))
	pbx, ext := newEndpoint(t), newEndpoint(t)
	out, err := c.Offer(SideA, pbx.sdpBody("RTP/AVP"))
	if err != nil {
		t.Fatal(err)
	}
	s := ext.learn(out, 1)
	if s.Media[0].Proto != "RTP/AVP" || len(s.Media[0].Attrs("crypto")) != 2 {
		t.Fatalf("prefer-savp offer:\n%s", out)
	}
	ext.rx = nil
	ans, err := c.Answer(SideB, ext.sdpBody("RTP/AVP"))
	if err != nil {
		t.Fatal(err)
	}
	pbx.learn(ans, 0)
	exchange(t, pbx, ext, "fallback")
	if c.Stats().Legs[SideB].SRTP {
		t.Fatal("leg marked SRTP after a plain answer")
	}
}

func TestEncryptionDisabled(t *testing.T) {
	cfg := testConfig(t, 20)
	cfg.Media.EncryptionEnabled = false
	setOutside(cfg, "RTP", "rtp")
	r := newTestRelay(t, cfg)
	if p := r.PolicyFor("outside"); p.Requirement != RequireRTP || len(p.Suites) != 0 {
		t.Fatalf("policy %+v", p)
	}
	c := newTestCall(t, r)
	out, err := c.Offer(SideA, newEndpoint(t).sdpBody("RTP/AVP"))
	if err != nil || strings.Contains(string(out), "crypto") {
		t.Fatalf("%v\n%s", err, out)
	}
}

// Every m= line with a port and a transport the relay can carry is
// anchored; the call's summary statistics describe the audio stream.
func TestAnchoredLinesAndPrimary(t *testing.T) {
	cases := []struct {
		in      string
		lines   string // per m= line: 1 anchored, 0 declined
		primary int
	}{
		{"m=video 5000 RTP/AVP 96\r\nm=audio 5002 RTP/AVP 0\r\n", "11", 1},
		{"m=audio 0 RTP/AVP 0\r\nm=image 5004 udptl t38\r\nm=video 5000 RTP/AVP 96\r\n", "011", 1},
		{"m=audio 5000 UDP/TLS/RTP/SAVPF 111\r\nm=video 5002 RTP/AVP 96\r\n", "01", 1},
		{"m=audio 5000 RTP/AVP 0\r\nm=audio 5002 RTP/AVP 0\r\n", "11", 0},
		{"m=audio 0 RTP/AVP 0\r\n", "0", -1},
	}
	for _, tc := range cases {
		t.Run(tc.lines, func(t *testing.T) {
			cfg := testConfig(t, 40)
			cfg.Media.Policies = []config.MediaPolicy{} // plain RTP both sides
			r := newTestRelay(t, cfg)
			c := newTestCall(t, r)
			body := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" + tc.in
			out, err := c.Offer(SideA, []byte(body))
			if err != nil {
				t.Fatal(err)
			}
			s, err := sdp.Parse(out)
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			for _, m := range s.Media {
				got += map[bool]string{true: "1", false: "0"}[m.Port != 0]
			}
			if got != tc.lines {
				t.Fatalf("anchored lines %s, want %s\n%s", got, tc.lines, out)
			}
			ans := strings.ReplaceAll(body, "127.0.0.1", "127.0.0.9")
			if _, err := c.Answer(SideB, []byte(ans)); err != nil {
				t.Fatal(err)
			}
			c.mu.Lock()
			p := c.primary()
			c.mu.Unlock()
			want := c.spare
			if tc.primary >= 0 {
				want = c.streams[tc.primary]
			}
			if p != want {
				t.Fatalf("summary stream is not m= line %d", tc.primary)
			}
		})
	}
}
