package b2bua

import (
	"strings"
	"sync"

	"github.com/palisade-sbc/palisade/internal/media"
)

// sdpMemo is a call's media session that remembers the last SDP each side
// sent (offer or answer): a transfer offers the transferee's current
// session to the new party straight away, as a new call would
// (transfer.go).
type sdpMemo struct {
	media.Call
	mu   sync.Mutex
	last [2][]byte
}

// remember wraps mc (once).
func remember(mc media.Call) *sdpMemo {
	if m, ok := mc.(*sdpMemo); ok {
		return m
	}
	return &sdpMemo{Call: mc}
}

func (m *sdpMemo) Offer(from media.Side, sdp []byte) ([]byte, error) {
	out, err := m.Call.Offer(from, sdp)
	if err == nil {
		m.note(from, sdp)
	}
	return out, err
}

func (m *sdpMemo) Reoffer(from media.Side, sdp []byte) ([]byte, error) {
	out, err := media.Reoffer(m.Call, from, sdp)
	if err == nil {
		m.note(from, sdp)
	}
	return out, err
}

func (m *sdpMemo) Answer(from media.Side, sdp []byte) ([]byte, error) {
	out, err := m.Call.Answer(from, sdp)
	if err == nil {
		m.note(from, sdp)
	}
	return out, err
}

// note records sdp as the last description side sent.
func (m *sdpMemo) note(side media.Side, sdp []byte) {
	if len(sdp) == 0 {
		return
	}
	m.mu.Lock()
	m.last[side] = sdp
	m.mu.Unlock()
}

// lastFrom returns the last SDP side sent, nil when none.
func (m *sdpMemo) lastFrom(side media.Side) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.last[side]
}

// sameTransport reports whether two descriptions of one party put its
// media at the same addresses with the same SRTP keys: connection lines,
// media ports and crypto keys (codec lists may differ between an offer and
// an answer).
func sameTransport(a, b []byte) bool {
	return transportOf(a) == transportOf(b)
}

func transportOf(sdp []byte) string {
	var out []string
	for l := range strings.SplitSeq(string(sdp), "\n") {
		l = strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "c="):
			out = append(out, l)
		case strings.HasPrefix(l, "m="):
			f := strings.Fields(l)
			if len(f) >= 2 {
				out = append(out, f[0]+" "+f[1])
			}
		case strings.HasPrefix(l, "a=crypto:"):
			if _, key, ok := strings.Cut(l, "inline:"); ok {
				key, _, _ = strings.Cut(key, "|")
				out = append(out, "k="+key)
			}
		}
	}
	return strings.Join(out, "\n")
}

// newMedia creates the media session of a call (or of a transfer's new
// pairing), remembering what each side sends.
func (s *Service) newMedia(id string, a, b media.Leg) (*sdpMemo, error) {
	mc, err := s.deps.Media.NewCall(id, a, b)
	if err != nil {
		return nil, err
	}
	return remember(mc), nil
}
