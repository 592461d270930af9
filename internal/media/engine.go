// Package media anchors and relays RTP/RTCP (and SRTP) between the two legs
// of a call. It takes SDP bytes and addresses and never sees SIP types: the
// SIP layer hands it bodies and maps its errors to SIP status codes.
package media

import (
	"errors"
	"net/netip"
)

// Side is one of the two legs of a call.
type Side int

const (
	SideA Side = iota // the caller's leg (where the first INVITE came in)
	SideB             // the callee's leg
)

// Other returns the opposite side.
func (s Side) Other() Side { return 1 - s }

// Leg describes where one leg's media goes: the interface it uses and the
// local address the relay binds and advertises there.
type Leg struct {
	Interface  string     // interface name from the configuration
	Bind       netip.Addr // local address to bind relay ports on
	Advertised netip.Addr // address written into SDP (Bind when unset)
}

// Errors the SIP layer maps to responses.
var (
	ErrNotAcceptable = errors.New("media: offer cannot meet the media policy") // 488
	ErrNoPorts       = errors.New("media: no relay ports left")                // 503
	ErrBadSDP        = errors.New("media: malformed SDP")                      // 400
)

// Engine creates media sessions for calls.
type Engine interface {
	NewCall(id string, a, b Leg) (Call, error)
}

// Call is the media of one call. Offer and Answer take the SDP received on
// side from and return the SDP to send on the other side.
type Call interface {
	Offer(from Side, sdp []byte) ([]byte, error)
	Answer(from Side, sdp []byte) ([]byte, error)
	// OnInactive is called once when no media arrived for the inactivity timeout.
	OnInactive(fn func())
	Stats() CallStats
	Close()
}

// CallStats are the per-call media counters shown in status and CDRs.
type CallStats struct {
	Legs [2]LegStats
}

// LegStats counts one leg's media.
type LegStats struct {
	Local, Remote netip.AddrPort
	Codec         string
	SRTP          bool
	Suite         string
	PacketsIn     uint64
	PacketsOut    uint64
	BytesIn       uint64
	BytesOut      uint64
	Lost          uint64
	AuthFailures  uint64
}

// Passthrough is an Engine that leaves SDP untouched (no anchoring). It is
// what the SIP layer uses in tests that do not care about media.
type Passthrough struct{}

// NewCall returns a call whose Offer/Answer return their input.
func (Passthrough) NewCall(string, Leg, Leg) (Call, error) { return passCall{}, nil }

type passCall struct{}

func (passCall) Offer(_ Side, sdp []byte) ([]byte, error)  { return sdp, nil }
func (passCall) Answer(_ Side, sdp []byte) ([]byte, error) { return sdp, nil }
func (passCall) OnInactive(func())                         {}
func (passCall) Stats() CallStats                          { return CallStats{} }
func (passCall) Close()                                    {}
