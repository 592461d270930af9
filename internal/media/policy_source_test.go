package media

import (
	"errors"
	"strings"
	"testing"

	"github.com/palisade-sbc/palisade/internal/config"
)

// A refused answer names the policy that refused it and how to change it;
// with media.policies emptied, a plain RTP/AVP answer without a=crypto is
// taken (the default policy does not require SRTP).
func TestPlainAnswerByPolicy(t *testing.T) {
	cases := []struct {
		name    string
		doc     string
		wantErr []string // substrings of the error; nil: the answer is taken
	}{
		{"default: outside requires SRTP", `{}`, []string{`"outside"`, "media.policies[0]", "requirement srtp", `"either"`}},
		{"policies emptied", `{"media":{"policies":[]}}`, nil},
		{"policies emptied, default either", `{"media":{"policies":[],"default_policy":{"group":"SRTP","requirement":"either"}}}`, nil},
		// null (like a missing member) takes the default list back.
		{"policies null", `{"media":{"policies":null}}`, []string{"media.policies[0]"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Decode([]byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			cfg.Media.PortMin, cfg.Media.PortMax = freeRange(t, 20)
			c := newTestCall(t, newTestRelay(t, cfg))
			pbx, ext := newEndpoint(t), newEndpoint(t)
			if _, err := c.Offer(SideA, pbx.sdpBody("RTP/AVP")); err != nil {
				t.Fatal(err)
			}
			_, err = c.Answer(SideB, ext.sdpBody("RTP/AVP"))
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("plain answer refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrNotAcceptable) {
				t.Fatalf("err = %v, want ErrNotAcceptable", err)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %s", err, w)
				}
			}
		})
	}
}
