package transport

import (
	"bytes"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// A traced request must show the datagram as it came off the wire: compact
// header names and odd spacing included, which sipgo's String() rewrites.
func TestRawIsTheDatagram(t *testing.T) {
	var keep atomic.Bool
	got := make(chan []byte, 4)
	var ep *Endpoint
	ep = New("inside", Hooks{
		KeepRaw: keep.Load,
		OnRequest: func(req *sip.Request, tx *sip.ServerTx) {
			raw := ep.Raw(req)
			if again := ep.Raw(req); again != nil {
				t.Errorf("Raw handed the datagram out twice")
			}
			got <- raw
			_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
		},
	})
	defer ep.Close()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ep.ServeUDPConn(conn)
	peer, err := net.Dial("udp", conn.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	msg := func(branch string) []byte {
		return []byte("OPTIONS sip:unit@127.0.0.1 SIP/2.0\r\n" +
			"v:   SIP/2.0/UDP " + peer.LocalAddr().String() + ";branch=z9hG4bK" + branch + "\r\n" +
			"f: <sip:pbx@127.0.0.1>;tag=1\r\nt: <sip:unit@127.0.0.1>\r\n" +
			"i: raw-" + branch + "\r\nCSeq:1    OPTIONS\r\nMax-Forwards: 70\r\nl: 0\r\n\r\n")
	}
	recv := func() []byte {
		select {
		case raw := <-got:
			return raw
		case <-time.After(30 * time.Second):
			t.Fatal("the request never reached OnRequest")
			return nil
		}
	}

	keep.Store(true)
	sent := msg("a1")
	if _, err := peer.Write(sent); err != nil {
		t.Fatal(err)
	}
	raw := recv()
	if !bytes.Equal(raw, sent) {
		t.Fatalf("Raw = %q, want the datagram %q", raw, sent)
	}
	parsed, err := NewParser().ParseSIP(sent)
	if err != nil {
		t.Fatal(err)
	}
	if parsed.String() == string(sent) {
		t.Fatal("test message serialises unchanged: it cannot tell the datagram from a re-serialised message")
	}

	keep.Store(false) // traces off: nothing kept
	if _, err := peer.Write(msg("b2")); err != nil {
		t.Fatal(err)
	}
	if raw := recv(); raw != nil {
		t.Fatalf("Raw with KeepRaw false = %q, want nil", raw)
	}
}
