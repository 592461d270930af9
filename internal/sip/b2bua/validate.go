package b2bua

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"strings"

	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/sip/transport"
)

// rejection is why a request is refused before the B2BUA acts on it: the
// status, the reason phrase, the metric label and the header the status
// calls for (Allow with 405, Accept with 415, …).
type rejection struct {
	code   int
	reason string
	key    string
	header sip.Header
}

// Accepted body types of requests whose body the media layer reads.
const (
	acceptTypes     = "application/sdp, multipart/mixed"
	acceptEncodings = "identity"
)

// validate checks what the B2BUA relies on, in the order of RFC 3261
// section 8.2 (method, then headers and Request-URI, then content). It
// returns nil when req is fine. An INVITE or UPDATE whose body is a
// multipart/mixed holding an SDP part is reduced to that part here.
func validate(req *sip.Request, rt *runtime) *rejection {
	bad := func(reason string) *rejection { return &rejection{400, reason, "bad_request", nil} }
	for _, h := range req.Headers() {
		if f, ok := h.(*transport.FlaggedHeader); ok {
			return bad(f.Reason)
		}
	}
	switch {
	case req.From() == nil:
		return bad("Missing From header")
	case req.To() == nil:
		return bad("Missing To header")
	case req.CallID() == nil || req.CallID().Value() == "":
		return bad("Missing Call-ID header")
	case req.CSeq() == nil:
		return bad("Missing CSeq header")
	// sipgo upper-cases the request's method but not the CSeq's.
	case !strings.EqualFold(string(req.CSeq().MethodName), string(req.Method)):
		return bad("CSeq method does not match the request")
	case getTag(req.From().Params) == "" && transport.RFC3261Branch(req): // RFC 2543 elements may omit it
		return bad("Missing From tag")
	case req.Method == sip.INVITE && req.Contact() == nil:
		return bad("Missing Contact header")
	}
	if cl := req.ContentLength(); cl != nil && int(*cl) != len(req.Body()) {
		return bad("Content-Length does not match the body")
	}
	if mf := req.MaxForwards(); mf != nil && mf.Val() == 0 {
		if !(req.Method == sip.OPTIONS && req.Recipient.User == "") {
			return &rejection{483, "Too Many Hops", "too_many_hops", nil}
		}
	}
	if !rt.allowed[string(req.Method)] {
		return &rejection{405, "Method Not Allowed", "method_not_allowed", sip.NewHeader("Allow", rt.allowHdr)}
	}
	// Routing, dialogs and topology hiding work on SIP URIs only: any other
	// scheme (tel, im, or one sipgo keeps opaque) is not understood.
	if s := req.Recipient.Scheme; s != "sip" && s != "sips" {
		return &rejection{416, "Unsupported URI Scheme", "unsupported_uri_scheme", nil}
	}
	if req.Recipient.Host == "" {
		return bad("Bad Request-URI")
	}
	// A request that already passed through the unit has one of our Via
	// sent-by values below the top one.
	for _, h := range req.GetHeaders("Via") {
		if v, ok := h.(*sip.ViaHeader); ok && rt.ownHostPorts[v.SentBy()] {
			return &rejection{482, "Loop Detected", "loop", nil}
		}
	}
	if req.Method == sip.INVITE || req.Method == sip.UPDATE {
		return checkBody(req)
	}
	return nil
}

// checkBody refuses a body of an INVITE or UPDATE that the media layer
// cannot read with 415 and the Accept or Accept-Encoding it can (RFC 3261
// section 8.2.3), instead of the 400 the SDP parser would give. A
// multipart/mixed body with an application/sdp part is replaced by that
// part: the outgoing leg carries only SDP anyway.
func checkBody(req *sip.Request) *rejection {
	body := req.Body()
	if len(body) == 0 {
		return nil
	}
	if ce := req.GetHeader("Content-Encoding"); ce != nil {
		for _, e := range strings.Split(ce.Value(), ",") {
			if e = strings.TrimSpace(e); e != "" && !strings.EqualFold(e, "identity") {
				return &rejection{415, "Unsupported Media Type", "unsupported_media_type", sip.NewHeader("Accept-Encoding", acceptEncodings)}
			}
		}
	}
	ct := req.ContentType()
	if ct == nil {
		return nil // RFC 3261 wants one; the SDP parser has the last word
	}
	mt, params, err := mime.ParseMediaType(ct.Value())
	unsupported := &rejection{415, "Unsupported Media Type", "unsupported_media_type", sip.NewHeader("Accept", acceptTypes)}
	switch {
	case err != nil:
		return unsupported
	case mt == "application/sdp":
		return nil
	case mt == "multipart/mixed" && params["boundary"] != "":
		sdp, ok := sdpPart(body, params["boundary"])
		if !ok {
			return unsupported
		}
		req.RemoveHeader("Content-Type")
		req.RemoveHeader("Content-Disposition") // it described the whole multipart
		sdpType := sip.ContentTypeHeader("application/sdp")
		req.AppendHeader(&sdpType)
		req.SetBody(sdp)
		return nil
	}
	return unsupported
}

// sdpPart returns the first application/sdp part of a multipart body.
func sdpPart(body []byte, boundary string) ([]byte, bool) {
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	for i := 0; i < 16; i++ { // a call's body has a few parts, not hundreds
		p, err := mr.NextPart()
		if err != nil {
			return nil, false
		}
		mt, _, err := mime.ParseMediaType(p.Header.Get("Content-Type"))
		if err != nil || mt != "application/sdp" {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(p, int64(len(body))))
		if err != nil || len(b) == 0 {
			return nil, false
		}
		return b, true
	}
	return nil, false
}
