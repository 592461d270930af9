package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to the strict decoder, the validator and
// the path functions: they may reject the input but must never panic, and a
// document they accept must survive an encode/decode round trip.
func FuzzDecode(f *testing.F) {
	b, _ := Encode(Default())
	f.Add(b)
	for _, name := range []string{"many-mistakes.json", "unknown-fields.json"} {
		if doc, err := os.ReadFile(filepath.Join("testdata", name)); err == nil {
			f.Add(doc)
		}
	}
	f.Add([]byte(`{"peers":[{"headers":{"a":"b"}}],"sip":{"listeners":[{"port":1e400}]}}`))
	f.Add([]byte(`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[`))
	f.Add([]byte(`{"dial_plan":{"rules":[{"regex":"(a*)*$","tail":"]["}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Decode(data)
		if err != nil {
			return
		}
		_ = c.Validate()
		enc, err := Encode(c)
		if err != nil {
			t.Fatalf("Encode of a decoded document: %v", err)
		}
		c2, err := Decode(enc)
		if err != nil {
			t.Fatalf("re-decode: %v\n%s", err, enc)
		}
		if !Equal(c, c2) {
			t.Fatal("round trip changed the document")
		}
		_, _ = Get(c, "sip.listeners[0].port")
		_, _ = Set(c, "peers[0]", json.RawMessage(`{"name":"x"}`))
		_, _ = Diff(c, Default())
	})
}

// FuzzPath feeds arbitrary paths and values (as typed on the command line)
// to Get, Set and Delete: errors are fine, panics are not, and a Set that
// succeeds must read back through Get.
func FuzzPath(f *testing.F) {
	for _, s := range []struct{ path, value string }{
		{"sip.listeners[0].port", "5070"},
		{"peers[0]", `{"name":"p"}`},
		{`peers[0].headers["X A"]`, `"v"`},
		{"media.default_policy.allow_transcoding", "false"},
		{"a[", "1"},
		{`x["\"]`, "null"},
		{"[0]", "[]"},
	} {
		f.Add(s.path, s.value)
	}
	base := Default()
	f.Fuzz(func(t *testing.T, path, value string) {
		_, _ = Get(base, path)
		_, _ = Delete(base, path)
		c, err := Set(base, path, json.RawMessage(value))
		if err != nil {
			return
		}
		if _, err := Get(c, path); err != nil && !strings.Contains(path, "[") {
			// A set member may be defaulted away (null) or an omitted
			// empty value; anything else must read back.
			var v any
			if json.Unmarshal([]byte(value), &v) == nil && v != nil && v != "" {
				t.Fatalf("Set(%q, %s) succeeded but Get fails: %v", path, value, err)
			}
		}
	})
}
