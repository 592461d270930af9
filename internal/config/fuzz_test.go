package config

import (
	"encoding/json"
	"os"
	"path/filepath"
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
