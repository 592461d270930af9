package keepalive

import (
	"crypto/rand"
	"encoding/hex"
	"sort"
	"strings"

	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/routing"
	"github.com/palisade-sbc/palisade/internal/sip/trunk"
)

// DefaultAllow is the Allow header of keepalive OPTIONS when Probe.Allow
// is empty: what the unit handles as a B2BUA (trunk.Allow with REFER; the
// engine passes trunk.Allow(false) split when it does not handle REFER).
var DefaultAllow = strings.Split(trunk.Allow(true), ", ")

// Probe is what one keepalive OPTIONS carries.
type Probe struct {
	// LocalHost is the interface's FQDN (its address when it has none) and
	// LocalPort the listener port: Contact and From are sip:LocalHost:LocalPort.
	// Teams compares the Contact's host with the SBC FQDN it knows ("Direct
	// Routing - SIP protocol", OPTIONS example: Contact: sip:sbc1…:port;transport=tls).
	LocalHost string
	LocalPort int
	// Via is the Via header of the sending interface; nil leaves it to the
	// transport layer (sipgo adds one).
	Via         *sip.ViaHeader
	MaxForwards int // 0 = 70
	UserAgent   string
	Allow       []string // nil = DefaultAllow
	// Headers are added in name order: the peer's headers, then the
	// keepalive's own (config trunk.keepalive.headers), the latter winning.
	Headers map[string]string
}

// Build makes the OPTIONS for target t, reached as host (the name the peer
// is known by; t's address when empty). The Request-URI and To carry no
// user, as in Microsoft's example; the Call-ID and tag are fresh.
func Build(p Probe, t routing.Target, host string) *sip.Request {
	if host == "" {
		host = t.Addr.Addr().String()
	}
	params := sip.NewParams()
	if t.Transport != "" && t.Transport != "udp" {
		params.Add("transport", t.Transport)
	}
	ruri := sip.Uri{Scheme: "sip", Host: host, Port: int(t.Addr.Port()), UriParams: params}
	req := sip.NewRequest(sip.OPTIONS, ruri)
	if p.Via != nil {
		req.AppendHeader(p.Via)
	}
	mf := sip.MaxForwardsHeader(70)
	if p.MaxForwards > 0 {
		mf = sip.MaxForwardsHeader(p.MaxForwards)
	}
	req.AppendHeader(&mf)
	local := sip.Uri{Scheme: "sip", Host: p.LocalHost, Port: p.LocalPort}
	from := &sip.FromHeader{Address: local, Params: sip.NewParams()}
	from.Params.Add("tag", newID())
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", Host: host, Port: int(t.Addr.Port())}, Params: sip.NewParams()})
	cid := sip.CallIDHeader(newID())
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.OPTIONS})
	contact := local
	contact.UriParams = params.Clone()
	req.AppendHeader(&sip.ContactHeader{Address: contact})
	allow := p.Allow
	if allow == nil {
		allow = DefaultAllow
	}
	req.AppendHeader(sip.NewHeader("Allow", strings.Join(allow, ", ")))
	req.AppendHeader(sip.NewHeader("Accept", "application/sdp"))
	if p.UserAgent != "" {
		req.AppendHeader(sip.NewHeader("User-Agent", p.UserAgent))
	}
	names := make([]string, 0, len(p.Headers))
	for n := range p.Headers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		req.AppendHeader(sip.NewHeader(n, p.Headers[n]))
	}
	req.SetBody(nil)
	return req
}

// MergeHeaders is the peer's headers overlaid with the keepalive's own.
func MergeHeaders(peer, keepalive map[string]string) map[string]string {
	out := make(map[string]string, len(peer)+len(keepalive))
	for k, v := range peer {
		out[k] = v
	}
	for k, v := range keepalive {
		for old := range out {
			if strings.EqualFold(old, k) {
				delete(out, old)
			}
		}
		out[k] = v
	}
	return out
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
