package b2bua

import (
	"errors"

	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/media"
	"github.com/palisade-sbc/palisade/internal/routing"
)

// sipError is an error that carries the SIP status to answer with.
type sipError struct {
	code   int
	reason string
}

func (e *sipError) Error() string { return e.reason }

func errStatus(code int, reason string) error { return &sipError{code, reason} }

// statusFor maps an error to the SIP status the caller's leg gets. It is
// the one place where errors become response codes.
func statusFor(err error) (int, string) {
	var se *sipError
	switch {
	case err == nil:
		return 200, "OK"
	case errors.As(err, &se):
		return se.code, se.reason
	case errors.Is(err, media.ErrTooManyStreams):
		return 488, "Not Acceptable Here (too many media streams)"
	case errors.Is(err, media.ErrNotAcceptable):
		return 488, "Not Acceptable Here"
	case errors.Is(err, media.ErrNoPorts):
		return 503, reasonNoPorts
	case errors.Is(err, media.ErrBadSDP):
		return 400, "Bad Request (malformed SDP)"
	case errors.Is(err, routing.ErrNoRoute):
		return 404, "Not Found"
	case errors.Is(err, routing.ErrAllDown):
		return 503, "Service Unavailable"
	case errors.Is(err, sip.ErrTransactionTimeout):
		return 408, "Request Timeout"
	case errors.Is(err, sip.ErrTransactionTransport):
		return 503, "Service Unavailable"
	}
	return 500, "Server Internal Error"
}

// reasonNoPorts is the reason phrase of the 503 for a call refused because
// the media port range is exhausted.
const reasonNoPorts = "Service Unavailable (no media ports)"

// retryAfter is the Retry-After value (seconds) a response made by the unit
// carries, "" for none. Ports come back as calls end, so a unit out of media
// ports asks for a short pause: enough for a PBX to try its other route or
// come back, short enough that a PBX treating us as down (RFC 3263) is not
// locked out long. Other 503s (all routes down, transport errors) are about
// one destination, not the unit, and carry none.
func retryAfter(code int, reason string) string {
	if code == 503 && reason == reasonNoPorts {
		return "10"
	}
	return ""
}

// mapFinal maps a final response from the far leg to the status relayed to
// the caller's leg. Most codes pass unchanged; codes that describe the far
// hop itself rather than the call are translated.
func mapFinal(code int, reason string) (int, string) {
	switch code {
	case 305, 380: // use proxy / alternative service: meaningless across a B2BUA
		return 480, "Temporarily Unavailable"
	case 407: // the far side's proxy challenge cannot be answered by the caller
		return 403, "Forbidden"
	case 482, 483: // loop / hops on the far leg
		return 502, "Bad Gateway"
	case 503: // RFC 3261 §16.7: a 503 from downstream is not passed as is
		return 500, "Server Internal Error"
	}
	return code, reason
}
