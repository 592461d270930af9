package config

import (
	"encoding/json"
	"github.com/palisade-sbc/palisade/internal/testkit"
	"path/filepath"
	"strings"
	"testing"
)

func TestGet(t *testing.T) {
	c := Default()
	tests := []struct {
		path, want, err string
	}{
		{"sip.listeners[0].port", "5060", ""},
		{"media.default_policy.allow_transcoding", "true", ""},
		{"unit.name", `"palisade"`, ""},
		{"routing.order[1]", `"registrar"`, ""},
		{"tls.handshake_timeout", `"10s"`, ""},
		{"admin.allowed_networks", "[\n  \"127.0.0.0/8\",\n  \"::1/128\"\n]", ""},
		{"sip.listeners[9]", "", "sip.listeners[9]: index 9 is out of range (the list has 3 elements)"},
		{"sip.nope", "", "sip.nope: no such field"},
		{"sip.listeners.port", "", "sip.listeners.port: sip.listeners is a list; use an index such as [0]"},
		{"unit[0]", "", "unit[0]: unit is an object, not a list"},
		{"unit.name.first", "", `unit.name.first: unit.name is the string "palisade", which has no fields`},
		{"sip..port", "", `path "sip..port": empty name after '.'`},
		{"sip.listeners[x]", "", `path "sip.listeners[x]": "x" is not a list index`},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			got, err := Get(c, tt.path)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("Get(%s) = %s, want %s", tt.path, got, tt.want)
			}
		})
	}
	// Empty fields that the encoding leaves out still read as their zero value.
	withPeer, _ := Set(c, "peers[0]", json.RawMessage(`{"name":"p","address":"10.0.0.1"}`))
	for path, want := range map[string]string{
		"peers[0].domain": `""`, "peers[0].auth.expires": `"0s"`, "peers[0].headers": "{}",
	} {
		if got, err := Get(withPeer, path); err != nil || string(got) != want {
			t.Errorf("Get(%s) = %s, %v; want %s", path, got, err, want)
		}
	}
	for _, path := range []string{"peers[0].nosuch", `peers[0].headers["X-A"]`, "peers[1].domain"} {
		if _, err := Get(withPeer, path); err == nil {
			t.Errorf("Get(%s) succeeded", path)
		}
	}
	whole, err := Get(c, "")
	if err != nil || !json.Valid(whole) {
		t.Fatalf("Get(\"\") = %.40s, %v", whole, err)
	}
}

func TestSet(t *testing.T) {
	orig := Default()
	c, err := Set(orig, "sip.listeners[0].port", json.RawMessage("5070"))
	if err != nil {
		t.Fatal(err)
	}
	if c.SIP.Listeners[0].Port != 5070 || orig.SIP.Listeners[0].Port != 5060 {
		t.Fatalf("Set did not change the copy only: %d / %d", c.SIP.Listeners[0].Port, orig.SIP.Listeners[0].Port)
	}
	c, err = Set(c, "media.default_policy.allow_transcoding", json.RawMessage("false"))
	if err != nil || c.Media.DefaultPolicy.AllowTranscoding {
		t.Fatalf("bool: %v", err)
	}
	peer := `{"name":"pbx","kind":"pbx","interface":"inside","address":"10.0.0.10","transport":"udp"}`
	c, err = Set(c, "peers[0]", json.RawMessage(peer)) // index == len appends
	if err != nil || len(c.Peers) != 1 || c.Peers[0].Address != "10.0.0.10" {
		t.Fatalf("append: %v %+v", err, c.Peers)
	}
	c, err = Set(c, `peers[0].headers`, json.RawMessage(`{"X-MS-SBC":"Palisade"}`))
	if err != nil || c.Peers[0].Headers["X-MS-SBC"] != "Palisade" {
		t.Fatalf("omitted member: %v %+v", err, c.Peers[0])
	}
	c, err = Set(c, `peers[0].headers["X-Two Words"]`, json.RawMessage(`"v"`))
	if err != nil || c.Peers[0].Headers["X-Two Words"] != "v" {
		t.Fatalf("quoted key: %v %+v", err, c.Peers[0].Headers)
	}
	if errs := c.Validate(); len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), `peers[0].headers["X-Two Words"]: "X-Two Words" is not a SIP header name`) {
		t.Fatalf("Validate after Set: %v", errs)
	}
	c, err = Set(c, "tls.idle_timeout", json.RawMessage(`"2m"`))
	if err != nil || c.TLS.IdleTimeout.D().Minutes() != 2 {
		t.Fatalf("duration: %v", err)
	}

	errTests := []struct{ path, value, want string }{
		{"sip.listeners[0].port", `"5060"`, `sip.listeners[0].port: expected a number, got the string "5060"`},
		{"sip.listeners[5]", `{}`, "sip.listeners[5]: index 5 is out of range (the list has 3 elements; [3] appends)"},
		{"sip.bogus", `1`, "sip.bogus: unknown field"},
		{"sip.listeners[0].port", `50 60`, "sip.listeners[0].port: the new value is not JSON"},
		{"", `{}`, "the path is empty"},
		{"peers[0].name.x", `1`, "peers[0]: index 0 is out of range (the list has 0 elements)"},
	}
	for _, tt := range errTests {
		t.Run(tt.path, func(t *testing.T) {
			_, err := Set(Default(), tt.path, json.RawMessage(tt.value))
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("err = %v, want prefix %q", err, tt.want)
			}
		})
	}
}

