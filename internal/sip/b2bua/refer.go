package b2bua

// REFER (RFC 3515) in the B2BUA. Office 365 UM and Teams transfer calls
// with REFER; the party behind the other leg (often a PBX or a trunk) may
// not support REFER or Replaces, and the target may sit on either side of
// the unit. config.Routing.Refer says when the unit carries out the
// transfer itself (transfer.go); otherwise the REFER and its NOTIFYs are
// relayed with the Refer-To pointing at the unit, so that no address of
// one side reaches the other.

import (
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/config"
	"github.com/palisade-sbc/palisade/internal/media"
	"github.com/palisade-sbc/palisade/internal/sip/trunk"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var referTotal = promauto.NewCounterVec(prometheus.CounterOpts{
	Namespace: "palisade", Subsystem: "sip", Name: "refer_total",
	Help: "REFER requests by decision mode (always, no_refer_support, no_replaces_support, from_uri, user_agent, relay, none) and result (success, failed, relayed, bad_request, loop, pending).",
}, []string{"mode", "result"})

// Modes of config.Routing.Refer; "" means relay.
const (
	modeAlways      = "always"
	modeNoRefer     = "no_refer_support"
	modeNoReplaces  = "no_replaces_support"
	modeFromURI     = "from_uri"
	modeUserAgent   = "user_agent"
	modeRelay       = "relay"
	referEventValue = "refer"
)

// transferState is what a call keeps for REFER handling. It lives beside
// the call, keyed by a weak pointer and dropped when the call is collected,
// so that the B2BUA's call type needs no field for it.
type transferState struct {
	busy   bool       // a locally handled REFER is in progress (another gets 491)
	caps   [2]legCaps // what each leg's user agent declared
	active *transfer  // the locally handled REFER in progress
	// referCSeq is the CSeq of the last REFER relayed from each side: the
	// NOTIFYs coming back name it in Event's id (RFC 3515 §2.4.6).
	referCSeq [2]uint32
}

// legCaps are the capabilities a leg's UA declared in its INVITE or 2xx.
type legCaps struct {
	known     bool
	allow     string
	supported string
}

// xferState returns the REFER state of c, made on first use; the fields
// are guarded by c.mu. (It was a side table keyed by weak pointers with a
// cleanup per call: 1 % of a loaded unit's CPU, bench/sip/RESULTS.md run 9.)
func (c *call) xferState() *transferState {
	if st := c.xfer.Load(); st != nil {
		return st
	}
	c.xfer.CompareAndSwap(nil, &transferState{})
	return c.xfer.Load()
}

// sideOf returns the side whose local tag is tag (side A when none is):
// read under the lock, since a transfer may swap a leg at any time.
func (c *call) sideOf(tag string) media.Side {
	c.mu.Lock()
	defer c.mu.Unlock()
	if tag == c.legs[media.SideB].LocalTag {
		return media.SideB
	}
	return media.SideA
}

// claimTransfer marks c as busy with a transfer. It returns the status to
// refuse with when another one is in progress or the call is not confirmed.
func (c *call) claimTransfer() (int, string) {
	st := c.xferState()
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.st.Phase != PhaseConfirmed:
		return 481, "Call/Transaction Does Not Exist"
	case st.busy:
		return 491, "Request Pending"
	}
	st.busy = true
	return 0, ""
}

func (c *call) releaseTransfer() {
	st := c.xferState()
	c.mu.Lock()
	st.busy = false
	c.mu.Unlock()
}

// noteCaps records the Allow and Supported of a message from side.
func (c *call) noteCaps(side media.Side, m interface{ GetHeader(string) sip.Header }) {
	hv := func(n string) string {
		if h := m.GetHeader(n); h != nil {
			return h.Value()
		}
		return ""
	}
	lc := legCaps{known: true, allow: hv("Allow"), supported: hv("Supported")}
	if lc.supported == "" {
		lc.supported = hv("k")
	}
	c.mu.Lock()
	c.xferState().caps[side] = lc
	c.mu.Unlock()
}

