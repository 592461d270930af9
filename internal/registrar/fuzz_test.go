package registrar

import (
	"net/netip"
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/store"
)

// FuzzHandleRegister feeds outside REGISTER messages to the registrar: any
// message sipgo parses must get an answer (or nil), never a panic.
func FuzzHandleRegister(f *testing.F) {
	base := "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n" +
		"From: <sip:alice@example.com>;tag=1\r\nTo: <sip:alice@example.com>\r\nCall-ID: c1\r\nCSeq: 1 REGISTER\r\n"
	f.Add(base + "Contact: <sip:alice@127.0.0.1:5070>;q=0.5;expires=60\r\nExpires: 60\r\nContent-Length: 0\r\n\r\n")
	f.Add(base + "Contact: *\r\nExpires: 0\r\nContent-Length: 0\r\n\r\n")
	f.Add(base + "Contact: <sip:a@b>, <sips:c@d;transport=tls>;q=1.000\r\nExpires: 99999999999999999999\r\n" +
		"Authorization: Digest username=\"alice\", realm=\"example.com\", nonce=\"x\", uri=\"sip:example.com\", response=\"00\", qop=auth, nc=00000001, cnonce=\"c\"\r\nContent-Length: 0\r\n\r\n")
	r := New(store.NewMemory(), nil, nil)
	if err := r.Apply(f.Context(), testConfig()); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { r.Close() })
	f.Fuzz(func(t *testing.T, raw string) {
		msg, err := sip.ParseMessage([]byte(raw))
		if err != nil {
			return
		}
		req, ok := msg.(*sip.Request)
		if !ok {
			return
		}
		src := Source{Addr: netip.MustParseAddrPort("127.0.0.1:5070"), Transport: "udp"}
		_ = r.HandleRegister(req, src)
		// The fuzzer cannot answer digest challenges: feed the binding
		// code (what runs after authentication) directly too.
		_, _ = r.update(req, src, "alice@example.com", r.set.Load())
		_, _, _ = contactsOf(req)
		_, _, _ = parseExpires(headerValue(req, "Expires"))
	})
}
