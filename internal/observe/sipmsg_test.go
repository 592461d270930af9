package observe

import (
	"testing"
)

func TestReadHead(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want Head
	}{
		{
			name: "request long headers",
			raw: "INVITE sip:+4687@10.0.0.10;transport=udp SIP/2.0\r\n" +
				"Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n" +
				"From: \"Alice\" <sip:1001@pbx.example.com>;tag=a1\r\n" +
				"To: <sip:+4687@example.com;user=phone>\r\n" +
				"Call-ID: abc@10.0.0.1\r\n" +
				"CSeq: 1 INVITE\r\nContent-Type: Application/SDP\r\n\r\nv=0\r\n",
			want: Head{Method: "INVITE", RequestURI: "sip:+4687@10.0.0.10;transport=udp", CallID: "abc@10.0.0.1",
				FromURI: "sip:1001@pbx.example.com", ToURI: "sip:+4687@example.com;user=phone", FromUser: "1001", ToUser: "+4687", CSeq: 1, SDP: true},
		},
		{
			name: "response compact headers and bare LF",
			raw:  "SIP/2.0 486 Busy Here\nf: sip:1001@a;tag=x\nt: sips:2002:secret@b\ni: xyz\nCSeq: 7 invite\n\n",
			want: Head{Method: "INVITE", Status: 486, Reason: "Busy Here", CallID: "xyz", FromURI: "sip:1001@a", ToURI: "sips:2002:secret@b",
				FromUser: "1001", ToUser: "2002", CSeq: 7},
		},
		{
			name: "no user part",
			raw:  "OPTIONS sip:trunk.example.com SIP/2.0\r\nFrom: <sip:palisade.example.com>;tag=1\r\nTo: sip:trunk.example.com\r\n\r\n",
			want: Head{Method: "OPTIONS", RequestURI: "sip:trunk.example.com", FromURI: "sip:palisade.example.com", ToURI: "sip:trunk.example.com"},
		},
		{
			name: "header values with spaces and first wins",
			raw:  "BYE sip:x@y SIP/2.0\r\nCall-ID :  one \r\nCall-ID: two\r\nCSeq:   3   BYE\r\n\r\n",
			want: Head{Method: "BYE", RequestURI: "sip:x@y", CallID: "one", CSeq: 3},
		},
		{name: "garbage", raw: "\x00\x01 hello", want: Head{}},
		{name: "bad status code", raw: "SIP/2.0 99 Odd\r\n\r\n", want: Head{}},
		{name: "empty", raw: "", want: Head{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ReadHead([]byte(tt.raw))
			if got != tt.want {
				t.Errorf("ReadHead:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestHeadLabel(t *testing.T) {
	tests := []struct {
		h    Head
		want string
	}{
		{Head{Method: "INVITE"}, "INVITE"},
		{Head{Method: "INVITE", Status: 180, Reason: "Ringing"}, "180 Ringing"},
		{Head{Status: 200}, "200"},
		{Head{}, "?"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.h.Label(); got != tt.want {
				t.Errorf("Label() = %q, want %q", got, tt.want)
			}
		})
	}
}

// FuzzReadHead feeds outside bytes to the reader: it must not panic, and
// what it returns must keep its invariants.
func FuzzReadHead(f *testing.F) {
	f.Add([]byte("INVITE sip:1@2 SIP/2.0\r\nCall-ID: a\r\nFrom: <sip:u@h>\r\nTo: t\r\nCSeq: 1 INVITE\r\n\r\n"))
	f.Add([]byte("SIP/2.0 200 OK\ni:x\nf:<sip:@>\nt:\"<\" <\nCSeq: 99999999999 X\n\n"))
	f.Add([]byte("SIP/2.0 "))
	f.Add([]byte("A\r\n:\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		h := ReadHead(raw)
		if h.Status != 0 && (h.Status < 100 || h.Status > 699) {
			t.Fatalf("status %d out of range", h.Status)
		}
		if h.Status != 0 && h.RequestURI != "" {
			t.Fatalf("response with a request URI: %+v", h)
		}
		if len(h.CallID) > len(raw) || len(h.FromUser) > len(raw) {
			t.Fatalf("fields longer than the input: %+v", h)
		}
		_ = h.Label()
	})
}
