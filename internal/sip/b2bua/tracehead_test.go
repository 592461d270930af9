package b2bua

import (
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/observe"
)

// The trace store takes the Head of a traced message from what sipgo
// parsed instead of reading the text again: it must be what reading the
// text gives, for the fields the store uses.
func TestHeadOfMatchesReadHead(t *testing.T) {
	const body = "v=0\r\no=- 1 1 IN IP4 10.0.0.10\r\ns=-\r\nc=IN IP4 10.0.0.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
	msg := func(start, cseq string, hdrs ...string) string {
		lines := append([]string{start,
			"Via: SIP/2.0/UDP 10.0.0.10:5060;branch=z9hG4bK-1",
			`From: "Alice" <sip:+4610@pbx.example.com;user=phone>;tag=a1`,
			"To: <sip:4420@trunk.example.net>",
			"Call-ID: abc-123@10.0.0.10",
			"CSeq: " + cseq}, hdrs...)
		return strings.Join(lines, "\r\n") + "\r\n"
	}
	for _, tc := range []struct{ name, text string }{
		{"INVITE with SDP", msg("INVITE sip:4420@trunk.example.net SIP/2.0", "1 INVITE",
			"Content-Type: application/sdp", "Content-Length: "+itoa(len(body)), "", body)},
		{"compact headers", strings.Join([]string{"BYE sip:4420@10.0.0.1 SIP/2.0",
			"v: SIP/2.0/UDP 10.0.0.10:5060;branch=z9hG4bK-2", "f: sip:1001@pbx;tag=a1", "t: sip:4420@10.0.0.1;tag=b2",
			"i: compact@x", "CSeq: 2 BYE", "l: 0", "", ""}, "\r\n")},
		{"180 response", msg("SIP/2.0 180 Ringing", "1 INVITE", "Content-Length: 0", "", "")},
		{"200 to BYE", msg("SIP/2.0 200 OK", "2 BYE", "Content-Length: 0", "", "")},
		{"486 with reason words", msg("SIP/2.0 486 Busy Here", "1 INVITE", "Content-Length: 0", "", "")},
	} {
		m, err := sip.ParseMessage([]byte(tc.text))
		if err != nil {
			t.Fatalf("%s: parse: %v", tc.name, err)
		}
		got, want := headOf(m), observe.ReadHead([]byte(tc.text))
		if got == nil {
			t.Fatalf("%s: no head", tc.name)
		}
		if got.Method != want.Method || got.Status != want.Status || got.Reason != want.Reason ||
			got.CallID != want.CallID || got.FromUser != want.FromUser || got.ToUser != want.ToUser || got.CSeq != want.CSeq {
			t.Errorf("%s: from sipgo %+v, from the text %+v", tc.name, *got, want)
		}
		if want.Method == "" || want.CallID == "" || want.FromUser == "" {
			t.Errorf("%s: the text's head is incomplete: %+v", tc.name, want)
		}
	}
}
