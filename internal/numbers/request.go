package numbers

import (
	"github.com/emiago/sipgo/sip"
)

// Request applies the set to a request in place: the Request-URI, To, From
// and every P-Asserted-Identity (each by its field's rules), with user=phone
// when UserPhone is set. The B2BUA calls it on the request it sends to a
// peer (the peer's outbound rules) and on the request it received from a
// peer before routing (the peer's inbound rules). It reports whether
// anything changed.
func (s *Set) Request(req *sip.Request) bool {
	if s == nil || req == nil {
		return false
	}
	changed := s.URI(RequestURI, &req.Recipient)
	if h := req.To(); h != nil && s.URI(To, &h.Address) {
		changed = true
	}
	if h := req.From(); h != nil && s.URI(From, &h.Address) {
		changed = true
	}
	pais := req.GetHeaders("P-Asserted-Identity")
	if len(pais) == 0 {
		return changed
	}
	vals := make([]string, len(pais))
	for i, h := range pais {
		vals[i] = h.Value()
	}
	out := make([]string, len(vals))
	diff := false
	for i, v := range vals {
		out[i] = s.Address(PAI, v)
		diff = diff || out[i] != v
	}
	if !diff {
		return changed
	}
	req.RemoveHeader("P-Asserted-Identity")
	for _, v := range out {
		req.AppendHeader(sip.NewHeader("P-Asserted-Identity", v))
	}
	return true
}