func TestDelete(t *testing.T) {
	c, err := Delete(Default(), "sip.listeners[0]")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.SIP.Listeners) != 2 || c.SIP.Listeners[0].Transport != "tcp" {
		t.Fatalf("after delete: %+v", c.SIP.Listeners)
	}
	c.Unit.Name = "changed"
	c, err = Delete(c, "unit.name") // an object member goes back to its default
	if err != nil || c.Unit.Name != "palisade" {
		t.Fatalf("delete member: %v %q", err, c.Unit.Name)
	}
	if _, err := Delete(c, "peers[0]"); err == nil {
		t.Fatal("deleting past the end succeeded")
	}
}

func TestDiff(t *testing.T) {
	a := Default()
	b := Default()
	b.SIP.Listeners[0].Port = 5070
	b.Peers = append(b.Peers, Peer{Name: "pbx", Kind: "pbx", Interface: "inside", Address: "10.0.0.10", Transport: "udp"})
	b.Routing.Order = b.Routing.Order[:2]
	changes, err := Diff(a, b)
	if err != nil {
		t.Fatal(err)
	}
	got := FormatChanges(changes)
	want := `sip.listeners[0].port: 5060 → 5070
routing.order[2]: removed "dial_plan"
peers[0]: added {"name":"pbx","kind":"pbx","profile":"","type":"","interface":"inside","address":"10.0.0.10","transport":"udp","prefix":"","auth":{"username":"","password":"","register":false},"options_interval":"0s"}
`
	if got != want {
		t.Fatalf("Diff:\n%s\nwant\n%s", got, want)
	}
	if cs, _ := Diff(a, Default()); len(cs) != 0 {
		t.Fatalf("equal configs differ: %v", cs)
	}
	u, err := UnifiedDiff("running", "preliminary", a, b)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Golden(t, filepath.Join("testdata", "default-vs-changed.diff"), []byte(u))
	if u, _ := UnifiedDiff("a", "b", a, Default()); u != "" {
		t.Fatalf("unified diff of equal documents: %q", u)
	}
}

func TestLineDiffReconstructs(t *testing.T) {
	// Applying the edit script to a must give b, for assorted edits.
	cases := [][2][]string{
		{{"a", "b", "c"}, {"a", "x", "c"}},
		{{}, {"a"}},
		{{"a"}, {}},
		{{"a", "b", "c", "d"}, {"b", "d", "e"}},
		{{"x", "x", "x"}, {"x", "y", "x", "x"}},
	}
	for _, c := range cases {
		var gotA, gotB []string
		for _, op := range lineDiff(c[0], c[1]) {
			if op.kind != '+' {
				gotA = append(gotA, op.text)
			}
			if op.kind != '-' {
				gotB = append(gotB, op.text)
			}
		}
		if strings.Join(gotA, ",") != strings.Join(c[0], ",") || strings.Join(gotB, ",") != strings.Join(c[1], ",") {
			t.Errorf("lineDiff(%v, %v) reconstructs %v / %v", c[0], c[1], gotA, gotB)
		}
	}
}
