package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/palisade-sbc/palisade/internal/registrar"
)

func TestPrintRegistrations(t *testing.T) {
	raw, _ := json.Marshal([]registrar.Registration{
		{Kind: "local", AOR: "alice@example.com", State: "registered", Contact: "sip:alice@10.0.0.5:5060",
			Source: "127.0.0.1:5070", Transport: "udp", Q: 0.5, ExpiresIn: 42, UserAgent: "baresip"},
		{Kind: "trunk", AOR: "acct@itsp.example", Peer: "itsp", State: "failed", LastError: "trunk answered 403 Forbidden"},
	})
	var b bytes.Buffer
	printRegistrations(&b, raw)
	out := b.String()
	for _, want := range []string{"alice@example.com", "42 s", "127.0.0.1:5070/udp", "0.5", "baresip",
		"acct@itsp.example", "peer itsp", "trunk answered 403 Forbidden"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	b.Reset()
	printRegistrations(&b, json.RawMessage(`[]`))
	if !strings.Contains(b.String(), "no registrations") {
		t.Errorf("empty: %q", b.String())
	}
}
