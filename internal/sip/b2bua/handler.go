package b2bua

import (
	"context"
	"net/netip"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/guard"
	"github.com/palisade-sbc/palisade/internal/routing"
	"github.com/palisade-sbc/palisade/internal/sip/transport"
	"github.com/prometheus/client_golang/prometheus"
)

// methodCounters are the requests_total children, looked up once.
var methodCounters = func() map[string]prometheus.Counter {
	m := map[string]prometheus.Counter{}
	for _, k := range []string{"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "PRACK", "UPDATE", "INFO",
		"MESSAGE", "REFER", "NOTIFY", "SUBSCRIBE", "REGISTER", "PUBLISH", "other"} {
		m[k] = requestsTotal.WithLabelValues(k)
	}
	return m
}()

// onRequest is the entry for every request sipgo's transaction layer hands
// up (one goroutine per request).
func (s *Service) onRequest(ep *endpoint, req *sip.Request, tx *sip.ServerTx) {
	transport.NullFromTag(req) // wire.go: the parser's stand-in for an RFC 2543 From without tag
	rt := s.rt.Load()
	method := string(req.Method)
	if c := methodCounters[method]; c != nil {
		c.Inc()
	} else {
		methodCounters["other"].Inc()
	}
	if g := s.deps.Guard; g != nil { // access control, source limits, overload (internal/guard)
		peer := s.sourcePeer(ep, req, rt) // by address, else by verified TLS certificate (identity.go)
		if v := g.Check(guard.SIPRequest(req, ep.name, peer, s.calls.count())); v.Action != guard.Allow {
			if v.Action == guard.Reject && !req.IsAck() {
				s.respond(ep, tx, v.Response(req), "")
			} else {
				tx.Terminate()
			}
			return
		}
	}
	if req.IsAck() {
		tx.Terminate() // sipgo made a transaction for the 2xx ACK; it has none
		s.onAck(ep, req)
		return
	}
	if rj := validate(req, rt); rj != nil { // validate.go
		badInput.WithLabelValues(rj.key).Inc()
		s.limited.Warn("sip-"+rj.key, "SIP request refused", "method", method, "status", rj.code,
			"reason", rj.reason, "source", req.Source(), "interface", ep.name)
		res := s.response(req, rj.code, rj.reason, nil)
		if rj.header != nil {
			res.AppendHeader(rj.header)
		}
		s.respond(ep, tx, res, "")
		return
	}
	if req.Method == sip.INVITE && !transport.RFC3261Branch(req) {
		go s.rfc2543Acks(ep, tx) // only for INVITEs the B2BUA takes on
	}
	if toTag := getTag(req.To().Params); toTag != "" {
		key := dialogKey(req.CallID().Value(), toTag)
		c := s.calls.get(key)
		if c == nil && s.waitAdoption() {
			c = s.calls.get(key) // a takeover was adopting: maybe this call
		}
		if c == nil {
			s.respond(ep, tx, s.response(req, 481, "Call/Transaction Does Not Exist", nil), "")
			return
		}
		side := c.sideOf(toTag) // legs change hands in transfers (refer.go)
		s.traceIn(c.st.ID, ep, req)
		c.onRequest(side, req, tx)
		return
	}
	switch req.Method {
	case sip.INVITE:
		if !s.onReplacesInvite(ep, req, tx) { // replaces.go: INVITE with Replaces (RFC 3891)
			s.newCall(ep, req, tx, rt)
		}
	case sip.OPTIONS:
		if req.Recipient.User == "" {
			res := s.response(req, 200, "OK", nil)
			res.AppendHeader(sip.NewHeader("Allow", rt.allowHdr))
			res.AppendHeader(sip.NewHeader("Accept", "application/sdp"))
			s.respond(ep, tx, res, "")
			return
		}
		s.relayStandalone(ep, req, tx, rt)
	case sip.CANCEL:
		s.respond(ep, tx, s.response(req, 481, "Call/Transaction Does Not Exist", nil), "")
	case sip.MESSAGE, sip.INFO:
		s.relayStandalone(ep, req, tx, rt)
	default:
		// REGISTER, SUBSCRIBE, REFER, PUBLISH outside a dialog belong to
		// the registrar and REFER issues.
		if rs := s.deps.Registrar; rs != nil && req.Method == sip.REGISTER && rs.Serve(req, tx, ep.name) {
			return // answered by the local registrar (internal/registrar)
		}
		s.respond(ep, tx, s.response(req, 501, "Not Implemented", nil), "")
	}
}

