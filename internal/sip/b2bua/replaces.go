package b2bua

// INVITE with Replaces (RFC 3891) naming one of the unit's legs: the new
// dialog takes that leg's place in its call. It arrives after an attended
// transfer that was relayed (the transferee calls back through the unit)
// or from a phone that picks up or joins a call.

import (
	"strings"

	"github.com/emiago/sipgo/sip"
	"github.com/palisade-sbc/palisade/internal/media"
)

// onReplacesInvite handles an initial INVITE carrying Replaces. It returns
// false when there is none (a normal new call).
func (s *Service) onReplacesInvite(ep *endpoint, req *sip.Request, tx *sip.ServerTx) bool {
	h := req.GetHeader("Replaces")
	if h == nil {
		return false
	}
	r, err := parseReplaces(h.Value())
	if err != nil {
		badInput.WithLabelValues("bad_request").Inc()
		s.limited.Warn("sip-replaces", "INVITE with a malformed Replaces", "source", req.Source())
		s.respond(ep, tx, s.response(req, 400, "Bad Replaces", nil), "")
		return true
	}
	c, z := s.findDialog(r)
	if c == nil {
		referTotal.WithLabelValues("replaces", "unknown_dialog").Inc()
		s.limited.Warn("sip-replaces", "Replaces names no dialog of the unit", "source", req.Source())
		s.respond(ep, tx, s.response(req, 481, "Call/Transaction Does Not Exist", nil), "")
		return true
	}
	s.traceIn(c.st.ID, ep, req)
	if code, reason := c.claimTransfer(); code != 0 {
		s.respond(ep, tx, s.response(req, code, reason, nil), c.st.ID)
		return true
	}
	defer c.releaseTransfer()
	code, reason := c.replaceLeg(z, ep, req, tx)
	result := "success"
	if code >= 300 {
		result = "failed"
		s.respond(ep, tx, s.response(req, code, reason, nil), c.st.ID)
	}
	referTotal.WithLabelValues("replaces", result).Inc()
	c.logger().Info("INVITE with Replaces", "replaced", sideName(z), "status", code)
	return true
}

// replaceLeg connects the new INVITE's party with the party on the other
// side of z (re-INVITE with a fresh offer), answers it and ends the replaced
// leg. It returns the failure status (0 on success: already answered).
func (c *call) replaceLeg(z media.Side, ep *endpoint, req *sip.Request, tx *sip.ServerTx) (int, string) {
	s := c.svc
	w := z.Other()
	body := req.Body()
	if len(body) == 0 || !isSDP(req) {
		return 488, "Not Acceptable Here (offer required with Replaces)"
	}
	s.respond(ep, tx, sip.NewResponseFromRequest(req, 100, "Trying", nil), c.st.ID)
	rt := s.rt.Load()
	peer := s.sourcePeer(ep, req, rt)
	c.mu.Lock()
	wPeer := c.leg(w).Peer
	c.mu.Unlock()
	la, lb := mediaLegs(z, ep, peer, c.endpointOf(w), wPeer)
	mc, err := s.newMedia(c.st.ID, la, lb)
	if err != nil {
		return statusFor(err)
	}
	sdpW, err := mc.Offer(z, body)
	if err != nil {
		mc.Close()
		return statusFor(err)
	}
	rw, ackW, err := c.legAt(w).reinvite(sdpW)
	if err != nil || rw.StatusCode >= 300 {
		mc.Close()
		code, reason, _ := failureOf(rw, err)
		return mapFinal(code, reason)
	}
	ackW(nil)
	sdpZ, err := mc.Answer(w, rw.Body())
	if err != nil {
		mc.Close()
		return statusFor(err)
	}
	from, to := req.From(), req.To()
	nl := Leg{
		Interface: ep.name, Transport: strings.ToLower(req.Transport()), Peer: peer,
		CallID: req.CallID().Value(), LocalTag: newID(), RemoteTag: getTag(from.Params),
		LocalURI: to.Address, LocalName: to.DisplayName, RemoteURI: from.Address, RemoteName: from.DisplayName,
		RemoteCSeq: req.CSeq().SeqNo, InviteCSeq: req.CSeq().SeqNo,
		RemoteTarget: req.Contact().Address, RouteSet: routeSet(req, false), Flow: req.Source(),
	}
	to.Params.Add("tag", nl.LocalTag)
	res := s.response(req, 200, "OK", sdpZ)
	res.AppendHeader(ep.info.Load().Contact(nl.Transport))
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))

	c.mu.Lock()
	if c.endingLocked() { // the call was hung up meanwhile (transfer.go swap)
		c.mu.Unlock()
		mc.Close()
		return 487, "Request Terminated (the call ended)"
	}
	zl := &leg{Leg: nl, ep: ep, uas: true, inv: req, stx: tx, final: res}
	old, oldMedia := c.setLeg(z, zl), c.media
	c.media = mc
	c.mu.Unlock()
	c.noteCaps(z, req)
	mc.OnInactive(func() { c.hangup("media inactivity timeout") })
	s.calls.put(dialogKey(nl.CallID, nl.LocalTag), c)
	g := s.ghostLeg(c, z, old)
	s.respond(ep, tx, res, c.st.ID)
	if nl.Transport == "udp" {
		zl.retransmit2xx(c.noAck(zl))
	}
	if oldMedia != nil {
		oldMedia.Close()
	}
	g.byeSide(z)
	g.end("replaced")
	return 0, ""
}
