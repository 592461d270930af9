package transport

import (
	"strings"
	"testing"
)

func TestLocalHeaders(t *testing.T) {
	tests := []struct {
		name        string
		local       Local
		tr          string
		via, contct string
	}{
		{"udp", Local{Host: "sbc.example.com", Ports: map[string]int{"udp": 5070}}, "udp",
			"SIP/2.0/UDP sbc.example.com:5070;branch=", "<sip:sbc.example.com:5070>"},
		{"tls", Local{Host: "203.0.113.5", Ports: map[string]int{"udp": 5060, "tls": 5061}}, "tls",
			"SIP/2.0/TLS 203.0.113.5:5061;branch=", "<sip:203.0.113.5:5061;transport=tls>"},
		{"no listener of that transport", Local{Host: "203.0.113.5", Ports: map[string]int{"tcp": 5080}}, "udp",
			"SIP/2.0/UDP 203.0.113.5:5080;branch=", "<sip:203.0.113.5:5080>"},
		{"ipv6, nothing bound", Local{Host: "2001:db8::1"}, "udp",
			"SIP/2.0/UDP [2001:db8::1]:5060;branch=", "<sip:[2001:db8::1]:5060>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.local.Via(tt.tr).Value()
			if !strings.HasPrefix(v, tt.via) || !strings.HasSuffix(v, ";rport") {
				t.Errorf("Via %q, want %q…;rport", v, tt.via)
			}
			if c := tt.local.Contact(tt.tr).Value(); c != tt.contct {
				t.Errorf("Contact %q, want %q", c, tt.contct)
			}
		})
	}
	l := Local{Host: "2001:db8::1", Ports: map[string]int{"tls": 5061}}
	if hp := l.HostPort("tls"); hp != "[2001:db8::1]:5061" {
		t.Errorf("HostPort %q", hp)
	}
}
