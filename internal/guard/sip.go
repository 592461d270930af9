package guard

import (
	"net/netip"
	"strconv"

	"github.com/emiago/sipgo/sip"
)

// SIPRequest fills a Request from a sipgo request: iface is the interface
// it came in on, peer the configured peer its source belongs to ("" = none),
// calls the calls in progress.
func SIPRequest(req *sip.Request, iface, peer string, calls int) Request {
	ap, _ := netip.ParseAddrPort(req.Source())
	r := Request{Source: ap, Interface: iface, Method: string(req.Method), Peer: peer, Calls: calls}
	switch {
	case req.IsAck() || req.IsCancel():
		r.InDialog = true
	case req.To() != nil:
		_, r.InDialog = req.To().Params.Get("tag")
	}
	r.HasCredentials = req.GetHeader("Authorization") != nil || req.GetHeader("Proxy-Authorization") != nil
	r.Malformed, r.MalformedReason = malformed(req)
	return r
}

// singleHeaders may appear once only (RFC 3261 section 7.3.1: they take no
// comma-separated lists); a request with two is ambiguous and refused
// rather than guessed at (RFC 4475 multi01).
var singleHeaders = []string{"Call-ID", "CSeq", "From", "To", "Max-Forwards", "Content-Length", "Content-Type"}

// malformed finds defects sipgo's lenient parser lets through: another
// protocol version (505) and repeated single-value headers (400).
func malformed(req *sip.Request) (int, string) {
	if req.SipVersion != "SIP/2.0" {
		return 505, "Version Not Supported"
	}
	for _, h := range singleHeaders {
		if len(req.GetHeaders(h)) > 1 {
			return 400, "Repeated " + h + " header"
		}
	}
	return 0, ""
}

// Response builds the answer for a Reject verdict.
func (v Verdict) Response(req *sip.Request) *sip.Response {
	res := sip.NewResponseFromRequest(req, v.Code, v.Reason, nil)
	if v.RetryAfter > 0 {
		res.AppendHeader(sip.NewHeader("Retry-After", strconv.Itoa(v.RetryAfter)))
	}
	return res
}