// capsOf returns the capabilities of side (side A from the initial INVITE
// when nothing else was noted).
func (c *call) capsOf(side media.Side) legCaps {
	c.mu.Lock()
	lc := c.xferState().caps[side]
	inv := c.legs[media.SideA].inv
	c.mu.Unlock()
	if !lc.known && side == media.SideA && inv != nil {
		c.noteCaps(side, inv)
		c.mu.Lock()
		lc = c.xferState().caps[side]
		c.mu.Unlock()
	}
	return lc
}

// referInput is what the decision looks at.
type referInput struct {
	otherAllow     string // Allow of the transferee's leg ("" = none declared)
	otherSupported string // Supported of the transferee's leg
	hasReplaces    bool   // the Refer-To carries Replaces (attended transfer)
	fromURIs       []string
	userAgent      string // User-Agent of the transferor
}

// referMode decides who carries out a REFER: the mode that made the unit
// handle it locally, or "" to relay it.
func referMode(cfg config.Refer, in referInput) string {
	switch {
	case cfg.Always:
		return modeAlways
	case matchFromURI(cfg.FromURIs, in.fromURIs):
		return modeFromURI
	case matchUserAgent(cfg.UserAgents, in.userAgent):
		return modeUserAgent
	case cfg.NoReferSupport && !hasToken(in.otherAllow, "REFER"):
		return modeNoRefer
	case cfg.NoReplacesSupport && in.hasReplaces && !hasToken(in.otherSupported, "replaces"):
		return modeNoReplaces
	}
	return ""
}

// hasToken reports whether the comma separated list contains tok.
func hasToken(list, tok string) bool {
	for f := range strings.SplitSeq(list, ",") {
		if strings.EqualFold(strings.TrimSpace(f), tok) {
			return true
		}
	}
	return false
}

// matchFromURI compares configured From URIs with the dialog's: scheme and
// case do not matter; an entry without a user matches the whole domain.
func matchFromURI(list, uris []string) bool {
	for _, want := range list {
		w := normURI(want)
		if w == "" {
			continue
		}
		for _, u := range uris {
			got := normURI(u)
			if got == w || (!strings.Contains(w, "@") && strings.HasSuffix(got, "@"+w)) {
				return true
			}
		}
	}
	return false
}

func normURI(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimPrefix(strings.TrimPrefix(s, "<"), "sips:")
	s = strings.TrimPrefix(s, "sip:")
	if i := strings.IndexAny(s, ";>?"); i >= 0 {
		s = s[:i]
	}
	return s
}

// matchUserAgent: case-insensitive substring of the transferor's User-Agent.
func matchUserAgent(list []string, ua string) bool {
	ua = strings.ToLower(ua)
	for _, w := range list {
		if w = strings.ToLower(strings.TrimSpace(w)); w != "" && strings.Contains(ua, w) {
			return true
		}
	}
	return false
}

func uriString(u sip.Uri) string {
	if u.User == "" {
		return u.Scheme + ":" + u.Host
	}
	return u.Scheme + ":" + u.User + "@" + u.Host
}

// referTo is a parsed Refer-To value.
type referTo struct {
	uri      sip.Uri
	headers  string // raw URI headers after '?' (escaped)
	replaces *replacesID
}

// replacesID names a dialog (RFC 3891).
type replacesID struct {
	callID, toTag, fromTag string
	earlyOnly              bool
}

