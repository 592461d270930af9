package b2bua

import (
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// perLeg are headers that belong to one leg's dialog and transactions.
// They are never copied: each leg gets its own values, written by the unit.
var perLeg = map[string]bool{
	"via": true, "route": true, "record-route": true, "contact": true, "call-id": true,
	"cseq": true, "from": true, "to": true, "max-forwards": true, "content-length": true,
	"rack": true, "proxy-authorization": true, "authorization": true, "proxy-authenticate": true,
	"www-authenticate": true, "authentication-info": true, "x-ms-sbc": true,
	"x-palisade-flow": true,                                                        // routing.FlowHeader: between the units of a cluster only
	"l":               true, "i": true, "v": true, "f": true, "t": true, "m": true, // compact forms
}

// hidden are headers that tell about one side's topology or equipment.
// With sip.topology_hiding (the default) they do not cross.
var hidden = map[string]bool{
	"user-agent": true, "server": true, "warning": true, "path": true, "service-route": true,
	"p-charging-vector": true, "p-visited-network-id": true, "history-info": true,
	"organization": true, "error-info": true, "reply-to": true, "in-reply-to": true,
}

// copyHeaders copies the end-to-end headers of src to dst for the leg
// described by info. With topology hiding, hidden headers stay behind and
// identity headers keep their user but lose an IP-literal host.
func copyHeaders(dst, src sip.Message, info *ifaceInfo) {
	for _, h := range src.(interface{ Headers() []sip.Header }).Headers() {
		name := strings.ToLower(h.Name())
		if perLeg[name] || (info.hide && hidden[name]) {
			continue
		}
		switch name {
		case "p-asserted-identity", "p-preferred-identity", "remote-party-id", "diversion", "referred-by":
			if info.hide {
				dst.(interface{ AppendHeader(sip.Header) }).AppendHeader(sip.NewHeader(h.Name(), hideHostInAddr(h.Value(), info.Host)))
				continue
			}
		}
		dst.(interface{ AppendHeader(sip.Header) }).AppendHeader(sip.HeaderClone(h))
	}
}

// hideHostInAddr replaces an IP-literal host in a name-addr value with host.
func hideHostInAddr(v, host string) string {
	at := strings.IndexByte(v, '@')
	if at < 0 {
		return v
	}
	end := at + 1
	for end < len(v) && !strings.ContainsRune(">;:, ", rune(v[end])) {
		end++
	}
	h := v[at+1 : end]
	if h == "" || !(isIPish(h)) {
		return v
	}
	rest := v[end:]
	if strings.HasPrefix(rest, ":") { // drop the port with the host
		i := 1
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		rest = rest[i:]
	}
	return v[:at+1] + host + rest
}

func isIPish(h string) bool {
	if strings.HasPrefix(h, "[") {
		return true
	}
	for _, c := range h {
		if !(c == '.' || (c >= '0' && c <= '9')) {
			return false
		}
	}
	return true
}

// uriHostPortTransport gives the host, port and transport parameter of u.
func uriTransport(u *sip.Uri) string {
	if u.UriParams != nil {
		if t, ok := u.UriParams.Get("transport"); ok {
			return strings.ToLower(t)
		}
	}
	if strings.EqualFold(u.Scheme, "sips") {
		return "tls"
	}
	return ""
}

// newRequest builds a request of method on leg l (we are the UAC of this
// request): R-URI = remote target, Route = route set, From/To with the
// leg's tags, a fresh Via and CSeq.
func newRequest(method sip.RequestMethod, l *Leg, info *ifaceInfo, maxFwd int, cseq uint32) *sip.Request {
	req := sip.NewRequest(method, l.RemoteTarget)
	req.AppendHeader(info.Via(l.Transport))
	mf := sip.MaxForwardsHeader(maxFwd)
	req.AppendHeader(&mf)
	from := &sip.FromHeader{DisplayName: l.LocalName, Address: l.LocalURI, Params: sip.NewParams()}
	from.Params.Add("tag", l.LocalTag)
	req.AppendHeader(from)
	to := &sip.ToHeader{DisplayName: l.RemoteName, Address: l.RemoteURI, Params: sip.NewParams()}
	if l.RemoteTag != "" {
		to.Params.Add("tag", l.RemoteTag)
	}
	req.AppendHeader(to)
	cid := sip.CallIDHeader(l.CallID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: method})
	for _, r := range l.RouteSet {
		req.AppendHeader(&sip.RouteHeader{Address: r})
	}
	return req
}

// routeSet returns the Record-Route URIs of m, reversed when we are the UAC
// (RFC 3261 §12.1.2).
func routeSet(m sip.Message, reverse bool) []sip.Uri {
	var out []sip.Uri
	for _, h := range m.(interface{ GetHeaders(string) []sip.Header }).GetHeaders("Record-Route") {
		if rr, ok := h.(*sip.RecordRouteHeader); ok {
			out = append(out, rr.Address)
		}
	}
	if reverse {
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	}
	return out
}

// rewriteRAck maps "RSeq CSeq Method" of a PRACK to the other leg's INVITE
// CSeq number (RFC 3262 §7.2).
func rewriteRAck(v string, cseq uint32) string {
	f := strings.Fields(v)
	if len(f) != 3 {
		return v
	}
	return f[0] + " " + strconv.FormatUint(uint64(cseq), 10) + " " + f[2]
}

func getTag(p sip.HeaderParams) string {
	t, _ := p.Get("tag")
	return t
}

// addPeerHeaders adds the peer's configured headers (peers[].headers) to an
// in-dialog request sent to it, as to its INVITE: Teams refuses a
// re-INVITE without X-MS-SBC as it does an INVITE.
func (rt *runtime) addPeerHeaders(req *sip.Request, peer string) {
	if peer == "" || rt.table == nil {
		return
	}
	p, ok := rt.table.Peer(peer)
	if !ok {
		return
	}
	for k, v := range p.Headers {
		if req.GetHeader(k) == nil {
			req.AppendHeader(sip.NewHeader(k, v))
		}
	}
}
