package transport

import (
	"bytes"
	"net"
	"strings"
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

// A stream is cut into the messages sipgo parses from it, however the
// reads split them.
func TestRawStreamFraming(t *testing.T) {
	inv := "INVITE sip:b@x SIP/2.0\r\nv: SIP/2.0/TLS h;branch=z9hG4bK1\r\nf: <sip:a@x>;tag=1\r\nt: <sip:b@x>\r\n" +
		"i: c1\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nl: 5\r\n\r\nv=0\r\n"
	ok := "SIP/2.0 200 OK\r\nVia: SIP/2.0/TLS h;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>;tag=2\r\n" +
		"Call-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
	stream := inv + "\r\n\r\n" + ok + inv // a keep-alive between
	for _, cut := range []int{1, 7, 40, len(inv) - 3, len(inv), len(inv) + 2, len(stream)} {
		s := &rawStream{}
		s.frame([]byte(stream[:cut]))
		s.frame([]byte(stream[cut:]))
		var got []string
		for _, want := range []string{inv, ok, inv} {
			msg, err := NewParser().ParseSIP([]byte(want))
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, string(s.next(msg)))
		}
		if got[0] != inv || got[1] != ok || got[2] != inv {
			t.Errorf("cut at %d: messages %q", cut, got)
		}
	}

	// The parsed message is not the one queued (framing astray): nothing.
	s := &rawStream{}
	s.frame([]byte(ok))
	msg, _ := NewParser().ParseSIP([]byte(inv))
	if raw := s.next(msg); raw != nil {
		t.Errorf("next for another message = %q, want nil", raw)
	}

	// Bare LF line ends: given up, every message is serialised instead.
	s = &rawStream{}
	s.frame([]byte(strings.ReplaceAll(ok, "\r\n", "\n")))
	if !s.off || len(s.msgs) != 0 {
		t.Errorf("bare LF stream: off=%v queued=%d, want off and nothing queued", s.off, len(s.msgs))
	}
}
