package observe_test

import (
	"testing"

	"github.com/palisade-sbc/palisade/internal/media"
	"github.com/palisade-sbc/palisade/internal/observe"
)

// The SIP layer converts media counters with a plain conversion; this stops
// compiling when media.LegStats and observe.MediaLeg drift apart.
func TestMediaLegConversion(t *testing.T) {
	ls := media.LegStats{Codec: "PCMU", PacketsIn: 3, SRTP: true, JitterMs: 1.5}
	ml := observe.MediaLeg(ls)
	if ml.Codec != "PCMU" || ml.PacketsIn != 3 || !ml.SRTP || ml.JitterMs != 1.5 {
		t.Fatalf("%+v", ml)
	}
}