// response builds a response to req with the unit's Server header.
func (s *Service) response(req *sip.Request, code int, reason string, body []byte) *sip.Response {
	res := sip.NewResponseFromRequest(req, code, reason, body)
	if ra := retryAfter(code, reason); ra != "" { // codes.go
		res.AppendHeader(sip.NewHeader("Retry-After", ra))
	}
	if ua := s.rt.Load().userAgent; ua != "" {
		res.AppendHeader(sip.NewHeader("Server", ua))
	}
	return res
}

func (s *Service) respond(ep *endpoint, tx *sip.ServerTx, res *sip.Response, callID string) {
	if callID != "" {
		ap, _ := netip.ParseAddrPort(res.Destination())
		s.trace(callID, ep, 1, res, ap)
	}
	if err := tx.Respond(res); err != nil {
		s.limited.Warn("sip-respond", "sending a response failed", "status", res.StatusCode, "err", err)
	}
}

// onAck handles an ACK for a 2xx (ACKs for other finals stay in sipgo's
// transactions).
func (s *Service) onAck(ep *endpoint, req *sip.Request) {
	if req.To() == nil || req.CallID() == nil {
		return
	}
	toTag := getTag(req.To().Params)
	c := s.calls.get(dialogKey(req.CallID().Value(), toTag))
	if c == nil {
		return
	}
	side := c.sideOf(toTag) // legs change hands in transfers (refer.go)
	s.traceIn(c.st.ID, ep, req)
	c.onAck(side, req)
}

// rfc2543Acks hands the B2BUA the ACKs for a 2xx of an INVITE without an
// RFC 3261 branch. Such an ACK has the INVITE's transaction key (RFC 2543
// matching: Call-ID, From tag, CSeq number, top Via), so sipgo gives it to
// the INVITE's transaction, which passes it on only through tx.Acks(),
// instead of to onRequest as a request of its own.
func (s *Service) rfc2543Acks(ep *endpoint, tx *sip.ServerTx) {
	for {
		select {
		case ack := <-tx.Acks():
			transport.NullFromTag(ack)
			s.onAck(ep, ack)
		case <-tx.Done():
			return
		}
	}
}

// onStrayResponse sees responses no transaction wants: a 2xx to an INVITE
// retransmitted after the transaction ended means our ACK was lost.
func (s *Service) onStrayResponse(ep *endpoint, r *sip.Response) {
	if !r.IsSuccess() || r.CSeq() == nil || r.CSeq().MethodName != sip.INVITE || r.From() == nil || r.CallID() == nil {
		return
	}
	c := s.calls.get(dialogKey(r.CallID().Value(), getTag(r.From().Params)))
	if c == nil {
		return
	}
	c.legAt(c.sideOf(getTag(r.From().Params))).resendAck()
}

// routingRequest describes req for the routing table.
func routingRequest(ep *endpoint, req *sip.Request, rt *runtime) routing.Request {
	from := req.From().Address
	fromURI := from.Scheme + ":" + from.User + "@" + from.Host
	if from.User == "" {
		fromURI = from.Scheme + ":" + from.Host
	}
	src := ep.svc.sourcePeer(ep, req, rt) // by address, else by verified TLS certificate (identity.go)
	return routing.Request{
		Method: string(req.Method), User: req.Recipient.User, Host: req.Recipient.Host,
		FromURI: fromURI, SourcePeer: src, SourceInterface: ep.name,
	}
}

