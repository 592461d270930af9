package guard

import (
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

func parseReq(t *testing.T, s string) *sip.Request {
	t.Helper()
	m, err := sip.ParseMessage([]byte(strings.ReplaceAll(s, "\n", "\r\n")))
	if err != nil {
		t.Fatal(err)
	}
	req := m.(*sip.Request)
	req.SetSource("10.0.0.5:5060")
	return req
}

func TestSIPRequest(t *testing.T) {
	tests := []struct {
		name      string
		msg       string
		inDialog  bool
		creds     bool
		malformed int
	}{
		{"new INVITE", "INVITE sip:b@y SIP/2.0\nFrom: <sip:a@x>;tag=1\nTo: <sip:b@y>\nCall-ID: c1\nCSeq: 1 INVITE\nVia: SIP/2.0/UDP 10.0.0.5;branch=z9hG4bK1\nContent-Length: 0\n\n", false, false, 0},
		{"in-dialog BYE", "BYE sip:b@y SIP/2.0\nFrom: <sip:a@x>;tag=1\nTo: <sip:b@y>;tag=2\nCall-ID: c1\nCSeq: 2 BYE\nVia: SIP/2.0/UDP 10.0.0.5;branch=z9hG4bK2\nContent-Length: 0\n\n", true, false, 0},
		{"CANCEL counts as in-dialog", "CANCEL sip:b@y SIP/2.0\nFrom: <sip:a@x>;tag=1\nTo: <sip:b@y>\nCall-ID: c1\nCSeq: 1 CANCEL\nVia: SIP/2.0/UDP 10.0.0.5;branch=z9hG4bK1\nContent-Length: 0\n\n", true, false, 0},
		{"REGISTER with credentials", "REGISTER sip:y SIP/2.0\nFrom: <sip:a@y>;tag=1\nTo: <sip:a@y>\nCall-ID: c1\nCSeq: 2 REGISTER\nVia: SIP/2.0/UDP 10.0.0.5;branch=z9hG4bK3\nAuthorization: Digest username=\"a\"\nContent-Length: 0\n\n", false, true, 0},
		{"two Call-IDs (RFC 4475 multi01)", "INVITE sip:b@y SIP/2.0\nFrom: <sip:a@x>;tag=1\nTo: <sip:b@y>\nCall-ID: c1\nCall-ID: c2\nCSeq: 1 INVITE\nVia: SIP/2.0/UDP 10.0.0.5;branch=z9hG4bK1\nContent-Length: 0\n\n", false, false, 400},
		{"two To", "OPTIONS sip:b@y SIP/2.0\nFrom: <sip:a@x>;tag=1\nTo: <sip:b@y>\nTo: <sip:c@y>\nCall-ID: c1\nCSeq: 1 OPTIONS\nVia: SIP/2.0/UDP 10.0.0.5;branch=z9hG4bK1\nContent-Length: 0\n\n", false, false, 400},
		{"SIP/7.0 (RFC 4475 badvers)", "OPTIONS sip:b@y SIP/7.0\nFrom: <sip:a@x>;tag=1\nTo: <sip:b@y>\nCall-ID: c1\nCSeq: 1 OPTIONS\nVia: SIP/7.0/UDP 10.0.0.5;branch=z9hG4bK1\nContent-Length: 0\n\n", false, false, 505},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := SIPRequest(parseReq(t, tc.msg), "inside", "", 3)
			if r.InDialog != tc.inDialog || r.HasCredentials != tc.creds || r.Malformed != tc.malformed {
				t.Fatalf("got in-dialog %v creds %v malformed %d, want %v %v %d", r.InDialog, r.HasCredentials, r.Malformed, tc.inDialog, tc.creds, tc.malformed)
			}
			if r.Source.String() != "10.0.0.5:5060" || r.Interface != "inside" || r.Calls != 3 {
				t.Fatalf("request info %+v", r)
			}
			g := New(nil, nil)
			v := g.Check(r)
			if tc.malformed != 0 && (v.Action != Reject || v.Code != tc.malformed) {
				t.Fatalf("malformed request: %+v", v)
			}
			if tc.malformed != 0 {
				res := v.Response(parseReq(t, tc.msg))
				if res.StatusCode != tc.malformed {
					t.Fatalf("response %d", res.StatusCode)
				}
			}
		})
	}
}