// parseReferTo parses a Refer-To value; it refuses anything but a SIP URI.
func parseReferTo(v string) (*referTo, error) {
	v = strings.TrimSpace(v)
	if i := strings.IndexByte(v, '<'); i >= 0 {
		j := strings.IndexByte(v[i:], '>')
		if j < 0 {
			return nil, errStatus(400, "Bad Refer-To")
		}
		v = v[i+1 : i+j]
	} else if i := strings.IndexByte(v, ';'); i >= 0 {
		v = v[:i] // without <>, parameters belong to the header
	}
	rt := &referTo{}
	if i := strings.IndexByte(v, '?'); i >= 0 {
		v, rt.headers = v[:i], v[i+1:]
	}
	if err := sip.ParseUri(v, &rt.uri); err != nil {
		return nil, errStatus(400, "Bad Refer-To")
	}
	sch := strings.ToLower(rt.uri.Scheme)
	if (sch != "sip" && sch != "sips") || rt.uri.Host == "" {
		return nil, errStatus(400, "Bad Refer-To (not a SIP URI)")
	}
	for kv := range strings.SplitSeq(rt.headers, "&") {
		k, val, _ := strings.Cut(kv, "=")
		if !strings.EqualFold(k, "Replaces") {
			continue
		}
		dec, err := url.QueryUnescape(val)
		if err != nil {
			return nil, errStatus(400, "Bad Replaces in Refer-To")
		}
		r, err := parseReplaces(dec)
		if err != nil {
			return nil, err
		}
		rt.replaces = r
	}
	return rt, nil
}

// parseReplaces parses "call-id;to-tag=x;from-tag=y[;early-only]".
func parseReplaces(v string) (*replacesID, error) {
	parts := strings.Split(strings.TrimSpace(v), ";")
	r := &replacesID{callID: strings.TrimSpace(parts[0])}
	for _, p := range parts[1:] {
		k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
		switch strings.ToLower(k) {
		case "to-tag":
			r.toTag = val
		case "from-tag":
			r.fromTag = val
		case "early-only":
			r.earlyOnly = true
		}
	}
	if r.callID == "" || r.toTag == "" || r.fromTag == "" {
		return nil, errStatus(400, "Bad Replaces")
	}
	return r, nil
}

// headerValue returns the value of the first header named one of names.
func headerValue(m interface{ GetHeader(string) sip.Header }, names ...string) (string, bool) {
	for _, n := range names {
		if h := m.GetHeader(n); h != nil {
			return h.Value(), true
		}
	}
	return "", false
}

// onTransferRequest is the hook for in-dialog requests: it answers REFERs
// handled locally (true: nothing more to do) and rewrites REFERs and refer
// NOTIFYs that are relayed (false: the normal relay sends them on).
func (c *call) onTransferRequest(from media.Side, req *sip.Request, tx *sip.ServerTx) bool {
	switch req.Method {
	case sip.REFER:
		return c.onRefer(from, req, tx)
	case sip.BYE:
		// A transferor may hang up as soon as its REFER is accepted: only
		// its own leg ends, the transfer goes on.
		st := c.xferState()
		c.mu.Lock()
		x := st.active
		c.mu.Unlock()
		if x != nil && x.from == from && x.gone.CompareAndSwap(false, true) {
			c.svc.respond(c.endpointOf(from), tx, c.svc.response(req, 200, "OK", nil), c.st.ID)
			c.logger().Info("transferor left during the transfer")
			return true
		}
	case sip.NOTIFY:
		if ev, _ := headerValue(req, "Event", "o"); isReferEvent(ev) {
			sanitizeSipfrag(req)
			st := c.xferState()
			c.mu.Lock()
			id := st.referCSeq[from.Other()]
			c.mu.Unlock()
			if id != 0 {
				req.RemoveHeader("Event")
				req.RemoveHeader("o")
				req.AppendHeader(sip.NewHeader("Event", referEventValue+";id="+strconv.FormatUint(uint64(id), 10)))
			}
		}
	}
	return false
}

func isReferEvent(ev string) bool {
	ev, _, _ = strings.Cut(ev, ";")
	return strings.EqualFold(strings.TrimSpace(ev), referEventValue)
}

// sanitizeSipfrag keeps only the status line of a message/sipfrag body: the
// headers of the fragment would show the other side's addresses.
func sanitizeSipfrag(req *sip.Request) {
	body := string(req.Body())
	if line, _, _ := strings.Cut(body, "\n"); line != "" && len(line) < len(body) {
		req.SetBody([]byte(strings.TrimRight(line, "\r") + "\r\n"))
	}
}

