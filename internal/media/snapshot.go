package media

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"

	"github.com/palisade-sbc/palisade/internal/media/sdp"
)

// A CallSnapshot is what another unit needs to carry on relaying a call's
// media after the unit that anchored it died: per stream and leg the local
// port, where media goes and comes from, the SDES keys and, per SSRC, the
// SRTP rollover counter and the SRTCP index. It holds key material: store it
// only where the unit's secrets may go (the cluster's etcd).
//
// The JSON form is versioned; DecodeSnapshot refuses a record of another
// version rather than guessing at it.
type CallSnapshot struct {
	Version int               `json:"version"`
	ID      string            `json:"id"`
	Sides   [2]SideSnapshot   `json:"sides"`
	Streams []*StreamSnapshot `json:"streams"` // by m= line; null where the line is not anchored
}

// SnapshotVersion is the version of CallSnapshot this build writes and reads.
const SnapshotVersion = 1

// maxSnapshot bounds a record's size (a call has at most MaxStreams streams;
// a real record is a few KiB).
const maxSnapshot = 64 << 10

// maxSSRCs bounds the SSRCs kept per SRTP context in a record.
const maxSSRCs = 16

// ErrBadSnapshot is wrapped by every error refusing a call record.
var ErrBadSnapshot = errors.New("media: call snapshot refused")

// SideSnapshot is where one leg binds and the policy it was set up with.
type SideSnapshot struct {
	Interface  string     `json:"interface"`
	Bind       netip.Addr `json:"bind"`
	Advertised netip.Addr `json:"advertised"`
	Policy     Policy     `json:"policy"`
}

// StreamSnapshot is one anchored m= line.
type StreamSnapshot struct {
	Kind string         `json:"kind"`
	Legs [2]LegSnapshot `json:"legs"`
}

// LegSnapshot is one leg of a stream: its port and what the last completed
// offer/answer decided for it, with the latched remote addresses.
type LegSnapshot struct {
	Port      int            `json:"port"` // RTP; RTCP is Port+1
	Active    bool           `json:"active"`
	Raw       bool           `json:"raw,omitempty"`
	Mux       bool           `json:"mux,omitempty"`
	NoSend    bool           `json:"no_send,omitempty"`
	InRTP     netip.AddrPort `json:"in_rtp"`
	DstRTP    netip.AddrPort `json:"dst_rtp"`
	DstRTCP   netip.AddrPort `json:"dst_rtcp"`
	LatchRTP  netip.AddrPort `json:"latch_rtp"`
	LatchRTCP netip.AddrPort `json:"latch_rtcp"`
	Codec     string         `json:"codec,omitempty"`
	Clock     uint32         `json:"clock,omitempty"`
	In        *CryptoState   `json:"in,omitempty"`  // decrypts what the leg's peer sends; nil = plain
	Out       *CryptoState   `json:"out,omitempty"` // encrypts what we send the peer; nil = plain
}

// CryptoState is an SDES key and the per-SSRC state of its contexts.
type CryptoState struct {
	Tag      int      `json:"tag"`
	Suite    string   `json:"suite"`
	Key      []byte   `json:"key"` // master key and salt
	MKI      []byte   `json:"mki,omitempty"`
	Lifetime uint64   `json:"lifetime,omitempty"`
	Params   []string `json:"params,omitempty"`
	// ROC is the SRTP rollover counter per SSRC.
	ROC []SSRCValue `json:"roc,omitempty"`
	// SRTCPIndex is the last SRTCP index sent per SSRC (outbound only;
	// a restore continues 64 above it, see Relay.Restore).
	SRTCPIndex []SSRCValue `json:"srtcp_index,omitempty"`
}

// SSRCValue is a counter of one SSRC.
type SSRCValue struct {
	SSRC  uint32 `json:"ssrc"`
	Value uint32 `json:"value"`
}

func cryptoState(c sdp.Crypto) *CryptoState {
	return &CryptoState{Tag: c.Tag, Suite: c.Suite, Key: slices.Clone(c.Key), MKI: slices.Clone(c.MKI),
		Lifetime: c.Lifetime, Params: slices.Clone(c.Params)}
}

func (s *CryptoState) crypto() sdp.Crypto {
	return sdp.Crypto{Tag: s.Tag, Suite: s.Suite, Key: slices.Clone(s.Key), MKI: slices.Clone(s.MKI),
		Lifetime: s.Lifetime, Params: slices.Clone(s.Params)}
}

// Encode is the record's JSON form.
func (s *CallSnapshot) Encode() ([]byte, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	return json.Marshal(s)
}

