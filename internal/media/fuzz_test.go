package media

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzOfferAnswer feeds arbitrary SDP to a call as an offer and an answer:
// whatever arrives, the relay answers with an error of the contract or SDP
// that parses, and never panics.
func FuzzOfferAnswer(f *testing.F) {
	files, _ := filepath.Glob("testdata/golden/*.in")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, b)
	}
	r := newTestRelay(f, testConfig(f, 20))
	c := newTestCall(f, r)
	f.Fuzz(func(t *testing.T, offer, answer []byte) {
		for _, side := range []Side{SideA, SideB} {
			out, err := c.Offer(side, offer)
			if err != nil {
				if !errors.Is(err, ErrBadSDP) && !errors.Is(err, ErrNotAcceptable) {
					t.Fatalf("offer: error outside the contract: %v", err)
				}
				continue
			}
			if len(out) == 0 {
				t.Fatal("empty SDP out")
			}
			if _, err := c.Answer(side.Other(), answer); err != nil && !errors.Is(err, ErrBadSDP) && !errors.Is(err, ErrNotAcceptable) {
				t.Fatalf("answer: error outside the contract: %v", err)
			}
		}
	})
}