func (c *call) onRefer(from media.Side, req *sip.Request, tx *sip.ServerTx) bool {
	s := c.svc
	c.mu.Lock()
	ep := c.legs[from].ep
	c.mu.Unlock()
	v, ok := headerValue(req, "Refer-To", "r")
	if !ok || len(req.GetHeaders("Refer-To"))+len(req.GetHeaders("r")) > 1 {
		referTotal.WithLabelValues("none", "bad_request").Inc()
		s.limited.Warn("sip-refer", "REFER refused", "call_id", c.st.ID, "reason", "no single Refer-To")
		s.respond(ep, tx, s.response(req, 400, "Missing or repeated Refer-To", nil), c.st.ID)
		return true
	}
	rt, err := parseReferTo(v)
	if cerr := trunk.CheckReferTo(v); cerr != nil {
		err = errStatus(400, "Refer-To too long")
	}
	if err != nil {
		code, reason := statusFor(err)
		referTotal.WithLabelValues("none", "bad_request").Inc()
		s.limited.Warn("sip-refer", "REFER refused", "call_id", c.st.ID, "reason", reason)
		s.respond(ep, tx, s.response(req, code, reason, nil), c.st.ID)
		return true
	}
	c.mu.Lock()
	orphan := c.leg(from.Other()).CallID == "" // a leg that left its call (transfer.go ghostLeg)
	c.mu.Unlock()
	if orphan {
		s.respond(ep, tx, s.response(req, 481, "Call/Transaction Does Not Exist", nil), c.st.ID)
		return true
	}
	ua, _ := headerValue(req, "User-Agent")
	other := c.capsOf(from.Other())
	c.mu.Lock()
	dialogFrom := []string{uriString(c.leg(media.SideA).RemoteURI), uriString(c.leg(from).RemoteURI)}
	c.mu.Unlock()
	mode := referMode(c.rt.refer, referInput{
		otherAllow: other.allow, otherSupported: other.supported, hasReplaces: rt.replaces != nil,
		fromURIs: dialogFrom, userAgent: ua,
	})
	if mode == "" {
		st := c.xferState()
		c.mu.Lock()
		st.referCSeq[from] = req.CSeq().SeqNo
		c.mu.Unlock()
		c.rewriteReferTo(from.Other(), req, rt)
		referTotal.WithLabelValues(modeRelay, "relayed").Inc()
		c.logger().Info("REFER relayed", "from", sideName(from), "target_user", rt.uri.User)
		return false
	}
	if rt.uri.UriParams != nil {
		if m, ok := rt.uri.UriParams.Get("method"); ok && !strings.EqualFold(m, "INVITE") {
			referTotal.WithLabelValues(mode, "bad_request").Inc()
			s.respond(ep, tx, s.response(req, 501, "Not Implemented (only INVITE transfers)", nil), c.st.ID)
			return true
		}
	}
	if code, reason := c.referLoop(from, rt); code != 0 {
		referTotal.WithLabelValues(mode, "loop").Inc()
		c.logger().Info("REFER refused", "mode", mode, "status", code, "reason", reason)
		s.respond(ep, tx, s.response(req, code, reason, nil), c.st.ID)
		return true
	}
	if code, reason := c.claimTransfer(); code != 0 {
		referTotal.WithLabelValues(mode, "pending").Inc()
		s.respond(ep, tx, s.response(req, code, reason, nil), c.st.ID)
		return true
	}
	noSub := false
	if rs, ok := headerValue(req, "Refer-Sub"); ok && strings.EqualFold(strings.TrimSpace(rs), "false") {
		noSub = true
	}
	res := s.response(req, 202, "Accepted", nil)
	res.AppendHeader(ep.info.Load().Contact(c.leg(from).Transport))
	if noSub {
		res.AppendHeader(sip.NewHeader("Refer-Sub", "false"))
	}
	s.respond(ep, tx, res, c.st.ID)
	c.logger().Info("REFER handled locally", "mode", mode, "from", sideName(from),
		"target_user", rt.uri.User, "attended", rt.replaces != nil)
	x := &transfer{c: c, from: from, refer: req, to: rt, mode: mode, noSub: noSub}
	x.run()
	return true
}

