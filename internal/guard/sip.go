package guard

import (
	"crypto/tls"
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
	return r
}

// TLSNames returns the names a verified client certificate vouches for
// (DNS SANs and the common name); nil without a verified chain.
func TLSNames(cs *tls.ConnectionState) []string {
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.PeerCertificates) == 0 {
		return nil
	}
	c := cs.PeerCertificates[0]
	return append(append([]string(nil), c.DNSNames...), c.Subject.CommonName)
}

// Response builds the answer for a Reject verdict.
func (v Verdict) Response(req *sip.Request) *sip.Response {
	res := sip.NewResponseFromRequest(req, v.Code, v.Reason, nil)
	if v.RetryAfter > 0 {
		res.AppendHeader(sip.NewHeader("Retry-After", strconv.Itoa(v.RetryAfter)))
	}
	return res
}
