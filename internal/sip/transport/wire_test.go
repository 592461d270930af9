package transport

import "testing"

func TestNormalizeScheme(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"OPTIONS soap.beep://192.0.2.103:3002 SIP/2.0\r\nVia: x\r\n", "OPTIONS soapxbeep://192.0.2.103:3002 SIP/2.0\r\nVia: x\r\n"},
		{"OPTIONS s1p:a@b SIP/2.0\r\n", "OPTIONS sxp:a@b SIP/2.0\r\n"},
		{"OPTIONS sip:a@b SIP/2.0\r\n", ""},                                // common case: untouched
		{"SIP/2.0 200 OK\r\n", ""},                                         // a response
		{"OPTIONS 1x:a SIP/2.0\r\n", ""},                                   // a scheme starts with a letter
		{"OPTIONS soap.beep://a SIP/3.0\r\n", ""},                          // not a SIP/2.0 request line
		{"v=0 o=x.y:1 SIP/2.0\r\n", ""},                                    // "v=0" is no method
		{"OPTIONS a_b:c SIP/2.0\r\n", ""},                                  // "_" is no scheme character
		{"OPTIONS soap.beep://a SIP/2.0", "OPTIONS soapxbeep://a SIP/2.0"}, // no line end yet
	} {
		in := []byte(tc.in)
		got := normalizeScheme(in)
		want := tc.want
		if want == "" {
			want = tc.in
		}
		if string(got) != want {
			t.Errorf("%q → %q, want %q", tc.in, got, want)
		}
		if string(in) != tc.in {
			t.Errorf("%q: input modified", tc.in)
		}
	}
}

// FuzzTidySentProtocol: the Via tidy-up keeps the length (sipgo reports
// where a next comma-separated value starts as an offset).
func FuzzTidySentProtocol(f *testing.F) {
	f.Add("SIP / 2.0 / UDP host;branch=z9hG4bK1")
	f.Add("SIP/2.0/TCP a, SIP / 2.0 / UDP b")
	f.Fuzz(func(t *testing.T, v string) {
		if got := tidySentProtocol(v); len(got) != len(v) {
			t.Fatalf("%q → %q: length changed", v, got)
		}
	})
}
