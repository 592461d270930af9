package sdp

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/palisade-sbc/palisade/internal/config"
)

func TestNewOffer(t *testing.T) {
	b, err := NewOffer(netip.MustParseAddr("10.0.0.1"), 9, []string{"PCMA", "G729", "opus", "telephone-event"}, 42)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Parse(b)
	if err != nil {
		t.Fatalf("offer does not parse: %v\n%s", err, b)
	}
	m := s.Media[0]
	if m.Port != 9 || m.Proto != "RTP/AVP" || strings.Join(m.Fmts, " ") != "8 18 111 101" {
		t.Fatalf("m= line %+v", m)
	}
	if a, _ := s.Conn(); a != netip.MustParseAddr("10.0.0.1") {
		t.Fatalf("c= %v", a)
	}
	for _, want := range []string{"a=rtpmap:111 opus/48000/2\r\n", "a=fmtp:18 annexb=no\r\n", "a=fmtp:101 0-16\r\n", "a=sendrecv\r\n"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("offer lacks %q:\n%s", want, b)
		}
	}
	if _, err := NewOffer(netip.MustParseAddr("10.0.0.1"), 9, []string{"AMR"}, 1); err == nil {
		t.Error("unknown codec accepted")
	}
	if _, err := NewOffer(netip.MustParseAddr("10.0.0.1"), 9, []string{"telephone-event"}, 1); err == nil {
		t.Error("offer without audio codec accepted")
	}
}

// TestOfferCodecsOfConfig: every codec the configuration accepts in
// peers[].trunk.offer.codecs can be offered.
func TestOfferCodecsOfConfig(t *testing.T) {
	for _, c := range append(config.OfferCodecs, config.DefaultOfferCodecs...) {
		if _, ok := offerCodecs[c]; !ok {
			t.Errorf("config offers %q, NewOffer does not know it", c)
		}
	}
	if _, err := NewOffer(netip.MustParseAddr("10.0.0.1"), 9, config.DefaultOfferCodecs, 1); err != nil {
		t.Fatal(err)
	}
}