// egress picks the endpoint for a hop: the hop's interface, else the first
// interface other than the one the request came in on, else the same one
// (one-armed).
func (rt *runtime) egress(h routing.Hop, in *endpoint) *endpoint {
	if h.Interface != "" {
		if ep := rt.endpoints[h.Interface]; ep != nil {
			return ep
		}
	}
	for _, n := range rt.ifaceOrder {
		if in == nil || n != in.name {
			if ep := rt.endpoints[n]; ep != nil {
				return ep
			}
		}
	}
	return in
}

// hopURI is the Request-URI for a hop.
func hopURI(h routing.Hop) sip.Uri {
	u := sip.Uri{Scheme: "sip", User: h.User, Host: h.Host, Port: h.Port}
	if strings.EqualFold(h.Scheme, "sips") {
		u.Scheme = "sips"
	}
	if h.Transport == "tcp" || h.Transport == "tls" {
		u.UriParams = sip.NewParams()
		u.UriParams.Add("transport", h.Transport)
	}
	return u
}

// relayStandalone relays an out-of-dialog MESSAGE/OPTIONS/INFO: routed like
// an INVITE, sent with a fresh Call-ID and tags, the final response relayed
// back.
func (s *Service) relayStandalone(ep *endpoint, req *sip.Request, tx *sip.ServerTx, rt *runtime) {
	id := newID()
	s.traceIn(id, ep, req)
	hops, err := s.route(rt, routingRequest(ep, req, rt), req)
	if err != nil {
		code, reason := statusFor(err)
		s.respond(ep, tx, s.response(req, code, reason, nil), id)
		return
	}
	ctx, cancel := context.WithTimeout(s.base, 40*time.Second)
	defer cancel()
	for _, h := range hops {
		targets, err := rt.resolver.Resolve(ctx, h)
		if err != nil || len(targets) == 0 {
			continue
		}
		out := rt.egress(h, ep)
		info := out.info.Load()
		tg := targets[0]
		leg := &Leg{
			Transport: tg.Transport, CallID: newID(), LocalTag: newID(),
			LocalURI:     sip.Uri{Scheme: "sip", User: req.From().Address.User, Host: info.Host},
			LocalName:    req.From().DisplayName,
			RemoteURI:    sip.Uri{Scheme: "sip", User: h.User, Host: h.Host},
			RemoteTarget: hopURI(h),
		}
		o := newRequest(req.Method, leg, info, decMaxForwards(req, rt), 1)
		copyHeaders(o, req, info)
		for k, v := range h.Headers {
			o.AppendHeader(sip.NewHeader(k, v))
		}
		if rt.userAgent != "" {
			o.AppendHeader(sip.NewHeader("User-Agent", rt.userAgent))
		}
		o.SetBody(req.Body())
		rctx, rcancel := context.WithTimeout(ctx, 40*time.Second)
		res := s.requestAuth(rctx, rt, out, h.Peer, o, tg, id, nil) // auth.go: answers a trunk's challenge
		rcancel()
		if res == nil {
			continue
		}
		s.traceIn(id, out, res)
		code, reason := mapFinal(res.StatusCode, res.Reason)
		back := s.response(req, code, reason, res.Body())
		copyHeaders(back, res, ep.info.Load())
		s.respond(ep, tx, back, id)
		return
	}
	s.respond(ep, tx, s.response(req, 408, "Request Timeout", nil), id)
}

// waitFinal reads responses of a non-INVITE transaction until the final one.
func waitFinal(tx *sip.ClientTx) *sip.Response {
	defer tx.Terminate()
	for {
		select {
		case r := <-tx.Responses():
			if r.StatusCode >= 200 {
				return r
			}
		case <-tx.Done():
			return nil
		}
	}
}

// decMaxForwards is the Max-Forwards for the request relayed from req.
func decMaxForwards(req *sip.Request, rt *runtime) int {
	mf := rt.maxForwards
	if h := req.MaxForwards(); h != nil && int(h.Val())-1 < mf {
		mf = int(h.Val()) - 1
	}
	return max(mf, 0)
}