// referLoop finds transfers that cannot end well: to the transferor
// itself, or Replaces naming the dialog the REFER came on.
func (c *call) referLoop(from media.Side, rt *referTo) (int, string) {
	c.mu.Lock()
	l := *c.leg(from)
	c.mu.Unlock()
	if r := rt.replaces; r != nil {
		if r.callID == l.CallID && (r.toTag == l.LocalTag || r.fromTag == l.LocalTag) {
			return 403, "Forbidden (Replaces names this dialog)"
		}
		if oc, _ := c.svc.findDialog(r); oc == c {
			return 403, "Forbidden (Replaces names this call)"
		}
		return 0, ""
	}
	tu := strings.ToLower(rt.uri.User)
	if tu != "" && (tu == strings.ToLower(l.RemoteURI.User) || tu == strings.ToLower(l.RemoteTarget.User)) &&
		(strings.EqualFold(rt.uri.Host, l.RemoteURI.Host) || strings.EqualFold(rt.uri.Host, l.RemoteTarget.Host)) {
		return 482, "Loop Detected (transfer to the transferor)"
	}
	return 0, ""
}

// rewriteReferTo points a relayed Refer-To at the unit on the leg it goes
// out on, keeping the user part and the URI headers (Replaces names a
// dialog of the unit, which the unit resolves when the INVITE comes).
func (c *call) rewriteReferTo(to media.Side, req *sip.Request, rt *referTo) {
	c.mu.Lock()
	info, tr := c.legs[to].ep.info.Load(), c.leg(to).Transport
	c.mu.Unlock()
	u := sip.Uri{Scheme: "sip", User: rt.uri.User, Host: info.Host, Port: info.Port(tr)}
	if strings.EqualFold(rt.uri.Scheme, "sips") {
		u.Scheme = "sips"
	}
	var hdrs []string
	for kv := range strings.SplitSeq(rt.headers, "&") {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case kv == "":
		case strings.EqualFold(k, "Replaces") && rt.replaces != nil:
			t := hideReplaces(rt.replaces)
			hdrs = append(hdrs, "Replaces="+url.QueryEscape(t.callID+";to-tag="+t.toTag+";from-tag="+t.fromTag))
		default:
			hdrs = append(hdrs, kv)
		}
	}
	v := "<" + u.String()
	if len(hdrs) > 0 {
		v += "?" + strings.Join(hdrs, "&")
	}
	v += ">"
	req.RemoveHeader("Refer-To")
	req.RemoveHeader("r")
	req.AppendHeader(sip.NewHeader("Refer-To", v))
}

// Replaces identifiers sent across the unit are stand-ins: the real ones
// name the unit's dialog with the transferor (whose Call-ID may carry an
// inside host). The stand-in is resolved when the INVITE with Replaces
// comes back, within replacesTTL.
const (
	replacesTTL    = 5 * time.Minute
	replacesTokMax = 10000
)

var (
	replacesTokens sync.Map // stand-in Call-ID → [2]*replacesID{stand-in, real}
	replacesTokN   atomic.Int64
)

func hideReplaces(r *replacesID) *replacesID {
	t := &replacesID{callID: newID(), toTag: newID(), fromTag: newID(), earlyOnly: r.earlyOnly}
	if replacesTokN.Add(1) > replacesTokMax {
		replacesTokN.Add(-1)
		return t // resolves to nothing (481) rather than showing the real one
	}
	replacesTokens.Store(t.callID, [2]*replacesID{t, r})
	time.AfterFunc(replacesTTL, func() {
		replacesTokens.Delete(t.callID)
		replacesTokN.Add(-1)
	})
	return t
}

// unhideReplaces maps a stand-in back to the dialog it stands for.
func unhideReplaces(r *replacesID) *replacesID {
	v, ok := replacesTokens.Load(r.callID)
	if !ok {
		return r
	}
	p := v.([2]*replacesID)
	if (r.toTag == p[0].toTag && r.fromTag == p[0].fromTag) || (r.toTag == p[0].fromTag && r.fromTag == p[0].toTag) {
		return p[1]
	}
	return r
}
