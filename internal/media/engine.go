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
	Interface string     // interface name from the configuration
	Bind      netip.Addr // local address to bind relay ports on
	// Advertised is the address written into SDP. When unset, or equal to
	// Bind, the interface's advertised_address is used, else Bind. An
	// unset Bind is the interface's address.
	Advertised netip.Addr
	// Peer is the configured peer the leg faces, "" for none: its own
	// media policy (peers[].media) then applies instead of the interface's.
	Peer string
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
//
// An offer may come from either side (late offer: the callee's 200 carries
// it and the ACK the answer). Every Offer starts a new exchange (initial
// INVITE, re-INVITE, UPDATE); Answer may be called more than once for the
// same offer (reliable 183 then 200): the same keys are given out again.
// Nothing changes on the packet path until an Answer is accepted.
//
// Errors: ErrBadSDP (400), ErrNotAcceptable (488; from Answer it means the
// answerer's media cannot meet the policy: the SIP layer ends that leg and
// answers the offerer with 488), anything else is a 500.
type Call interface {
	Offer(from Side, sdp []byte) ([]byte, error)
	Answer(from Side, sdp []byte) ([]byte, error)
	// OnInactive is called once when no media arrived for the inactivity timeout.
	OnInactive(fn func())
	Stats() CallStats
	Close()
}

// Reofferer is a Call that can take a re-offer within its dialogs apart
// from a new offer (a transfer's): the SRTP keys towards the other side are
// kept then.
type Reofferer interface {
	Reoffer(from Side, sdp []byte) ([]byte, error)
}

// Reoffer relays a re-offer within the call's dialogs: Reoffer where c has
// it, else Offer.
func Reoffer(c Call, from Side, sdp []byte) ([]byte, error) {
	if r, ok := c.(Reofferer); ok {
		return r.Reoffer(from, sdp)
	}
	return c.Offer(from, sdp)
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
	// JitterMs is the RFC 3550 §6.4.1 interarrival jitter of the RTP
	// received on this leg, in milliseconds (0 until two packets arrived).
	JitterMs float64
}

// PolicySource is implemented by engines that can tell the SIP layer which
// media encryption policy a leg on an interface gets (*Relay does).
type PolicySource interface {
	PolicyFor(iface string) Policy
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
