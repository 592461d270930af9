package accounts

import (
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/sip/digest"
)

// FuzzTrunkResponse feeds answers a trunk could send to a REGISTER to the
// code that reads them: the granted expiry, stale challenges and the digest
// answer.
func FuzzTrunkResponse(f *testing.F) {
	head := "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>;tag=2\r\nCall-ID: c\r\nCSeq: 2 REGISTER\r\n"
	f.Add(head + "Contact: <sip:acct@127.0.0.1:5060>;expires=120, <sip:other@10.0.0.1>;expires=x\r\nExpires: 300\r\nContent-Length: 0\r\n\r\n")
	f.Add("SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\n" +
		"WWW-Authenticate: Digest realm=\"r\", nonce=\"n\", algorithm=SHA-256, qop=\"auth,auth-int\", stale=TRUE\r\nContent-Length: 0\r\n\r\n")
	f.Add("SIP/2.0 407 Proxy\r\nCSeq: 1 REGISTER\r\nProxy-Authenticate: Digest realm=\"\\\"\", nonce=\r\n\r\n")
	contact := sip.Uri{Scheme: "sip", User: "acct", Host: "127.0.0.1", Port: 5060}
	cli := digest.NewClient()
	f.Fuzz(func(t *testing.T, raw string) {
		msg, err := sip.ParseMessage([]byte(raw))
		if err != nil {
			return
		}
		res, ok := msg.(*sip.Response)
		if !ok {
			return
		}
		if g := granted(res, contact, 3600); g < 0 || g > 3600 {
			t.Fatalf("granted %d outside 0..3600", g)
		}
		_ = staleChallenge(res)
		req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: "b"})
		_ = cli.Authorize(req, res, digest.Credentials{Username: "acct", Password: "pw"})
	})
}
