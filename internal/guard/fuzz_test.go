package guard

import (
	"testing"

	"github.com/emiago/sipgo/sip"
)

// FuzzCheck feeds outside bytes through sipgo's parser and the guard:
// whatever parses must be judged without panicking.
func FuzzCheck(f *testing.F) {
	f.Add([]byte("INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: 1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"))
	f.Add([]byte("OPTIONS sip:a@b SIP/7.0\r\nCall-ID: 1\r\nCall-ID: 2\r\nTo: <sip:a@b>;tag=9\r\nAuthorization: Digest x\r\n\r\n"))
	f.Add([]byte("1234 (a b) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14"))
	g := New(testConfig(nil), nil)
	f.Fuzz(func(t *testing.T, b []byte) {
		parseStatTicks(b)
		m, err := sip.ParseMessage(b)
		if err != nil {
			return
		}
		req, ok := m.(*sip.Request)
		if !ok {
			return
		}
		req.SetSource("10.0.0.7:5060")
		v := g.Check(SIPRequest(req, "outside", "", 0))
		if v.Action == Reject {
			v.Response(req)
		}
	})
}