// DecodeSnapshot reads a record written by Encode. A record of another
// version, with fields this build does not know, truncated, or with values
// no call can have is refused with an error wrapping ErrBadSnapshot.
func DecodeSnapshot(b []byte) (*CallSnapshot, error) {
	if len(b) > maxSnapshot {
		return nil, fmt.Errorf("%w: %d bytes (at most %d)", ErrBadSnapshot, len(b), maxSnapshot)
	}
	// The version first, leniently, so that a record of another version
	// says so rather than failing on a field it renamed.
	var v struct {
		Version *int `json:"version"`
	}
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object: %v", ErrBadSnapshot, err)
	}
	switch {
	case v.Version == nil:
		return nil, fmt.Errorf("%w: no version", ErrBadSnapshot)
	case *v.Version != SnapshotVersion:
		return nil, fmt.Errorf("%w: written as version %d, this build reads version %d", ErrBadSnapshot, *v.Version, SnapshotVersion)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	s := &CallSnapshot{}
	if err := d.Decode(s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSnapshot, err)
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the record", ErrBadSnapshot)
	}
	if err := s.validate(); err != nil {
		return nil, err
	}
	return s, nil
}

func bad(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadSnapshot, fmt.Sprintf(format, args...))
}

// validate checks what Restore relies on: everything a relay would trip
// over or misuse is refused here, before any port is bound.
func (s *CallSnapshot) validate() error {
	if s.Version != SnapshotVersion {
		return bad("version %d, this build reads version %d", s.Version, SnapshotVersion)
	}
	if s.ID == "" || len(s.ID) > 1024 {
		return bad("call id of %d bytes", len(s.ID))
	}
	for i, sd := range s.Sides {
		if !sd.Bind.IsValid() || !sd.Advertised.IsValid() {
			return bad("side %s has no bind or advertised address", Side(i))
		}
		switch sd.Policy.Requirement {
		case RequireRTP, RequireSRTP, RequireEither:
		default:
			return bad("side %s: policy requirement %q", Side(i), sd.Policy.Requirement)
		}
	}
	if len(s.Streams) == 0 || len(s.Streams) > MaxStreams {
		return bad("%d streams (1 to %d)", len(s.Streams), MaxStreams)
	}
	anchored := 0
	ports := map[int]bool{}
	for i, st := range s.Streams {
		if st == nil {
			continue
		}
		anchored++
		for j, l := range st.Legs {
			where := fmt.Sprintf("stream %d leg %s", i, Side(j))
			if l.Port < 2 || l.Port > 65534 || l.Port%2 != 0 {
				return bad("%s: port %d is not an even RTP port", where, l.Port)
			}
			if ports[l.Port] {
				return bad("%s: port %d used twice", where, l.Port)
			}
			ports[l.Port] = true
			for _, c := range []*CryptoState{l.In, l.Out} {
				if err := c.validate(); err != nil {
					return fmt.Errorf("%s: %w", where, err)
				}
			}
			if (l.In == nil) != (l.Out == nil) {
				return bad("%s: SRTP in one direction only", where)
			}
		}
	}
	if anchored == 0 {
		return bad("no anchored stream")
	}
	return nil
}

func (c *CryptoState) validate() error {
	if c == nil {
		return nil
	}
	if _, err := profileOf(c.Suite); err != nil {
		return bad("%v", err)
	}
	if len(c.Key) != sdp.KeyLen(c.Suite) {
		return bad("%s key of %d bytes, want %d", c.Suite, len(c.Key), sdp.KeyLen(c.Suite))
	}
	if len(c.MKI) > 16 || len(c.Params) > 16 {
		return bad("MKI of %d bytes or %d parameters", len(c.MKI), len(c.Params))
	}
	if len(c.ROC) > maxSSRCs || len(c.SRTCPIndex) > maxSSRCs {
		return bad("state of %d/%d SSRCs (at most %d)", len(c.ROC), len(c.SRTCPIndex), maxSSRCs)
	}
	for _, v := range c.SRTCPIndex {
		if v.Value >= maxSRTCPIndex-srtcpIndexJump {
			return bad("SRTCP index %d of SSRC %08x is at the end of the key's life", v.Value, v.SSRC)
		}
	}
	return nil
}

// maxSRTCPIndex is the largest SRTCP index (31 bits, RFC 3711 §3.4).
const maxSRTCPIndex = 1<<31 - 1

// Option is a setting of New.
type Option func(*Relay)

// WithCounterHook gives the relay a function told, on the packet path,
// when the SRTP counters in a call's snapshot moved so that the snapshot
// kept for a takeover must be made again (by the call's id):
//   - a stream wrapped its RTP sequence number: an older snapshot restores
//     a rollover counter one too low, and the restored relay fails
//     authentication on that stream;
//   - an outbound SRTCP index reached a multiple of 64: a restore continues
//     64 above the recorded index, which must not be older than that.
//
// fn must return at once.
func WithCounterHook(fn func(id string)) Option { return func(r *Relay) { r.onCounters = fn } }

func (r *Relay) countersMoved(id string) {
	if r.onCounters != nil {
		r.onCounters(id)
	}
}
