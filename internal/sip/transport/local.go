package transport

import (
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// Local is what the unit shows of itself on one interface in the headers
// it builds there: the host of its Via and Contact (FQDN, else advertised
// address, else address) and the bound port of each transport.
type Local struct {
	Host  string
	Ports map[string]int // transport (udp|tcp|tls) → bound port
}

// Port returns the local port for transport tr, falling back to any
// listener's, else 5060.
func (l *Local) Port(tr string) int {
	if p := l.Ports[tr]; p != 0 {
		return p
	}
	for _, t := range []string{"udp", "tcp", "tls"} {
		if p := l.Ports[t]; p != 0 {
			return p
		}
	}
	return 5060
}

// HostPort is host:port as written in Via and Contact.
func (l *Local) HostPort(tr string) string {
	h := l.Host
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	return h + ":" + strconv.Itoa(l.Port(tr))
}

// Contact is the unit's Contact for transport tr.
func (l *Local) Contact(tr string) *sip.ContactHeader {
	u := sip.Uri{Scheme: "sip", Host: l.Host, Port: l.Port(tr)}
	if tr != "udp" {
		u.UriParams = sip.NewParams()
		u.UriParams.Add("transport", tr)
	}
	return &sip.ContactHeader{Address: u}
}

// Via is a new Via of the unit for transport tr: a fresh branch, rport
// asked for (RFC 3581).
func (l *Local) Via(tr string) *sip.ViaHeader {
	v := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: strings.ToUpper(tr),
		Host: l.Host, Port: l.Port(tr), Params: sip.NewParams()}
	v.Params.Add("branch", sip.GenerateBranch())
	v.Params.Add("rport", "")
	return v
}
